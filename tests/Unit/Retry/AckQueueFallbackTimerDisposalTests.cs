using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// <see cref="AckQueue{T}"/> had no such gap (session 11 check): its expiry pass's system-timer fallback is disposed by
/// <see cref="AckQueue{T}.Dispose"/> and never re-created after it (its arming checks the disposed flag under the same
/// lock). A regression guard: it passed before.
/// </summary>
public sealed class AckQueueFallbackTimerDisposalTests
{
    [Fact]
    public void Dispose_ExpiryOnTheSystemFallback_FallbackTimerDisposedAndNotRecreated()
    {
        var clock = new TimerFailingClock(new ManualTimeProvider()) { ArmingFailures = 1_000_000 }; // the clock's timer never arms
        var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 2, TimeProvider = clock });
        Assert.True(queue.TryEnqueue("a").IsAccepted);
        Assert.True(queue.TryReceive(out _)); // its arming fails: the expiry pass goes on the fallback
        ITimer fallback = queue.FallbackTimer ?? throw new InvalidOperationException("no fallback armed");

        queue.Dispose();
        Thread.Sleep(20); // a pass already firing on the fallback (1 ms back-off) must not arm anything after the Dispose

        Assert.Same(fallback, queue.FallbackTimer);
        bool rearmed;
        try
        {
            rearmed = fallback.Change(TimeSpan.FromHours(1), Timeout.InfiniteTimeSpan);
            if (rearmed)
            {
                fallback.Dispose();
            }
        }
        catch (ObjectDisposedException)
        {
            rearmed = false;
        }

        Assert.False(rearmed);
    }
}
