using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// Contract points of <see cref="DeadLetterQueue{T}"/> that a mutation run of session 14 found untested (Stryker on
/// DeadLetterQueue.cs: each check or branch below could be deleted with every unit test still passing). Session 15 added
/// the ones that run left: <c>Dispose</c> ending the metrics, the first of several drop-callback failures being the one
/// rethrown, and a bad replay delay running no user code.
/// </summary>
public sealed class DeadLetterQueueBoundaryTests
{
    private static DeadLetterQueue<string> Queue(ManualTimeProvider time, int capacity = 4, OverflowPolicy fullMode = OverflowPolicy.DropOldest, Action<DeadLetter<string>, DropReason>? dropped = null) =>
        new(new DeadLetterQueueOptions<string> { Capacity = capacity, FullMode = fullMode, TimeProvider = time, ItemDropped = dropped });

    [Fact]
    public void Ctor_NullTimeProvider_ThrowsNamingIt()
    {
        ArgumentNullException e = Assert.Throws<ArgumentNullException>(() => new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = null! }));
        Assert.Equal("options.TimeProvider", e.ParamName);
    }

    [Fact]
    public void TryAddParts_BadParts_ThrowAtTheBoundaryAndAddNothing()
    {
        using var queue = Queue(new ManualTimeProvider());
        Assert.Equal("sourceName", Assert.Throws<ArgumentNullException>(() => queue.TryAdd("m", null!, "reason", null, 1)).ParamName);
        Assert.Equal("reason", Assert.Throws<ArgumentNullException>(() => queue.TryAdd("m", "source", null!, null, 1)).ParamName);
        Assert.Equal("attemptCount", Assert.Throws<ArgumentOutOfRangeException>(() => queue.TryAdd("m", "source", "reason", null, -1)).ParamName);
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.GetStatistics().Added);
    }

    [Fact]
    public void TryAddParts_GivenAttemptTimes_KeptAsGiven_ElseTheQueuesClock()
    {
        var time = new ManualTimeProvider();
        using var queue = Queue(time);
        var first = new DateTimeOffset(2025, 3, 1, 8, 0, 0, TimeSpan.Zero);
        var last = first.AddMinutes(5);
        Assert.True(queue.TryAdd("given", "source", "reason", null, 3, first, last).IsAccepted);
        Assert.True(queue.TryAdd("defaulted", "source", "reason", null, 3).IsAccepted);
        Assert.True(queue.TryTake(out DeadLetter<string>? given));
        Assert.Equal(first, given.FirstAttempt);
        Assert.Equal(last, given.LastAttempt);
        Assert.True(queue.TryTake(out DeadLetter<string>? defaulted));
        Assert.Equal(time.GetUtcNow(), defaulted.FirstAttempt);
        Assert.Equal(time.GetUtcNow(), defaulted.LastAttempt);
    }

    [Fact]
    public void ReplayIntoDelayQueue_BadArguments_ThrowAndReplayNothing()
    {
        var time = new ManualTimeProvider();
        using var queue = Queue(time);
        Assert.True(queue.TryAdd("m", "source", "reason", null, 1).IsAccepted);
        using var target = new DelayQueue<string>(4, new DelayQueueOptions<string> { TimeProvider = time });
        Assert.Equal("target", Assert.Throws<ArgumentNullException>(() => queue.Replay((DelayQueue<string>)null!, TimeSpan.Zero)).ParamName);
        Assert.Equal("delay", Assert.Throws<ArgumentOutOfRangeException>(() => queue.Replay(target, TimeSpan.FromTicks(-1))).ParamName);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void ReplayIntoDelayQueue_WithATransform_SendsTheTransformedMessages()
    {
        var time = new ManualTimeProvider();
        using var queue = Queue(time);
        Assert.True(queue.TryAdd("a", "orders", "timeout", null, 2).IsAccepted);
        Assert.True(queue.TryAdd("b", "orders", "timeout", null, 5).IsAccepted);
        using var target = new DelayQueue<string>(4, new DelayQueueOptions<string> { TimeProvider = time });

        ReplayResult result = queue.Replay(target, TimeSpan.Zero, transform: letter => $"{letter.Message}#{letter.AttemptCount}");

        Assert.Equal(new ReplayResult(2, 0), result);
        Assert.True(target.TryDequeue(out string? first));
        Assert.True(target.TryDequeue(out string? second));
        Assert.Equal(["a#2", "b#5"], new[] { first!, second! }.Order().ToArray());
    }

    [Fact]
    public void TryAdd_DropCallbackThrows_TheAddCompletesThenTheExceptionReachesTheCaller()
    {
        // A full DropIncoming queue: the incoming letter is counted as dropped, then the callback's exception is thrown
        // to the adder (the one who can be handed it), after the queue is consistent again.
        using var queue = Queue(new ManualTimeProvider(), capacity: 1, fullMode: OverflowPolicy.DropIncoming, dropped: (_, _) => throw new FormatException("callback"));
        Assert.True(queue.TryAdd("held", "source", "reason", null, 1).IsAccepted);
        Assert.Throws<FormatException>(() => queue.TryAdd("incoming", "source", "reason", null, 1));
        DeadLetterStatistics stats = queue.GetStatistics();
        Assert.Equal(1, stats.DroppedIncoming);
        Assert.Equal(1, stats.Count);
        Assert.True(queue.TryTake(out DeadLetter<string>? letter));
        Assert.Equal("held", letter.Message);
    }

    [Fact]
    public void Replay_TakenLetters_AreNotHeldByTheQueue()
    {
        // A replay compacts the ring; the slots it vacates are cleared, so replayed messages can be collected.
        using var queue = new DeadLetterQueue<object>(new DeadLetterQueueOptions<object> { Capacity = 8, TimeProvider = new ManualTimeProvider() });
        WeakReference replayed = AddAndReplayOdd(queue);
        for (int i = 0; i < 5 && replayed.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.False(replayed.IsAlive);
        Assert.Equal(2, queue.Count);
    }

    [Fact]
    public void Dispose_NamedQueue_StopsReportingOnTheMeter()
    {
        string name = $"dlq-{Guid.NewGuid():N}";
        using var recorder = new NamedMetricsRecorder(name);
        var queue = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = new ManualTimeProvider(), Name = name });
        Assert.True(queue.TryAdd("m", "source", "reason", null, 1).IsAccepted);
        Assert.Equal(1, recorder.Observe()["lockfree.deadletter.count"]);

        queue.Dispose();

        Assert.Empty(recorder.Observe()); // without the unregistration: still reported (the queue is alive: this test holds it)
        GC.KeepAlive(queue);
    }

    [Fact]
    public void Replay_SeveralLettersNoLongerFitAndTheCallbackThrowsForEach_AllReportedAndTheFirstExceptionRethrown()
    {
        // The sink refuses after adds refilled the queue: both taken letters are dropped on the way back. The callback
        // throws for each; every one is reported, then the first exception (not the last) reaches the caller.
        var reported = new List<string>();
        using var queue = Queue(new ManualTimeProvider(), capacity: 2, dropped: (letter, _) =>
        {
            reported.Add(letter.Message);
            throw new FormatException(letter.Message);
        });
        Assert.True(queue.TryAdd("a", "source", "reason", null, 1).IsAccepted);
        Assert.True(queue.TryAdd("b", "source", "reason", null, 1).IsAccepted);

        FormatException e = Assert.Throws<FormatException>(() => queue.Replay(_ =>
        {
            Assert.True(queue.TryAdd("c", "source", "reason", null, 1).IsAccepted); // a and b are out: room for two
            Assert.True(queue.TryAdd("d", "source", "reason", null, 1).IsAccepted);
            return false;
        }));

        Assert.Equal(["a", "b"], reported.Order());
        Assert.Equal(reported[0], e.Message);
        Assert.Equal(2, queue.GetStatistics().Evicted);
        Assert.Equal(["c", "d"], queue.Snapshot().Select(l => l.Message));
    }

    [Fact]
    public void ReplayIntoDelayQueue_BadDelay_RunsNoUserCode()
    {
        // Checked before anything is chosen: the predicate and the transform never run, and no letter leaves the queue.
        var time = new ManualTimeProvider();
        using var queue = Queue(time);
        Assert.True(queue.TryAdd("m", "source", "reason", null, 1).IsAccepted);
        using var target = new DelayQueue<string>(4, new DelayQueueOptions<string> { TimeProvider = time });
        int calls = 0;

        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Replay(target, DelayQueue<string>.MaxDelay + TimeSpan.FromTicks(1), _ => ++calls > 0, letter => letter.Message + calls++));

        Assert.Equal(0, calls);
        Assert.Equal((1, 0, 0L), (queue.Count, target.Count, queue.GetStatistics().Replayed));
    }

    private static WeakReference AddAndReplayOdd(DeadLetterQueue<object> queue)
    {
        var messages = new object[] { new(), new(), new(), new() };
        foreach (object message in messages)
        {
            Assert.True(queue.TryAdd(message, "source", "reason", null, 1).IsAccepted);
        }

        // Take the last two (the ring's tail slots are vacated by the compaction), keep the first two.
        object last = messages[3];
        ReplayResult result = queue.Replay(_ => true, letter => letter.Message == messages[2] || letter.Message == last);
        Assert.Equal(new ReplayResult(2, 0), result);
        return new WeakReference(last);
    }
}
