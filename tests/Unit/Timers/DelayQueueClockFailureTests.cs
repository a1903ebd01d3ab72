using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// A <see cref="TimeProvider"/> that throws while an item enters a <see cref="DelayQueue{T}"/> (review, 2026-11-23):
/// the write fails to its caller and leaves no trace; before, the unit of room it had reserved was never returned, so
/// the queue lost capacity for good (and a completed queue never finished: its count never reached zero).
/// </summary>
public sealed class DelayQueueClockFailureTests
{
    [Theory]
    [InlineData(OverflowPolicy.Reject)]
    [InlineData(OverflowPolicy.Wait)]
    public void TryEnqueue_ClockThrows_RoomIsReturned(OverflowPolicy mode)
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = clock, FullMode = mode });

        clock.FailReading(1);
        Assert.Throws<InvalidOperationException>(() => queue.TryEnqueue(1, TimeSpan.Zero));

        Assert.Equal(0, queue.Count);
        Assert.True(queue.TryEnqueue(2, TimeSpan.Zero).IsAccepted);
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(2, item);
        queue.Complete();
        Assert.True(queue.Completion.IsCompleted);
    }

    [Fact]
    public void TryEnqueue_DropOldestAndClockThrows_NothingEvicted()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var dropped = new List<int>();
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = clock, FullMode = OverflowPolicy.DropOldest, ItemDropped = (i, _) => dropped.Add(i) });
        Assert.True(queue.TryEnqueue(1, TimeSpan.Zero).IsAccepted);

        clock.FailReading(1);
        Assert.Throws<InvalidOperationException>(() => queue.TryEnqueue(2, TimeSpan.Zero));

        Assert.Empty(dropped); // the victim stays: the incoming item never entered
        Assert.Equal(1, queue.Count);
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
        Assert.True(queue.TryEnqueue(3, TimeSpan.Zero).IsAccepted);
        Assert.Equal(1, queue.Count);
    }
}
