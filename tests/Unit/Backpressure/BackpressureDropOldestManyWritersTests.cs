using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// <see cref="OverflowPolicy.DropOldest"/> with many writers (acceptance audit of issue 4, 2026-11-23): an eviction and
/// the placement that follows it are two steps, so another writer can take the room an eviction made before the
/// evicting writer places its item. The evicting writer then evicts again: one write may evict more than one item, and
/// the other write answers <see cref="WriteOutcome.Accepted"/> on a buffer that was full when it began. Every eviction is
/// counted and reported, the bound holds, and Enqueued = Dequeued + Evicted + Remaining; docs/backpressure.md
/// ("DropOldest with many writers") states it. The interleaving is made deterministic with a clock hook: with
/// <see cref="BackpressureBufferOptions{T}.TrackItemAge"/> each enqueue attempt reads the clock once, so the hook runs the
/// other write between the eviction and the placement.
/// </summary>
public sealed class BackpressureDropOldestManyWritersTests
{
    [Fact]
    public void TryWrite_AnotherWriterTakesTheRoomBetweenEvictionAndPlacement_EvictsTwiceAndBothWritesLand()
    {
        var manual = new ManualTimeProvider();
        var clock = new HookedReadingClock(manual);
        var dropped = new List<(int Item, DropReason Reason)>();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 2,
            SingleWriter = false,
            SingleReader = false,
            FullMode = OverflowPolicy.DropOldest,
            TrackItemAge = true,
            TimeProvider = clock,
            ItemDropped = (item, reason) => dropped.Add((item, reason)),
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));

        WriteResult? inner = null;

        // Reading 1: the outer write's first enqueue attempt (the buffer is full). Reading 2: its placement after the
        // eviction of item 0; the hook writes item 100 into the room that eviction made, first.
        clock.OnNextReading(() => clock.OnNextReading(() => inner = buffer.TryWrite(100)));
        WriteResult outer = buffer.TryWrite(200);

        Assert.Equal(WriteResult.Accepted, inner);             // the room the outer write's eviction made
        Assert.Equal(WriteResult.EvictedOldest, outer);        // and it evicted again to place its own item
        Assert.Equal([(0, DropReason.Oldest), (1, DropReason.Oldest)], dropped);
        BackpressureStatistics stats = buffer.GetStatistics();
        Assert.Equal(2, stats.Evicted);                         // two evictions for one EvictedOldest answer
        Assert.Equal(4, stats.Enqueued);
        Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);

        Assert.True(buffer.TryRead(out int first));
        Assert.True(buffer.TryRead(out int second));
        Assert.Equal((100, 200), (first, second));              // never more than Capacity held; nothing lost unreported
        Assert.False(buffer.TryRead(out _));
    }
}
