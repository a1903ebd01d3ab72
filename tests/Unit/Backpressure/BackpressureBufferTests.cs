using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>Non-waiting behaviour of <see cref="BackpressureBuffer{T}"/>: policies, accounting, retry hints, watermarks, completion, bad input, disposal.</summary>
public sealed class BackpressureBufferTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private sealed class DropLog
    {
        public List<(int Item, DropReason Reason)> Entries { get; } = new();

        public void Add(int item, DropReason reason) => Entries.Add((item, reason));
    }

    private static BackpressureBuffer<int> Create(
        int capacity,
        OverflowPolicy mode,
        DropLog? drops = null,
        bool singleReader = false,
        bool singleWriter = false,
        TimeProvider? time = null) =>
        new(new BackpressureBufferOptions<int>
        {
            Capacity = capacity,
            FullMode = mode,
            SingleReader = singleReader,
            SingleWriter = singleWriter,
            ItemDropped = drops is null ? null : drops.Add,
            TimeProvider = time ?? TimeProvider.System,
        });

    private static void Fill(BackpressureBuffer<int> buffer, int from, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite(from + i).Outcome);
        }
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

    private static void AssertInvariant(BackpressureStatistics stats) =>
        Assert.True(stats.Enqueued == stats.Dequeued + stats.Evicted + stats.Remaining, $"invariant broken: {stats}");

    public static TheoryData<bool, bool> Roles => new() { { false, false }, { true, false }, { false, true }, { true, true } };

    [Theory]
    [MemberData(nameof(Roles))]
    public void TryWrite_RejectOnFull_AnswersRejectedFullAndItemStaysWithCaller(bool singleWriter, bool singleReader)
    {
        var drops = new DropLog();
        using var buffer = Create(4, OverflowPolicy.Reject, drops, singleReader, singleWriter);
        Fill(buffer, 0, 4);

        WriteResult result = buffer.TryWrite(99);

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.Full, result.Reason);
        Assert.False(result.IsAccepted);
        Assert.False(result.IsSuccess);
        Assert.Empty(drops.Entries);
        Assert.Equal(new BackpressureStatistics(4, 0, 0, 0, 1, 4), buffer.GetStatistics());
        Assert.Equal([0, 1, 2, 3], Drain(buffer));
    }

    [Theory]
    [MemberData(nameof(Roles))]
    public void TryWrite_DropIncomingOnFull_ReportsIncomingItemAndKeepsContents(bool singleWriter, bool singleReader)
    {
        var drops = new DropLog();
        using var buffer = Create(2, OverflowPolicy.DropIncoming, drops, singleReader, singleWriter);
        Fill(buffer, 0, 2);

        WriteResult result = buffer.TryWrite(7);

        Assert.Equal(WriteResult.DroppedIncoming, result);
        Assert.True(result.IsSuccess);
        Assert.False(result.IsAccepted);
        Assert.Equal(RejectReason.None, result.Reason);
        Assert.Equal(TimeSpan.Zero, result.RetryAfter);
        Assert.Equal([(7, DropReason.Incoming)], drops.Entries);
        Assert.Equal(new BackpressureStatistics(2, 0, 1, 0, 0, 2), buffer.GetStatistics());
        Assert.Equal([0, 1], Drain(buffer));
    }

    [Theory]
    [MemberData(nameof(Roles))]
    public void TryWrite_DropOldestOnFull_EvictsAndReportsOldest(bool singleWriter, bool singleReader)
    {
        var drops = new DropLog();
        using var buffer = Create(3, OverflowPolicy.DropOldest, drops, singleReader, singleWriter); // rounded to 4
        Fill(buffer, 0, 4);

        Assert.Equal(WriteResult.EvictedOldest, buffer.TryWrite(10));
        WriteResult second = buffer.TryWrite(11);

        Assert.True(second.IsAccepted);
        Assert.True(second.IsSuccess);
        Assert.Equal(WriteOutcome.EvictedOldest, second.Outcome);
        Assert.Equal([(0, DropReason.Oldest), (1, DropReason.Oldest)], drops.Entries);
        BackpressureStatistics stats = buffer.GetStatistics();
        Assert.Equal(new BackpressureStatistics(6, 0, 0, 2, 0, 4), stats);
        AssertInvariant(stats);
        Assert.Equal([2, 3, 10, 11], Drain(buffer));
        AssertInvariant(buffer.GetStatistics());
    }

    [Fact]
    public void ItemDropped_RunsAfterTheBufferIsConsistent_CanUseTheBuffer()
    {
        BackpressureBuffer<int>? self = null;
        var seen = new List<(int Item, int Count, bool Read, int ReadItem)>();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 2,
            FullMode = OverflowPolicy.DropOldest,
            ItemDropped = (item, _) =>
            {
                int count = self!.Count;
                bool read = self.TryRead(out int readItem); // a reserved slot would make this hang or fail
                seen.Add((item, count, read, readItem));
            },
        });
        self = buffer;
        Fill(buffer, 0, 2);

        Assert.Equal(WriteOutcome.EvictedOldest, buffer.TryWrite(2).Outcome);

        Assert.Equal([(0, 2, true, 1)], seen); // 0 evicted, 2 placed, then the callback read 1
        Assert.Equal([2], Drain(buffer));
        AssertInvariant(buffer.GetStatistics());
    }

    [Fact]
    public void ItemDropped_Throws_WriterSeesItsOutcomeAndTheFailureIsCounted()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.DropIncoming,
            ItemDropped = (_, _) => throw new InvalidTimeZoneException("callback"),
        });
        buffer.TryWrite(1);

        Assert.Equal(WriteResult.DroppedIncoming, buffer.TryWrite(2)); // the callback's exception never reaches the writer

        Assert.Equal(1, buffer.GetStatistics().DroppedIncoming);
        Assert.Equal(1, buffer.CallbackFailures);
        Assert.Equal([1], Drain(buffer));
    }

    [Fact]
    public async Task TryWrite_WaitOnFull_AnswersRejectedFullWithoutBlocking()
    {
        using var buffer = Create(2, OverflowPolicy.Wait);
        Fill(buffer, 0, 2);

        WriteResult result = await Task.Run(() => buffer.TryWrite(5)).WaitAsync(Generous);

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.Full, result.Reason);
        Assert.Equal(1, buffer.GetStatistics().Rejected);
        Assert.Equal([0, 1], Drain(buffer));
    }

    [Fact]
    public void TryWrite_PolicyOverride_AppliesToThatCallOnly()
    {
        var drops = new DropLog();
        using var buffer = Create(2, OverflowPolicy.Reject, drops);
        Fill(buffer, 0, 2);

        Assert.Equal(WriteResult.DroppedIncoming, buffer.TryWrite(10, OverflowPolicy.DropIncoming));
        Assert.Equal(WriteResult.EvictedOldest, buffer.TryWrite(11, OverflowPolicy.DropOldest)); // multi-reader: allowed
        Assert.Equal(WriteOutcome.Rejected, buffer.TryWrite(12, OverflowPolicy.Wait).Outcome);
        Assert.Equal(WriteOutcome.Rejected, buffer.TryWrite(13).Outcome); // back to FullMode

        Assert.Equal([(10, DropReason.Incoming), (0, DropReason.Oldest)], drops.Entries);
        Assert.Equal(new BackpressureStatistics(3, 0, 1, 1, 2, 2), buffer.GetStatistics());
        Assert.Equal([1, 11], Drain(buffer));
    }

    [Fact]
    public void TryWrite_DropOldestOverrideOnSingleReaderBuffer_ThrowsAndBufferStaysUsable()
    {
        using var buffer = Create(2, OverflowPolicy.Reject, singleReader: true);
        Fill(buffer, 0, 2);

        Assert.Throws<InvalidOperationException>(() => buffer.TryWrite(9, OverflowPolicy.DropOldest));
        Assert.Throws<InvalidOperationException>(() => buffer.Write(9, OverflowPolicy.DropOldest, TimeSpan.Zero));
        Assert.Throws<InvalidOperationException>(() => { _ = buffer.WriteAsync(9, OverflowPolicy.DropOldest, TimeSpan.Zero); });

        Assert.Equal(new BackpressureStatistics(2, 0, 0, 0, 0, 2), buffer.GetStatistics());
        Assert.Equal([0, 1], Drain(buffer));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(3));
    }

    [Fact]
    public void TryWrite_DropOldestOverrideOnSingleReaderBufferCreatedWithDropOldest_Evicts()
    {
        using var buffer = Create(1, OverflowPolicy.DropOldest, singleReader: true);
        Fill(buffer, 0, 1);

        Assert.Equal(WriteResult.EvictedOldest, buffer.TryWrite(1, OverflowPolicy.DropOldest));
        Assert.Equal(WriteOutcome.Rejected, buffer.TryWrite(2, OverflowPolicy.Reject).Outcome);
        Assert.Equal([1], Drain(buffer));
    }

    [Fact]
    public void Statistics_AfterMixedSequence_SatisfyAccountingInvariant()
    {
        var drops = new DropLog();
        using var buffer = Create(4, OverflowPolicy.DropOldest, drops);
        var policies = new[] { OverflowPolicy.DropOldest, OverflowPolicy.DropIncoming, OverflowPolicy.Reject, OverflowPolicy.Wait };
        var random = new Random(1234);
        long accepted = 0, dropped = 0, evicted = 0, rejected = 0, read = 0;
        for (int i = 0; i < 2000; i++)
        {
            if (random.Next(3) == 0)
            {
                read += buffer.TryReadMany(new int[random.Next(0, 4)]);
            }
            else
            {
                switch (buffer.TryWrite(i, policies[random.Next(policies.Length)]).Outcome)
                {
                    case WriteOutcome.Accepted: accepted++; break;
                    case WriteOutcome.EvictedOldest: accepted++; evicted++; break;
                    case WriteOutcome.DroppedIncoming: dropped++; break;
                    case WriteOutcome.Rejected: rejected++; break;
                    default: Assert.Fail("unexpected outcome"); break;
                }
            }

            AssertInvariant(buffer.GetStatistics());
        }

        BackpressureStatistics stats = buffer.GetStatistics();
        Assert.Equal(new BackpressureStatistics(accepted, read, dropped, evicted, rejected, buffer.Count), stats);
        Assert.Equal(dropped + evicted, drops.Entries.Count);
        Assert.True(evicted > 0 && dropped > 0 && rejected > 0, stats.ToString());
    }

    [Fact]
    public void RetryAfter_BeforeAnyDrain_IsInfinite()
    {
        var time = new ManualTimeProvider();
        using var buffer = Create(2, OverflowPolicy.Reject, time: time);
        Fill(buffer, 0, 2);

        Assert.Equal(Timeout.InfiniteTimeSpan, buffer.TryWrite(9).RetryAfter);
        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(Timeout.InfiniteTimeSpan, buffer.TryWrite(9).RetryAfter); // time passed, nothing drained
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(Timeout.InfiniteTimeSpan, buffer.TryWrite(9).RetryAfter);
    }

    [Fact]
    public void RetryAfter_AfterDrains_IsFiniteAndPositive()
    {
        var time = new ManualTimeProvider();
        using var buffer = Create(8, OverflowPolicy.Reject, time: time);
        Fill(buffer, 0, 8);
        Assert.Equal(Timeout.InfiniteTimeSpan, buffer.TryWrite(99).RetryAfter); // opens the measuring window

        Assert.Equal(4, buffer.TryReadMany(new int[4]));
        time.Advance(TimeSpan.FromMilliseconds(100));
        Fill(buffer, 100, 4);
        WriteResult result = buffer.TryWrite(99);

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.True(result.RetryAfter > TimeSpan.Zero && result.RetryAfter != Timeout.InfiniteTimeSpan, result.ToString());
        Assert.InRange(result.RetryAfter, TimeSpan.FromMilliseconds(24), TimeSpan.FromMilliseconds(26)); // 100 ms / 4 items
        Assert.Contains("retry after", result.ToString(), StringComparison.Ordinal);
        Assert.Equal(TimeSpan.Zero, buffer.TryWrite(1, OverflowPolicy.DropIncoming).RetryAfter);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RetryAfter_SystemClockBurst_ReusesEstimateAndCountsEveryRejection(bool singleWriter)
    {
        using var buffer = Create(4, OverflowPolicy.Reject, singleWriter: singleWriter);
        Fill(buffer, 0, 4);
        Assert.Equal(2, buffer.TryReadMany(new int[2]));
        Fill(buffer, 10, 2);
        const int rejections = 1000;
        for (int i = 0; i < rejections; i++)
        {
            WriteResult result = buffer.TryWrite(99);
            Assert.Equal(WriteOutcome.Rejected, result.Outcome);
            Assert.Equal(RejectReason.Full, result.Reason);
            Assert.True(result.RetryAfter == Timeout.InfiniteTimeSpan || result.RetryAfter > TimeSpan.Zero, result.ToString());
        }

        BackpressureStatistics stats = buffer.GetStatistics();
        Assert.Equal(rejections, stats.Rejected);
        Assert.Equal(6, stats.Enqueued);
        Assert.Equal(4, stats.Remaining);
    }

    [Fact]
    public void Watermarks_DepthCrossings_PauseAndResumeOncePerCrossingWithHysteresis()
    {
        var events = new List<bool>();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 8,
            HighWatermark = 6,
            LowWatermark = 2,
        });
        buffer.PressureChanged += (sender, paused) =>
        {
            Assert.Same(buffer, sender);
            events.Add(paused);
        };

        Fill(buffer, 0, 5);
        Assert.False(buffer.IsPaused);
        Assert.Empty(events);

        Fill(buffer, 5, 1); // depth 6
        Assert.True(buffer.IsPaused);
        Fill(buffer, 6, 2); // depth 8
        Assert.Equal([true], events);

        for (int depth = 7; depth >= 3; depth--)
        {
            Assert.True(buffer.TryRead(out _));
            Assert.True(buffer.IsPaused, $"resumed early at depth {depth}");
        }

        Fill(buffer, 20, 2); // back to 5: still paused, no new event
        Assert.Equal(2, buffer.TryReadMany(new int[2])); // 3
        Assert.True(buffer.TryRead(out _)); // 2: resume
        Assert.False(buffer.IsPaused);
        Assert.True(buffer.TryRead(out _)); // 1
        Assert.Equal([true, false], events);

        Fill(buffer, 30, 4); // 5
        Assert.False(buffer.IsPaused);
        Fill(buffer, 40, 1); // 6
        Assert.True(buffer.IsPaused);
        Assert.Equal([true, false, true], events);
    }

    [Fact]
    public async Task Watermarks_ResumeWhileThePauseIsBeingDelivered_ListenersSeeTheEventsInOrder()
    {
        // A writer crosses the high watermark and, while its pause event is on its way (held here in a first handler,
        // as a preemption between the crossing and the call would), a reader drains past the low one. Before, the
        // reader delivered its resume at once on its own thread and the writer's pause came after it: a listener that
        // follows the last event believed the buffer paused while IsPaused was false, and nothing corrected it.
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 4,
            HighWatermark = 2,
            LowWatermark = 0,
        });
        using var pauseOnItsWay = new ManualResetEventSlim();
        using var readerDone = new ManualResetEventSlim();
        var seen = new List<bool>();
        buffer.PressureChanged += (_, paused) =>
        {
            if (paused && !pauseOnItsWay.IsSet)
            {
                pauseOnItsWay.Set();
                Assert.True(readerDone.Wait(Generous));
            }
        };
        buffer.PressureChanged += (_, paused) =>
        {
            lock (seen)
            {
                seen.Add(paused);
            }
        };

        Fill(buffer, 0, 1);
        Task writer = Task.Run(() => buffer.TryWrite(1)); // depth 2: pause
        Assert.True(pauseOnItsWay.Wait(Generous));
        Assert.True(buffer.TryRead(out _));
        Assert.True(buffer.TryRead(out _)); // depth 0: resume
        readerDone.Set();
        await writer.WaitAsync(Generous);

        Assert.False(buffer.IsPaused);
        lock (seen)
        {
            Assert.Equal([true, false], seen);
        }
    }

    [Fact]
    public void Watermarks_None_NeverPause()
    {
        using var buffer = Create(4, OverflowPolicy.DropOldest);
        int raised = 0;
        buffer.PressureChanged += (_, _) => raised++;
        Fill(buffer, 0, 4);
        buffer.TryWrite(5);
        Drain(buffer);
        Assert.False(buffer.IsPaused);
        Assert.Equal(0, raised);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Complete_WithItems_WritesAnswerCompletedReadsDrainAndCompletionWaitsForEmpty(bool singleWriter)
    {
        using var buffer = Create(4, OverflowPolicy.DropOldest, singleWriter: singleWriter);
        Fill(buffer, 0, 3);

        buffer.Complete();

        Assert.True(buffer.IsCompleted);
        Assert.Equal(WriteResult.Completed, buffer.TryWrite(9));
        Assert.Equal(WriteResult.Completed, buffer.TryWrite(9, OverflowPolicy.Reject));
        Assert.Equal(WriteResult.Completed, buffer.Write(9, TimeSpan.Zero));
        Assert.Equal(WriteResult.Completed, await buffer.WriteAsync(9));
        Assert.False(WriteResult.Completed.IsSuccess);
        Assert.False(buffer.Completion.IsCompleted);

        Assert.True(buffer.TryRead(out int first));
        Assert.Equal(0, first);
        Assert.False(buffer.Completion.IsCompleted);
        Assert.Equal([1, 2], Drain(buffer));

        await buffer.Completion.WaitAsync(Generous);
        Assert.True(buffer.Completion.IsCompletedSuccessfully);
        Assert.Equal(new BackpressureStatistics(3, 3, 0, 0, 0, 0), buffer.GetStatistics());
    }

    [Fact]
    public async Task Complete_Empty_CompletionCompletesAtOnce()
    {
        using var buffer = Create(4, OverflowPolicy.Wait);
        buffer.Complete();
        await buffer.Completion.WaitAsync(Generous);
        Assert.False(buffer.TryRead(out _));
    }

    /// <summary>
    /// A reader taking the last item races the completion: one of them must finish the buffer (the reader reads the
    /// completion bit without a fence; the completion's process-wide barrier covers it). Many short rounds.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Complete_RacingTheLastRead_CompletionAlwaysCompletes(bool single)
    {
        for (int round = 0; round < 300; round++)
        {
            using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4, SingleWriter = single, SingleReader = single });
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(round));
            using var start = new Barrier(2);
            Task reader = Task.Run(() =>
            {
                start.SignalAndWait(Generous);
                Assert.True(buffer.TryRead(out int item));
                Assert.Equal(round, item);
            });
            start.SignalAndWait(Generous);
            buffer.Complete();
            await reader.WaitAsync(Generous);
            await buffer.Completion.WaitAsync(Generous);
        }
    }

    [Fact]
    public async Task Complete_WithError_CompletionFaultsWithThatErrorAfterDrain()
    {
        using var buffer = Create(4, OverflowPolicy.Wait);
        Fill(buffer, 0, 2);
        var error = new TimeZoneNotFoundException("upstream failed");

        buffer.Complete(error);

        Assert.False(buffer.Completion.IsCompleted);
        Assert.Equal([0, 1], Drain(buffer));
        Exception thrown = await Assert.ThrowsAsync<TimeZoneNotFoundException>(() => buffer.Completion.WaitAsync(Generous));
        Assert.Same(error, thrown);
    }

    [Fact]
    public void Complete_Twice_ThrowsAndTryCompleteAnswersFalse()
    {
        using var buffer = Create(4, OverflowPolicy.Wait);
        Assert.True(buffer.TryComplete());
        Assert.False(buffer.TryComplete());
        Assert.False(buffer.TryComplete(new InvalidTimeZoneException()));
        Assert.Throws<InvalidOperationException>(() => buffer.Complete());
        Assert.True(buffer.Completion.IsCompletedSuccessfully); // the later error did not replace the first completion
    }

    [Fact]
    public void Constructor_NullOptions_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => new BackpressureBuffer<int>(null!));
        Assert.Throws<ArgumentNullException>(() => new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, TimeProvider = null! }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData((1 << 30) + 1)]
    public void Constructor_CapacityOutOfRange_Throws(int capacity)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = capacity }));
    }

    [Fact]
    public void Constructor_DefaultCapacity_IsRejectedAndRoundedCapacityIsReported()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BackpressureBuffer<int>(new BackpressureBufferOptions<int>()));
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 5 });
        Assert.Equal(8, buffer.Capacity);
        Assert.Equal(OverflowPolicy.Wait, buffer.FullMode);
    }

    [Theory]
    [InlineData(9, 0)] // above the rounded capacity 8
    [InlineData(4, 4)] // low not below high
    [InlineData(4, 5)]
    [InlineData(4, -1)]
    [InlineData(0, 1)] // low without high
    [InlineData(-1, 0)]
    public void Constructor_BadWatermarks_Throw(int high, int low)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BackpressureBuffer<int>(
            new BackpressureBufferOptions<int> { Capacity = 5, HighWatermark = high, LowWatermark = low }));
    }

    [Fact]
    public void Constructor_WatermarkAtRoundedCapacity_IsAccepted()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 5, HighWatermark = 8, LowWatermark = 7 });
        Fill(buffer, 0, 8);
        Assert.True(buffer.IsPaused);
    }

    [Fact]
    public void Constructor_UndefinedFullMode_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BackpressureBuffer<int>(
            new BackpressureBufferOptions<int> { Capacity = 4, FullMode = (OverflowPolicy)42 }));
    }

    [Fact]
    public async Task Calls_UndefinedPolicyOrNegativeTimeout_ThrowAndBufferStaysUsable()
    {
        using var buffer = Create(2, OverflowPolicy.Wait);
        buffer.TryWrite(1);
        var undefined = (OverflowPolicy)(-1);
        TimeSpan negative = TimeSpan.FromMilliseconds(-2);

        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.TryWrite(2, undefined));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Write(2, undefined, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = buffer.WriteAsync(2, undefined, TimeSpan.Zero); });
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Write(2, negative));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Write(2, OverflowPolicy.Reject, TimeSpan.MinValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = buffer.WriteAsync(2, OverflowPolicy.Wait, negative); });
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.TryRead(out _, negative));

        Assert.Equal(new BackpressureStatistics(1, 0, 0, 0, 0, 1), buffer.GetStatistics());
        Assert.Equal(WriteResult.Accepted, buffer.Write(2, Timeout.InfiniteTimeSpan));
        Assert.Equal(WriteOutcome.Rejected, (await buffer.WriteAsync(3, OverflowPolicy.Wait, TimeSpan.Zero)).Outcome);
        Assert.True(buffer.TryRead(out int item, Timeout.InfiniteTimeSpan));
        Assert.Equal(1, item);
        Assert.Equal([2], Drain(buffer));
    }

    [Fact]
    public async Task Dispose_WithItems_WritesThrowAndRemainingItemsStayReadable()
    {
        var buffer = Create(4, OverflowPolicy.Wait);
        Fill(buffer, 0, 3);

        buffer.Dispose();
        buffer.Dispose(); // idempotent

        Assert.Throws<ObjectDisposedException>(() => buffer.TryWrite(9));
        Assert.Throws<ObjectDisposedException>(() => buffer.TryWrite(9, OverflowPolicy.DropIncoming));
        Assert.Throws<ObjectDisposedException>(() => buffer.Write(9, TimeSpan.Zero));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await buffer.WriteAsync(9));
        Assert.True(buffer.IsCompleted);

        Assert.Equal([0, 1, 2], Drain(buffer));
        Assert.Equal(new BackpressureStatistics(3, 3, 0, 0, 0, 0), buffer.GetStatistics());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => buffer.Completion.WaitAsync(Generous));
    }

    [Theory]
    [MemberData(nameof(Roles))]
    public async Task FastPaths_CompleteThenDispose_WriteAnswersCompletedThenThrowsAndItemsDrain(bool singleWriter, bool singleReader)
    {
        // The SPSC engine's TryWrite/TryRead are inlined into the caller and skip the general path while the buffer
        // is open: completion and disposal must still reach them (every engine runs the same body).
        var buffer = Create(4, OverflowPolicy.Wait, singleReader: singleReader, singleWriter: singleWriter);
        Fill(buffer, 0, 4);
        Assert.Equal(WriteResult.Rejected(RejectReason.Full, Timeout.InfiniteTimeSpan), buffer.TryWrite(9)); // full, nothing drained yet
        Assert.True(buffer.TryRead(out int first));
        Assert.Equal(0, first);
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(4));

        buffer.Complete();
        Assert.Equal(WriteResult.Completed, buffer.TryWrite(5));
        Assert.Equal(WriteResult.Completed, buffer.TryWrite(5));
        Assert.Equal(new BackpressureStatistics(5, 1, 0, 0, 1, 4), buffer.GetStatistics());

        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.TryWrite(6));
        Assert.Equal([1, 2, 3, 4], Drain(buffer));
        Assert.False(buffer.TryRead(out _));
        Assert.Equal(new BackpressureStatistics(5, 5, 0, 0, 1, 0), buffer.GetStatistics());
        await buffer.Completion.WaitAsync(Generous); // completed before the disposal: without an error
        Assert.True(buffer.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public void WriteResultAccepted_IsTheDefaultValue_AcceptedWithNoReasonAndZeroRetry()
    {
        WriteResult accepted = WriteResult.Accepted;
        Assert.Equal(default, accepted);
        Assert.Equal(WriteOutcome.Accepted, accepted.Outcome);
        Assert.Equal(RejectReason.None, accepted.Reason);
        Assert.Equal(TimeSpan.Zero, accepted.RetryAfter);
        Assert.True(accepted.IsAccepted);
    }

    [Fact]
    public void WriteResult_EveryOutcomeReasonAndHint_RoundTripsThroughItsPackedFields()
    {
        foreach (RejectReason reason in Enum.GetValues<RejectReason>())
        {
            foreach (TimeSpan hint in new[] { TimeSpan.Zero, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan, TimeSpan.MaxValue })
            {
                WriteResult rejected = WriteResult.Rejected(reason, hint);
                Assert.Equal(WriteOutcome.Rejected, rejected.Outcome);
                Assert.Equal(reason, rejected.Reason);
                Assert.Equal(hint, rejected.RetryAfter);
                Assert.Equal(rejected, WriteResult.Rejected(reason, hint));
                Assert.NotEqual(rejected, WriteResult.Rejected(reason, hint - TimeSpan.FromTicks(1)));
            }
        }

        Assert.Equal(WriteOutcome.DroppedIncoming, WriteResult.DroppedIncoming.Outcome);
        Assert.Equal(WriteOutcome.EvictedOldest, WriteResult.EvictedOldest.Outcome);
        Assert.Equal(WriteOutcome.Completed, WriteResult.Completed.Outcome);
        Assert.Equal(RejectReason.None, WriteResult.Completed.Reason);
        Assert.NotEqual(WriteResult.Completed, WriteResult.Accepted);
        Assert.Equal(WriteResult.Completed.GetHashCode(), WriteResult.Completed.GetHashCode());
    }
}
