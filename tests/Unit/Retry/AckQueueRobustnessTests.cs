using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// <see cref="AckQueue{T}"/> under failures around it: a dead-letter callback that throws, a delivery handed to the
/// wrong queue. Every message stays accounted for (<c>Enqueued = Acked + DeadLettered + Count</c>).
/// </summary>
public sealed class AckQueueRobustnessTests
{
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(10);

    private static AckQueue<string> Create(ManualTimeProvider time, int maxDeliveries = 0, DeadLetterQueue<string>? deadLetters = null) =>
        new(new AckQueueOptions<string>
        {
            Capacity = 8,
            VisibilityTimeout = Visibility,
            TimeProvider = time,
            MaxDeliveries = maxDeliveries,
            DeadLetters = deadLetters,
        });

    /// <summary>A dead-letter queue of one, evicting its oldest, whose drop callback throws.</summary>
    private static DeadLetterQueue<string> ThrowingDlq(ManualTimeProvider time) => new(new DeadLetterQueueOptions<string>
    {
        Capacity = 1,
        FullMode = OverflowPolicy.DropOldest,
        TimeProvider = time,
        ItemDropped = static (_, _) => throw new InvalidOperationException("drop callback failed"),
    });

    [Fact]
    public void VisibilityTimeout_DeadLetterCallbackThrows_EveryExpiredMessageStillMoved()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = ThrowingDlq(time);
        using AckQueue<string> queue = Create(time, maxDeliveries: 1, deadLetters: dlq);
        foreach (string m in new[] { "a", "b", "c" })
        {
            Assert.True(queue.TryEnqueue(m).IsAccepted);
            Assert.True(queue.TryReceive(out _));
        }

        var reported = new List<Exception>();
        queue.CallbackFailed += (sender, ex) =>
        {
            Assert.Same(queue, sender);
            reported.Add(ex);
        };

        // One expiry pass moves all three; the second and third evict the one before, and the callback throws. The
        // pass runs on the timer's thread (here the Advance caller): nothing may escape it. Before, the first failure
        // was rethrown there, which on a TimeProvider.System timer thread ends the process.
        Exception? thrown = Record.Exception(() => time.Advance(Visibility));

        Assert.Null(thrown);
        Assert.Equal(2, queue.FailedCallbackCount);
        Assert.Equal(2, reported.Count);
        Assert.All(reported, ex => Assert.Equal("drop callback failed", ex.Message));
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((3L, 3L, 0, 0), (stats.Expired, stats.DeadLettered, stats.Count, stats.InFlight));
        Assert.Equal(stats.Enqueued, stats.Acked + stats.DeadLettered + stats.Count);
        Assert.Equal("c", Assert.Single(dlq.Snapshot()).Message);
        Assert.Equal(2, dlq.GetStatistics().Evicted);

        // The capacity is whole again: eight more fit.
        for (int i = 0; i < 8; i++)
        {
            Assert.True(queue.TryEnqueue($"m{i}").IsAccepted);
        }
    }

    [Fact]
    public void VisibilityTimeout_DeadLetterCallbackAndFailureHandlerThrow_NothingEscapesTheTimerThread()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = ThrowingDlq(time);
        dlq.TryAdd("old", "test", "seed", null, 1);
        using AckQueue<string> queue = Create(time, maxDeliveries: 1, deadLetters: dlq);
        queue.CallbackFailed += (_, _) => throw new InvalidOperationException("handler failed");
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));

        Assert.Null(Record.Exception(() => time.Advance(Visibility)));

        Assert.Equal(1, queue.FailedCallbackCount);
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((1L, 1L, 0, 0), (stats.Expired, stats.DeadLettered, stats.Count, stats.InFlight));
        Assert.Equal("a", Assert.Single(dlq.Snapshot()).Message);
    }

    [Fact]
    public void Nack_PastMaxDeliveriesAndDeadLetterCallbackThrows_MessageCountedAndRoomReturned()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = ThrowingDlq(time);
        dlq.TryAdd("old", "test", "seed", null, 1);
        using AckQueue<string> queue = Create(time, maxDeliveries: 1, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        Assert.Throws<InvalidOperationException>(() => queue.Nack(delivery));
        Assert.Equal(0, queue.FailedCallbackCount); // the caller saw it: not a timer-thread failure

        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((1L, 0, 0), (stats.DeadLettered, stats.Count, stats.InFlight));
        Assert.Equal("a", Assert.Single(dlq.Snapshot()).Message);
        Assert.False(queue.Ack(delivery)); // ended
    }

    [Fact]
    public void DeadLetter_CallbackThrows_MessageCountedAndRoomReturned()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = ThrowingDlq(time);
        dlq.TryAdd("old", "test", "seed", null, 1);
        using AckQueue<string> queue = Create(time, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        Assert.Throws<InvalidOperationException>(() => queue.DeadLetter(delivery, "poison"));

        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((1L, 0, 0), (stats.DeadLettered, stats.Count, stats.InFlight));
    }

    private static DeadLetterQueue<string> DisposedDlq(ManualTimeProvider time)
    {
        var dlq = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = time });
        dlq.Dispose();
        return dlq;
    }

    [Fact]
    public void Nack_PastMaxDeliveriesIntoDisposedDeadLetters_ThrowsAndLeavesTheDeliveryInFlight()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = DisposedDlq(time);
        using AckQueue<string> queue = Create(time, maxDeliveries: 1, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        // Before, the delivery ended, the message was counted as dead-lettered and its room returned, then the
        // disposed dead-letter queue refused it: gone from both queues.
        ObjectDisposedException refused = Assert.Throws<ObjectDisposedException>(() => queue.Nack(delivery));

        Assert.Contains("DeadLetterQueue", refused.ObjectName);
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((0L, 0L, 1, 1), (stats.Nacked, stats.DeadLettered, stats.Count, stats.InFlight));
        Assert.True(queue.Ack(delivery)); // left as it was: the consumer still owns it
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void DeadLetter_IntoDisposedDeadLetters_ThrowsAndLeavesTheDeliveryInFlight()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = DisposedDlq(time);
        using AckQueue<string> queue = Create(time, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        Assert.Throws<ObjectDisposedException>(() => queue.DeadLetter(delivery, "poison"));

        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((0L, 1, 1), (stats.DeadLettered, stats.Count, stats.InFlight));
        Assert.False(queue.DeadLetter(default, "stale")); // a stale delivery still answers false, not the disposal
        Assert.True(queue.Ack(delivery));
    }

    [Fact]
    public void VisibilityTimeout_PastMaxDeliveriesIntoDisposedDeadLetters_MessageKeptAndReported()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = DisposedDlq(time);
        using AckQueue<string> queue = Create(time, maxDeliveries: 1, deadLetters: dlq);
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, ex) => reported.Add(ex);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));

        time.Advance(Visibility);

        // Refused by the disposed dead-letter queue: back in this queue (visible at once, its count kept), reported.
        Assert.IsType<ObjectDisposedException>(Assert.Single(reported));
        Assert.Equal(1, queue.FailedCallbackCount);
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((1L, 0L, 1, 0), (stats.Expired, stats.DeadLettered, stats.Count, stats.InFlight));
        Assert.Equal(stats.Enqueued, stats.Acked + stats.DeadLettered + stats.Count);
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
        Assert.True(queue.Ack(again));
    }

    [Fact]
    public void Nack_DeadLettersDisposedAfterTheCheck_MessageRequeuedAndCallerToldObjectDisposed()
    {
        // The dead-letter queue is disposed between the ack queue's check (under its lock, before the delivery ends)
        // and the add: the message cannot stay in flight any more, so it goes back to the ready queue.
        var manual = new ManualTimeProvider();
        var time = new HookedClock(manual);
        var dlq = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = manual });
        using var queue = new AckQueue<string>(new AckQueueOptions<string>
        {
            Capacity = 8, VisibilityTimeout = Visibility, TimeProvider = time, MaxDeliveries = 1, DeadLetters = dlq,
        });
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        time.OnNextReading = dlq.Dispose; // MoveToDeadLetters reads the ack queue's clock for the letter's times
        Assert.Throws<ObjectDisposedException>(() => queue.Nack(delivery));

        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((0L, 1, 0), (stats.DeadLettered, stats.Count, stats.InFlight));
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
        Assert.Equal(0, dlq.Count);
    }

    [Fact]
    public void Ack_DeliveryOfAnotherQueueAtTheSameSlotAndStamp_IsRefusedAndLeavesThisQueuesMessageInFlight()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = new(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = time });
        using AckQueue<string> first = Create(time, deadLetters: dlq);
        using AckQueue<string> second = Create(time, deadLetters: dlq);
        first.TryEnqueue("from-first");
        second.TryEnqueue("from-second");
        Assert.True(first.TryReceive(out Delivery<string> fromFirst));
        Assert.True(second.TryReceive(out Delivery<string> fromSecond));

        // Same slot and stamp in both tables: before, the second queue acked (nacked, dead-lettered) its own,
        // unrelated message when handed the first queue's delivery.
        Assert.False(second.Ack(fromFirst));
        Assert.False(second.Nack(fromFirst));
        Assert.False(second.DeadLetter(fromFirst, "wrong queue"));

        Assert.Equal((1, 1), (second.InFlightCount, second.Count));
        Assert.Equal(0, dlq.Count);
        Assert.Equal(0, second.GetStatistics().Acked + second.GetStatistics().Nacked);
        Assert.True(second.Ack(fromSecond));
        Assert.True(first.Ack(fromFirst));
    }
    /// <summary>A <see cref="ManualTimeProvider"/> whose next clock reading first runs a hook (a deterministic stand-in for a racing thread).</summary>
    private sealed class HookedClock(ManualTimeProvider inner) : TimeProvider
    {
        public Action? OnNextReading { get; set; }

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp()
        {
            Action? hook = OnNextReading;
            OnNextReading = null;
            hook?.Invoke();
            return inner.GetTimestamp();
        }

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }

    [Fact]
    public void VisibilityTimeout_DisposeDuringTheExpiryPass_ExpiredMessageStaysReadable()
    {
        var manual = new ManualTimeProvider();
        var time = new HookedClock(manual);
        var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 4, VisibilityTimeout = Visibility, TimeProvider = time });
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));

        // The expiry pass reads the clock under its lock; Dispose runs right there (the lock is reentrant), as a
        // Dispose on another thread may between the pass's table scan and its requeue. Before, the requeue met a
        // completed inner queue and the message vanished, still counted in Count.
        time.OnNextReading = queue.Dispose;
        manual.Advance(Visibility);

        Assert.Equal(1, queue.GetStatistics().Expired);
        Assert.Equal(1, queue.Count);
        Assert.True(queue.TryReceive(out Delivery<string> again)); // items left stay readable after Dispose
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
        Assert.True(queue.Ack(again));
        Assert.Equal(0, queue.Count);
    }
    [Fact]
    public void VisibilityTimeout_ClockThrowsInTheExpiryPass_ReportedAndThePassRetried()
    {
        var manual = new ManualTimeProvider();
        var time = new HookedClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 4, VisibilityTimeout = Visibility, TimeProvider = time });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, ex) => reported.Add(ex);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));

        // The expiry pass's clock reading throws. Before, the pass had already dropped its armed time, so no wake-up
        // was left for the message in flight: it never expired again (unless a receive happened to make a new head).
        time.OnNextReading = static () => throw new InvalidOperationException("clock failed");
        manual.Advance(Visibility);
        Assert.Equal("clock failed", Assert.Single(reported).Message);
        Assert.Equal(1, queue.InFlightCount);

        manual.Advance(Visibility); // the retry (at most a second later) finds the clock working

        Assert.Equal(0, queue.InFlightCount);
        Assert.Equal(1, queue.GetStatistics().Expired);
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
    }

    [Fact]
    public void TryEnqueue_ClockThrows_NothingEnqueuedAndRoomReturned()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, VisibilityTimeout = Visibility, TimeProvider = clock });

        clock.FailReading(1); // the inner delay queue's reading for the due time
        Assert.Throws<InvalidOperationException>(() => queue.TryEnqueue("a", TimeSpan.FromSeconds(1)));

        Assert.Equal(0, queue.Count); // before: 1 held for good, and every later enqueue rejected
        Assert.Equal(0, queue.GetStatistics().Enqueued);
        Assert.True(queue.TryEnqueue("b").IsAccepted);
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.Equal("b", delivery.Message);
    }

    [Fact]
    public void Nack_WithDelayWhenClockThrows_MessageVisibleAtOnceAndCallerTold()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 2, VisibilityTimeout = Visibility, TimeProvider = clock });
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        // The delay cannot be timed without the clock, and the delivery has ended: before, the message vanished (its
        // unit still counted, so Count said 1 and nothing could ever be received). It is kept, visible at once.
        clock.FailReading(1);
        Assert.Throws<InvalidOperationException>(() => queue.Nack(delivery, TimeSpan.FromSeconds(5)));

        Assert.Equal((1, 0), (queue.Count, queue.InFlightCount));
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TryReceive_ClockThrowsAtAnyReading_MessageNeitherLostNorDeliveredTwice(int failingReading)
    {
        // A receive takes the message out of the ready queue, then registers the delivery (its first delivery time and
        // deadline, one clock reading). Before, a reading that threw there lost the message: gone from the ready queue,
        // never in flight, its unit of room held for good (Count 1, nothing ever receivable again).
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, VisibilityTimeout = Visibility, TimeProvider = clock });
        Assert.True(queue.TryEnqueue("a").IsAccepted);

        clock.FailReading(failingReading);
        bool threw = false;
        Delivery<string> delivery = default;
        bool received = false;
        try
        {
            received = queue.TryReceive(out delivery);
        }
        catch (InvalidOperationException)
        {
            threw = true;
        }

        if (!received)
        {
            Assert.True(threw, "the receive neither delivered nor threw");
            Assert.Equal((1, 0), (queue.Count, queue.InFlightCount));
            Assert.True(queue.TryReceive(out delivery)); // the message is still there, visible at once
        }

        Assert.Equal("a", delivery.Message);
        Assert.Equal(1, delivery.DeliveryCount); // a receive that failed is no delivery
        Assert.True(queue.Ack(delivery));
        Assert.Equal((0, 0), (queue.Count, queue.InFlightCount));
        Assert.False(queue.TryReceive(out _));
    }

    [Fact]
    public void TryReceive_VisibilityTimerThrowsWhenArmed_DeliveredReportedAndTimeoutsResume()
    {
        // The receive of a new head arms the visibility timer (its TimeProvider's ITimer: user code). Before, a Change
        // that threw reached the receiver, who never got the delivery, while the queue believed the timer armed: the
        // message stayed in flight, owned by nobody, and no message ever timed out again.
        var manual = new ManualTimeProvider();
        var clock = new FailingTimerClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 2, VisibilityTimeout = Visibility, TimeProvider = clock });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, ex) => reported.Add(ex);
        Assert.True(queue.TryEnqueue("a").IsAccepted);
        Assert.True(queue.TryEnqueue("b").IsAccepted);

        clock.FailNextChange();
        Assert.True(queue.TryReceive(out Delivery<string> first)); // before: threw, and "a" was in flight for good
        Assert.Equal("a", first.Message);
        Assert.Equal(1, queue.FailedCallbackCount);
        Assert.Equal("timer failed", Assert.Single(reported).Message);

        Assert.True(queue.TryReceive(out Delivery<string> second)); // arms for the head, "a"
        Assert.Equal("b", second.Message);
        manual.Advance(Visibility + TimeSpan.FromSeconds(1));

        Assert.Equal(0, queue.InFlightCount); // both timed out
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
    }

    /// <summary>A clock whose timers' next <see cref="ITimer.Change"/> throws once when asked.</summary>
    private sealed class FailingTimerClock(ManualTimeProvider inner) : TimeProvider
    {
        private int _failNext;

        public void FailNextChange() => Volatile.Write(ref _failNext, 1);

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            new FailingTimer(this, inner.CreateTimer(callback, state, dueTime, period));

        private sealed class FailingTimer(FailingTimerClock owner, ITimer timer) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) =>
                Interlocked.Exchange(ref owner._failNext, 0) == 1 ? throw new InvalidOperationException("timer failed") : timer.Change(dueTime, period);

            public void Dispose() => timer.Dispose();

            public ValueTask DisposeAsync() => timer.DisposeAsync();
        }
    }

    [Fact]
    public void TryEnqueue_RejectedWhileAConsumerHoldsTheLock_AnswersWithoutWaitingForIt()
    {
        // A rejected enqueue asks the inner delay queue for a retry hint. Before, it took the consumer lock to do so
        // (blocking), so a storm of rejected producers queued up behind, and held up, the consumers; the delay queue's
        // own rejections only try the lock. Here a receive holds that lock (inside a clock reading) while another
        // thread's enqueue is rejected: that enqueue must answer while the lock is still held.
        var manual = new ManualTimeProvider();
        var time = new HookedClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, TimeProvider = time });
        Assert.True(queue.TryEnqueue("a", TimeSpan.FromSeconds(1)).IsAccepted);

        using var answered = new ManualResetEventSlim();
        WriteResult result = default;
        bool answeredWhileLocked = false;
        time.OnNextReading = () =>
        {
            _ = Task.Run(() =>
            {
                result = queue.TryEnqueue("b");
                answered.Set();
            });
            answeredWhileLocked = answered.Wait(TimeSpan.FromSeconds(10)); // bounded: a blocked enqueue fails the test, never hangs it
        };

        Assert.False(queue.TryReceive(out _)); // drains "a" under the lock, reads the clock there: not due

        Assert.True(answeredWhileLocked);
        Assert.True(answered.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal((WriteOutcome.Rejected, RejectReason.Full), (result.Outcome, result.Reason));
        Assert.Equal(TimeSpan.FromSeconds(1), result.RetryAfter); // the root the consumer published before the reading
    }
}
