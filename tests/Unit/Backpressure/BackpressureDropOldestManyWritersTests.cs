using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// <see cref="OverflowPolicy.DropOldest"/> as one step (session 16): a write places its item and evicts the oldest one if
/// and only if the buffer is still full when the write takes effect, so a write evicts at most one item, and none when a
/// reader made room first. Before, the eviction and the placement were two queue operations: another writer could take
/// the room an eviction made (the evicting write then evicted a second item, and the other write answered
/// <see cref="WriteOutcome.Accepted"/> on a buffer that was full when it began), and a reader could free a slot just
/// before an eviction that went ahead anyway. The interleavings are made deterministic with a clock hook: with
/// <see cref="BackpressureBufferOptions{T}.TrackItemAge"/> each enqueue attempt reads the clock once, so the hook runs
/// another write or a read between the write's failed first attempt and its place-or-evict step. The races inside the
/// step are explored by tests/Concurrency/Queues/EvictingEnqueueScheduleTests.cs.
/// </summary>
public sealed class BackpressureDropOldestManyWritersTests
{
    [Fact]
    public void TryWrite_AnotherWriterEvictsFirst_EachWriteEvictsExactlyOne()
    {
        var (buffer, clock, dropped) = FullBuffer(singleWriter: false);
        using (buffer)
        {
            WriteResult? inner = null;

            // Reading 1: the outer write's first enqueue attempt (the buffer is full). Reading 2: its place-or-evict step;
            // the hook runs another write first, which finds the buffer full too.
            clock.OnNextReading(() => clock.OnNextReading(() => inner = buffer.TryWrite(100)));
            WriteResult outer = buffer.TryWrite(200);

            Assert.Equal(WriteResult.EvictedOldest, inner);
            Assert.Equal(WriteResult.EvictedOldest, outer);
            Assert.Equal([(0, DropReason.Oldest), (1, DropReason.Oldest)], dropped);
            BackpressureStatistics stats = buffer.GetStatistics();
            Assert.Equal(2, stats.Evicted); // one eviction per EvictedOldest answer
            Assert.Equal(4, stats.Enqueued);
            Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);
            Assert.Equal([100, 200], Drain(buffer));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryWrite_AReaderMakesRoomBeforeTheStep_AcceptedWithoutEviction(bool singleWriter)
    {
        var (buffer, clock, dropped) = FullBuffer(singleWriter);
        using (buffer)
        {
            int read = -1;
            clock.OnNextReading(() => clock.OnNextReading(() => Assert.True(buffer.TryRead(out read))));
            WriteResult outer = buffer.TryWrite(200);

            Assert.Equal(0, read);
            Assert.Equal(WriteResult.Accepted, outer); // the room the reader made: no item evicted
            Assert.Empty(dropped);
            BackpressureStatistics stats = buffer.GetStatistics();
            Assert.Equal(0, stats.Evicted);
            Assert.Equal(1, stats.Dequeued);
            Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);
            Assert.Equal([1, 200], Drain(buffer));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryWrite_ClockThrowsInThePlaceOrEvictStep_NothingChangesAndTheBufferStaysUsable(bool singleWriter)
    {
        var (buffer, clock, dropped) = FullBuffer(singleWriter);
        using (buffer)
        {
            clock.OnNextReading(() => clock.OnNextReading(() => clock.ThrowAfterHook = true));
            Assert.Throws<InvalidOperationException>(() => buffer.TryWrite(200));
            clock.ThrowAfterHook = false;

            Assert.Empty(dropped); // the stamp is read before the step: no item was evicted
            BackpressureStatistics stats = buffer.GetStatistics();
            Assert.Equal((2L, 0L, 0L, 2), (stats.Enqueued, stats.Dequeued, stats.Evicted, stats.Remaining));
            Assert.Equal(WriteResult.EvictedOldest, buffer.TryWrite(300));
            Assert.Equal([(0, DropReason.Oldest)], dropped);
            Assert.Equal([1, 300], Drain(buffer));
        }
    }

    private static (BackpressureBuffer<int> Buffer, HookedReadingClock Clock, List<(int Item, DropReason Reason)> Dropped) FullBuffer(bool singleWriter)
    {
        var clock = new HookedReadingClock(new ManualTimeProvider());
        var dropped = new List<(int Item, DropReason Reason)>();
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 2,
            SingleWriter = singleWriter,
            SingleReader = false,
            FullMode = OverflowPolicy.DropOldest,
            TrackItemAge = true,
            TimeProvider = clock,
            ItemDropped = (item, reason) => dropped.Add((item, reason)),
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        return (buffer, clock, dropped);
    }

    private static List<int> Drain(BackpressureBuffer<int> buffer)
    {
        var items = new List<int>();
        while (buffer.TryRead(out int item))
        {
            items.Add(item);
        }

        return items;
    }
}
