using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Review of session 11's wrap-safe timestamps (s11-rev): the reserved marks (<see cref="long.MaxValue"/> as "empty" /
/// "nothing armed", <see cref="long.MinValue"/> as "due at once") met by real due times a clock near the wrap produces.
/// </summary>
public sealed class ClockWrapReviewTests
{
    [Fact]
    public void GetTimeUntilNextDue_RootDueAtLongMaxValue_TheTimeUntilItNotEmpty()
    {
        // Before (s11-rev): long.MaxValue also marked "heap empty" there, so a queue whose earliest item was due exactly
        // at long.MaxValue answered null ("the queue is empty") while it held that item.
        var time = new ManualTimeProvider(long.MaxValue - 10);
        using var queue = new DelayQueue<int>(2, new DelayQueueOptions<int> { TimeProvider = time });
        Assert.True(queue.TryEnqueue(7, TimeSpan.FromTicks(10)).IsAccepted); // due at long.MaxValue

        Assert.Equal(TimeSpan.FromTicks(10), queue.GetTimeUntilNextDue());
        time.Advance(TimeSpan.FromTicks(10));
        Assert.Equal(TimeSpan.Zero, queue.GetTimeUntilNextDue());
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(7, item);
        Assert.Null(queue.GetTimeUntilNextDue());
    }
}
