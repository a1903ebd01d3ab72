using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary><see cref="BackpressureBufferOptions{T}.TrackItemAge"/>: the age of the oldest item, on every engine.</summary>
public sealed class BackpressureItemAgeTests
{
    /// <summary>(SingleWriter, SingleReader, FullMode) covering the four engines.</summary>
    public static TheoryData<bool, bool, OverflowPolicy> Engines => new()
    {
        { true, true, OverflowPolicy.Reject },      // SPSC
        { false, true, OverflowPolicy.Reject },     // MPSC
        { true, false, OverflowPolicy.Reject },     // SPMC
        { false, false, OverflowPolicy.Reject },    // MPMC
        { true, true, OverflowPolicy.DropOldest },  // DropOldest forces a multi-consumer engine
    };

    private static BackpressureBuffer<string> Create(ManualTimeProvider time, bool singleWriter, bool singleReader, OverflowPolicy mode, int capacity = 8) =>
        new(new BackpressureBufferOptions<string>
        {
            Capacity = capacity,
            FullMode = mode,
            SingleWriter = singleWriter,
            SingleReader = singleReader,
            TimeProvider = time,
            TrackItemAge = true,
        });

    [Fact]
    public void OldestItemAge_WithoutTracking_IsNull()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4 });
        Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite(1).Outcome);
        Assert.Null(buffer.OldestItemAge);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void OldestItemAge_FollowsTheHeadItem(bool singleWriter, bool singleReader, OverflowPolicy mode)
    {
        var time = new ManualTimeProvider();
        using var buffer = Create(time, singleWriter, singleReader, mode);
        Assert.Equal(TimeSpan.Zero, buffer.OldestItemAge);

        Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite("a").Outcome);
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite("b").Outcome);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromSeconds(5), buffer.OldestItemAge);

        Assert.True(buffer.TryRead(out string? first));
        Assert.Equal("a", first);
        Assert.Equal(TimeSpan.FromSeconds(2), buffer.OldestItemAge);

        Assert.True(buffer.TryRead(out string? second));
        Assert.Equal("b", second);
        Assert.Equal(TimeSpan.Zero, buffer.OldestItemAge);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void TrackItemAge_BatchReadsAndWrapAround_KeepOrderAndAccounting(bool singleWriter, bool singleReader, OverflowPolicy mode)
    {
        var time = new ManualTimeProvider();
        using var buffer = Create(time, singleWriter, singleReader, mode, capacity: 4);
        var read = new List<string>();
        var batch = new string[3];
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite(i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Outcome);
            time.Advance(TimeSpan.FromMilliseconds(10));
            if (i % 3 == 2)
            {
                int n = buffer.TryReadMany(batch);
                read.AddRange(batch.Take(n));
            }
        }

        while (buffer.TryRead(out string? rest))
        {
            read.Add(rest);
        }

        Assert.Equal(Enumerable.Range(0, 40).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), read);
        BackpressureStatistics stats = buffer.GetStatistics();
        Assert.Equal(40, stats.Enqueued);
        Assert.Equal(40, stats.Dequeued);
        Assert.Equal(TimeSpan.Zero, buffer.OldestItemAge);
    }

    [Fact]
    public void OldestItemAge_AfterEviction_IsTheSurvivorsAge()
    {
        var time = new ManualTimeProvider();
        var evicted = new List<string>();
        using var buffer = new BackpressureBuffer<string>(new BackpressureBufferOptions<string>
        {
            Capacity = 2,
            FullMode = OverflowPolicy.DropOldest,
            TimeProvider = time,
            TrackItemAge = true,
            ItemDropped = (item, _) => evicted.Add(item),
        });
        buffer.TryWrite("old");
        time.Advance(TimeSpan.FromSeconds(10));
        buffer.TryWrite("mid");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(WriteOutcome.EvictedOldest, buffer.TryWrite("new").Outcome);

        Assert.Equal(["old"], evicted);
        Assert.Equal(TimeSpan.FromSeconds(1), buffer.OldestItemAge);
    }

    [Fact]
    public void TryPeek_WithTracking_OnSingleReader_SeesTheHeadItem()
    {
        var time = new ManualTimeProvider();
        using var buffer = Create(time, singleWriter: false, singleReader: true, OverflowPolicy.Reject);
        Assert.True(buffer.CanPeek);
        Assert.False(buffer.TryPeek(out _));
        buffer.TryWrite("x");
        Assert.True(buffer.TryPeek(out string? peeked));
        Assert.Equal("x", peeked);
        Assert.Equal(1, buffer.Count);
    }
    [Theory]
    [MemberData(nameof(Engines))]
    public void OldestItemAge_ClockThatStartsAtZero_CountsTheItemWrittenAtZero(bool singleWriter, bool singleReader, OverflowPolicy mode)
    {
        // A TimeProvider may start its timestamps at 0. Before, a stamp of 0 was taken for "no head to read" (a cleared
        // slot), so the item written at timestamp 0 had age zero however long it waited.
        var time = new ZeroBasedClock();
        using var buffer = new BackpressureBuffer<string>(new BackpressureBufferOptions<string>
        {
            Capacity = 4, FullMode = mode, SingleWriter = singleWriter, SingleReader = singleReader, TimeProvider = time, TrackItemAge = true,
        });
        Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite("first").Outcome);
        time.Now = TimeSpan.FromSeconds(5).Ticks;
        Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite("second").Outcome);

        Assert.Equal(TimeSpan.FromSeconds(5), buffer.OldestItemAge);
        Assert.True(buffer.TryRead(out string? first));
        Assert.Equal("first", first);
        Assert.Equal(TimeSpan.Zero, buffer.OldestItemAge);
        time.Now = TimeSpan.FromSeconds(7).Ticks;
        Assert.Equal(TimeSpan.FromSeconds(2), buffer.OldestItemAge);
    }

    /// <summary>A clock whose timestamps start at 0 (ticks), set by the test; no timers.</summary>
    private sealed class ZeroBasedClock : TimeProvider
    {
        public long Now { get; set; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Now;
    }
}
