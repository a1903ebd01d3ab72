using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="DelayQueue{T}.EnqueueAsync(T, TimeSpan, CancellationToken)"/> under <see cref="OverflowPolicy.Wait"/>: a
/// writer links its waiter, then tries once more (the recheck). A clock that throws in that attempt (the enqueue's own
/// reading, when the recheck finds room) must take the waiter back (helper s9-room, 2026-11-23): before, the waiter stayed
/// linked and never awaited, the next wake-up was spent on it, and the writer parked behind it slept beside a free slot.
/// Until session 10 the recheck of a full queue also read the clock, for a retry hint nobody used, and this test made that
/// reading throw; since then a waiting attempt computes no hint (DelayQueueRetryHintClockFailureTests), so a full recheck
/// reads nothing and cannot fail.
/// </summary>
public sealed class DelayQueueRecheckClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task EnqueueAsync_RecheckAfterLinkingFindsTheQueueFull_ReadsNoClockAndWaits()
    {
        var manual = new ManualTimeProvider();
        var clock = new HintFailingClock(manual);
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = clock, FullMode = OverflowPolicy.Wait });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted); // not due: a full queue's hint would read the clock

        clock.Fail = true; // every hint reading throws
        ValueTask<WriteResult> waiting = queue.EnqueueAsync(2, TimeSpan.Zero); // before: faulted (its attempts' hints)
        Assert.False(waiting.IsCompleted);
        ValueTask<WriteResult> next = queue.EnqueueAsync(3, TimeSpan.Zero); // parks behind it
        Assert.False(next.IsCompleted);

        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
        Assert.Equal(WriteOutcome.Accepted, (await waiting.AsTask().WaitAsync(Generous)).Outcome);
        Assert.True(queue.TryDequeue(out item));
        Assert.Equal(2, item);
        Assert.Equal(WriteOutcome.Accepted, (await next.AsTask().WaitAsync(Generous)).Outcome);
        Assert.True(queue.TryDequeue(out item));
        Assert.Equal(3, item);
        Assert.Equal(0, queue.ClockFailureCount);
    }
}
