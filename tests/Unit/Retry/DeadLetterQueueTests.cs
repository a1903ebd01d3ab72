using System.Diagnostics.Metrics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary><see cref="DeadLetterQueue{T}"/>: bounded with its overflow policies, inspection, removal, replay, metrics.</summary>
public sealed class DeadLetterQueueTests
{
    private static DeadLetterQueue<int> Create(int capacity, OverflowPolicy mode = OverflowPolicy.DropOldest, Action<DeadLetter<int>, DropReason>? dropped = null, TimeProvider? time = null, string? name = null) =>
        new(new DeadLetterQueueOptions<int> { Capacity = capacity, FullMode = mode, ItemDropped = dropped, TimeProvider = time ?? TimeProvider.System, Name = name });

    private static DeadLetter<int> Letter(int message, string reason = "failed") =>
        new(message, "orders", reason, new TimeoutException(), 3, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddSeconds(1));

    private static int[] Messages(DeadLetterQueue<int> queue) => queue.Snapshot().Select(l => l.Message).ToArray();

    private static void AssertBalanced(DeadLetterQueue<int> queue)
    {
        DeadLetterStatistics s = queue.GetStatistics();
        Assert.Equal(s.Added, s.Replayed + s.Removed + s.Evicted + s.Count);
    }

    [Fact]
    public void TryAdd_KeepsMetadataInArrivalOrder()
    {
        using DeadLetterQueue<int> queue = Create(4);
        var failure = new InvalidOperationException("boom");

        Assert.Equal(WriteResult.Accepted, queue.TryAdd(1, "billing", "MaxAttempts", failure, 5, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddSeconds(9)));
        queue.TryAdd(Letter(2));

        DeadLetter<int> first = queue.Snapshot()[0];
        Assert.Equal((1, "billing", "MaxAttempts", 5), (first.Message, first.SourceName, first.Reason, first.AttemptCount));
        Assert.Same(failure, first.Exception);
        Assert.Equal(DateTimeOffset.UnixEpoch.AddSeconds(9), first.LastAttempt);
        Assert.Equal([1, 2], Messages(queue));
    }

    [Fact]
    public void TryAdd_DropOldest_EvictsAndReports()
    {
        var dropped = new List<(int, DropReason)>();
        using DeadLetterQueue<int> queue = Create(2, OverflowPolicy.DropOldest, (l, r) => dropped.Add((l.Message, r)));
        queue.TryAdd(Letter(1));
        queue.TryAdd(Letter(2));

        Assert.Equal(WriteResult.EvictedOldest, queue.TryAdd(Letter(3)));

        Assert.Equal([(1, DropReason.Oldest)], dropped);
        Assert.Equal([2, 3], Messages(queue));
        Assert.Equal(1, queue.GetStatistics().Evicted);
        AssertBalanced(queue);
    }

    [Fact]
    public void TryAdd_DropOldest_SameInstanceAsTheEvictedHead_IsStillAdded()
    {
        // Re-adding the very instance that is the head of a full queue: before, the eviction of the head was mistaken
        // for a drop of the incoming one (a reference comparison), so the queue ended empty, the result said
        // DroppedIncoming (not counted as such) and the callback reported the wrong reason.
        var reasons = new List<DropReason>();
        using DeadLetterQueue<int> queue = Create(1, dropped: (_, reason) => reasons.Add(reason));
        DeadLetter<int> letter = Letter(1);
        queue.TryAdd(letter);

        Assert.Equal(WriteResult.EvictedOldest, queue.TryAdd(letter));

        Assert.Same(letter, Assert.Single(queue.Snapshot()));
        Assert.Equal([DropReason.Oldest], reasons);
        DeadLetterStatistics s = queue.GetStatistics();
        Assert.Equal((2L, 1L, 0L, 1), (s.Added, s.Evicted, s.DroppedIncoming, s.Count));
        AssertBalanced(queue);
    }

    [Fact]
    public void TryAdd_DropIncoming_DiscardsAndReports()
    {
        var dropped = new List<(int, DropReason)>();
        using DeadLetterQueue<int> queue = Create(1, OverflowPolicy.DropIncoming, (l, r) => dropped.Add((l.Message, r)));
        queue.TryAdd(Letter(1));

        Assert.Equal(WriteResult.DroppedIncoming, queue.TryAdd(Letter(2)));

        Assert.Equal([(2, DropReason.Incoming)], dropped);
        Assert.Equal([1], Messages(queue));
        Assert.Equal(1, queue.GetStatistics().DroppedIncoming);
    }

    [Fact]
    public void TryAdd_Reject_RefusesAndCounts()
    {
        using DeadLetterQueue<int> queue = Create(1, OverflowPolicy.Reject);
        queue.TryAdd(Letter(1));

        WriteResult result = queue.TryAdd(Letter(2));

        Assert.Equal((WriteOutcome.Rejected, RejectReason.Full), (result.Outcome, result.Reason));
        Assert.Equal(1, queue.GetStatistics().Rejected);
        Assert.Equal([1], Messages(queue));
    }

    [Fact]
    public void Snapshot_Filter_SelectsWithoutRemoving()
    {
        using DeadLetterQueue<int> queue = Create(8);
        for (int i = 0; i < 6; i++)
        {
            queue.TryAdd(Letter(i, i % 2 == 0 ? "even" : "odd"));
        }

        Assert.Equal([1, 3, 5], queue.Snapshot(l => l.Reason == "odd").Select(l => l.Message));
        Assert.Equal(6, queue.Count);
    }

    [Fact]
    public void RemoveWhere_And_TryTake_RemoveAndCount()
    {
        using DeadLetterQueue<int> queue = Create(8);
        for (int i = 0; i < 6; i++)
        {
            queue.TryAdd(Letter(i));
        }

        Assert.Equal(3, queue.RemoveWhere(l => l.Message % 2 == 0));
        Assert.True(queue.TryTake(out DeadLetter<int>? oldest));
        Assert.Equal(1, oldest.Message);
        Assert.Equal([3, 5], Messages(queue));
        Assert.Equal(4, queue.GetStatistics().Removed);
        AssertBalanced(queue);
    }

    [Fact]
    public void Replay_SelectedIntoQueue_MovesThemWithTransform()
    {
        using DeadLetterQueue<int> queue = Create(8);
        for (int i = 1; i <= 5; i++)
        {
            queue.TryAdd(Letter(i));
        }

        var target = new MpscQueue<int>(8);
        ReplayResult result = queue.Replay(target, l => l.Message > 2, l => l.Message * 10);

        Assert.Equal(new ReplayResult(3, 0), result);
        var replayed = new List<int>();
        while (target.TryDequeue(out int m))
        {
            replayed.Add(m);
        }

        Assert.Equal([30, 40, 50], replayed);
        Assert.Equal([1, 2], Messages(queue));
        Assert.Equal(3, queue.GetStatistics().Replayed);
        AssertBalanced(queue);
    }

    [Fact]
    public void Replay_TargetFillsUp_KeepsTheRestAtTheFrontInOrder()
    {
        using DeadLetterQueue<int> queue = Create(8);
        for (int i = 1; i <= 5; i++)
        {
            queue.TryAdd(Letter(i));
        }

        var target = new SpscQueue<int>(2);
        ReplayResult result = queue.Replay(target);
        queue.TryAdd(Letter(6));

        Assert.Equal(new ReplayResult(2, 3), result);
        Assert.Equal([3, 4, 5, 6], Messages(queue));
        AssertBalanced(queue);
    }

    [Fact]
    public void Replay_PutBackOverflowsAndTheDropCallbackThrows_EveryEvictedLetterStillReported()
    {
        // Four letters taken for a replay; the target refuses the first after new failures filled the queue, so none
        // of the four fits back. Before, the first ItemDropped exception ended the put-back's reporting loop: the
        // other three were counted as evicted but never handed to the callback.
        var dropped = new List<int>();
        using DeadLetterQueue<int> queue = Create(4, dropped: (l, _) =>
        {
            dropped.Add(l.Message);
            throw new InvalidOperationException("drop callback failed");
        });
        for (int i = 1; i <= 4; i++)
        {
            queue.TryAdd(Letter(i));
        }

        InvalidOperationException thrown = Assert.Throws<InvalidOperationException>(() => queue.Replay(_ =>
        {
            for (int i = 10; i < 14; i++)
            {
                queue.TryAdd(Letter(i));
            }

            return false;
        }));

        Assert.Equal("drop callback failed", thrown.Message);
        Assert.Equal([1, 2, 3, 4], dropped.Order());
        Assert.Equal([10, 11, 12, 13], Messages(queue));
        Assert.Equal(4, queue.GetStatistics().Evicted);
        AssertBalanced(queue);
    }

    [Fact]
    public void Replay_SinkThrows_ItsExceptionPropagatesAndTheLettersAreKept()
    {
        using DeadLetterQueue<int> queue = Create(4);
        queue.TryAdd(Letter(1));
        queue.TryAdd(Letter(2));

        Assert.Throws<TimeoutException>(() => queue.Replay(_ => throw new TimeoutException()));

        Assert.Equal([1, 2], Messages(queue));
        AssertBalanced(queue);
    }

    [Fact]
    public void Replay_AddsFillTheQueueDuringTheReplay_KeptCountsOnlyThosePutBack()
    {
        var dropped = new List<int>();
        using DeadLetterQueue<int> queue = Create(3, dropped: (l, _) => dropped.Add(l.Message));
        queue.TryAdd(Letter(1));
        queue.TryAdd(Letter(2));
        queue.TryAdd(Letter(3));

        // The target takes 1, then refuses 2 after new failures filled the queue (1, 2, 3 are out of it meanwhile):
        // only one of the two refused fits back.
        ReplayResult result = queue.Replay(letter =>
        {
            if (letter.Message == 1)
            {
                return true;
            }

            queue.TryAdd(Letter(10));
            queue.TryAdd(Letter(11));
            return false;
        });

        Assert.Equal([3, 10, 11], Messages(queue));
        Assert.Equal([2], dropped);
        Assert.Equal(new ReplayResult(1, 1, 1), result); // before (session 10): Kept = 2, counting the one evicted on the way back
        Assert.Equal(1, queue.GetStatistics().Evicted);
        AssertBalanced(queue);
    }

    [Fact]
    public void Replay_IntoDelayQueue_BecomesVisibleAfterTheDelay()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<int> queue = Create(4);
        queue.TryAdd(Letter(7));
        using var target = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time });

        Assert.Equal(new ReplayResult(1, 0), queue.Replay(target, TimeSpan.FromSeconds(1)));

        Assert.False(target.TryDequeue(out _));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(target.TryDequeue(out int message));
        Assert.Equal(7, message);
    }

    [Fact]
    public void Replay_UserCodeRunsOutsideTheLock()
    {
        using DeadLetterQueue<int> queue = Create(4);
        queue.TryAdd(Letter(1));
        bool otherThreadGotIn = false;

        queue.Replay(_ =>
        {
            otherThreadGotIn = Task.Run(() => queue.TryAdd(Letter(2))).Wait(TimeSpan.FromSeconds(30));
            return true;
        });

        Assert.True(otherThreadGotIn);
        Assert.Equal([2], Messages(queue));
    }

    [Fact]
    public void GetStatistics_OldestAge_FollowsTheClock()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<int> queue = Create(4, time: time);
        Assert.Equal(TimeSpan.Zero, queue.GetStatistics().OldestAge);
        queue.TryAdd(Letter(1));
        time.Advance(TimeSpan.FromSeconds(5));
        queue.TryAdd(Letter(2));
        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(TimeSpan.FromSeconds(7), queue.GetStatistics().OldestAge);
    }

    [Fact]
    public void Metrics_NamedQueue_ReportsCountAgeAndAdded()
    {
        string name = $"dlq-{Guid.NewGuid():N}";
        var time = new ManualTimeProvider();
        var values = new Dictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName && instrument.Name.StartsWith("lockfree.deadletter.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == BackpressureMetrics.NameTag && (string?)tag.Value == name)
                {
                    lock (values)
                    {
                        values[instrument.Name] = value;
                    }
                }
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        using DeadLetterQueue<int> queue = Create(1, time: time, name: name);
        queue.TryAdd(Letter(1));
        queue.TryAdd(Letter(2)); // evicts 1
        time.Advance(TimeSpan.FromSeconds(3));

        listener.RecordObservableInstruments();

        Assert.Equal(1, values["lockfree.deadletter.count"]);
        Assert.Equal(2, values["lockfree.deadletter.added"]);
        Assert.Equal(1, values["lockfree.deadletter.lost"]);
        Assert.Equal(3, values["lockfree.deadletter.oldest_age"]);
    }

    [Fact]
    public void Constructor_And_Calls_BadArguments_Throw()
    {
        Assert.Throws<ArgumentNullException>(() => new DeadLetterQueue<int>(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(4, OverflowPolicy.Wait));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(4, (OverflowPolicy)7));
        using DeadLetterQueue<int> queue = Create(4);
        Assert.Throws<ArgumentNullException>(() => queue.TryAdd(null!));
        Assert.Throws<ArgumentNullException>(() => queue.TryAdd(1, null!, "r", null, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.TryAdd(1, "s", "r", null, -1));
        Assert.Throws<ArgumentNullException>(() => queue.RemoveWhere(null!));
        Assert.Throws<ArgumentNullException>(() => queue.Replay((Func<DeadLetter<int>, bool>)null!));
        Assert.Throws<ArgumentNullException>(() => queue.Replay((IBoundedQueue<int>)null!));
        Assert.Equal(WriteResult.Accepted, queue.TryAdd(Letter(1))); // still usable
        queue.Dispose();
        Assert.Throws<ObjectDisposedException>(() => queue.TryAdd(Letter(2)));
    }
}
