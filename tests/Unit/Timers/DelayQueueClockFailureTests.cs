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

    [Fact]
    public async Task DequeueAsync_ClockThrowsWhilePassingOnAfterTheTake_ItemDeliveredAndTheNextReaderServed()
    {
        // A parked reader woken for a due item takes it, then passes on to the readers still parked (PassOn: one clock
        // reading to judge the next root). Before, a reading that threw there faulted the dequeue after the take: the
        // item was counted as dequeued and gone, and the other reader was never woken for the next one.
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = clock });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);
        Assert.True(queue.TryEnqueue(2, TimeSpan.FromSeconds(1)).IsAccepted);
        ValueTask<int> first = queue.DequeueAsync(); // both park (synchronously), the wake-up armed for the first due time
        ValueTask<int> second = queue.DequeueAsync();
        Assert.False(first.IsCompleted || second.IsCompleted);

        clock.FailReading(2); // the woken reader's take reads the clock once, then its pass-on reads it
        manual.Advance(TimeSpan.FromSeconds(1));

        int[] got = [await first.AsTask().WaitAsync(Generous), await second.AsTask().WaitAsync(Generous)];
        Array.Sort(got);
        Assert.Equal([1, 2], got);
        Assert.Equal(0, queue.Count);
        Assert.Equal(1, queue.ClockFailureCount); // the pass-on's failure is counted (session 10: it was dropped without a trace)
    }

    [Fact]
    public async Task DequeueAsync_ClockThrowsBeforeItParks_ThrowsAndLeavesNoWaiterBehind()
    {
        // A reader about to park reads the clock to arm the wake-up. Before, a reading that threw left its waiter linked
        // (never awaited): the next producer's signal was spent on it, and the reader parked after it slept beside a due item.
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = clock });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);

        clock.FailReading(2); // the fast path's reading succeeds; the parking reader's throws
        await Assert.ThrowsAsync<InvalidOperationException>(() => queue.DequeueAsync().AsTask());

        ValueTask<int> reader = queue.DequeueAsync(); // parks, the wake-up armed for item 1
        Assert.False(reader.IsCompleted);
        Assert.True(queue.TryEnqueue(2, TimeSpan.Zero).IsAccepted); // due at once: signals one parked reader
        Assert.Equal(2, await reader.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task EnqueueAsync_WriterParksWhileAFailingEnqueueHoldsTheRoom_WokenWhenTheRoomIsReturned()
    {
        // Review, 2026-11-23. Wait policy, capacity 1, empty. An enqueue reserves the only unit, then its clock reading
        // throws; while it holds the unit, a writer finds the queue full and parks. The failed enqueue returns the unit:
        // that is room, and the parked writer must hear of it (as it does when a reader takes an item). Before, the
        // unit was returned without a signal: the writer stayed parked beside an empty queue for good.
        var manual = new ManualTimeProvider();
        DelayQueue<int>? queue = null;
        ValueTask<WriteResult> writer = default;
        var clock = new HookedReadingClock(manual, () =>
        {
            writer = queue!.EnqueueAsync(2, TimeSpan.Zero); // full: the failing enqueue holds the unit; parks
            Assert.False(writer.IsCompleted);
            throw new InvalidOperationException("clock failed");
        });
        using (queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = clock, FullMode = OverflowPolicy.Wait }))
        {
            Assert.Throws<InvalidOperationException>(() => queue.TryEnqueue(1, TimeSpan.Zero));

            Assert.Equal(WriteOutcome.Accepted, (await writer.AsTask().WaitAsync(TimeSpan.FromSeconds(10))).Outcome);
            Assert.True(queue.TryDequeue(out int item));
            Assert.Equal(2, item);
        }
    }

    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>A manual clock whose next reading runs a hook instead (once): the hook may act, then throw.</summary>
    private sealed class HookedReadingClock(ManualTimeProvider inner, Func<long> hook) : TimeProvider
    {
        private int _armed = 1;

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => Interlocked.Exchange(ref _armed, 0) == 1 ? hook() : inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }
}
