using System.Reflection;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// <see cref="AckQueue{T}"/> contract points no other test pinned, found by mutation testing (session 15, Stryker.NET on
/// <c>AckQueue.cs</c> and <c>AckQueue.Receiving.cs</c>): each test here failed on the mutant it names, planted by hand.
/// </summary>
public sealed class AckQueueBoundaryTests
{
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static DeadLetterQueue<string> Dlq(TimeProvider time) => new(new DeadLetterQueueOptions<string> { Capacity = 64, TimeProvider = time });

    private static AckQueue<string> Create(TimeProvider time, int capacity, int maxDeliveries = 0, DeadLetterQueue<string>? deadLetters = null, TimeSpan? visibility = null) =>
        new(new AckQueueOptions<string>
        {
            Capacity = capacity,
            VisibilityTimeout = visibility ?? Visibility,
            TimeProvider = time,
            MaxDeliveries = maxDeliveries,
            DeadLetters = deadLetters,
        });

    /// <summary>The queue's table lock (private): held by a test to make a rejection's hint meet a busy receiver.</summary>
    private static object TableLock(AckQueue<string> queue) =>
        typeof(AckQueue<string>).GetField("_lock", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(queue)!;

    [Fact]
    public void Constructor_NullName_ThrowsNamingIt()
    {
        // Mutants: the check deleted (the queue took a null name, and its dead letters carried it), its name emptied.
        var error = Assert.Throws<ArgumentNullException>(() => new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, Name = null! }));
        Assert.Equal("options.Name", error.ParamName);
    }

    [Fact]
    public void Constructor_NullTimeProvider_ThrowsNamingIt()
    {
        // Mutant: the parameter name emptied. (Deleting the check is equivalent: the inner delay queue's throws the same.)
        var error = Assert.Throws<ArgumentNullException>(() => new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, TimeProvider = null! }));
        Assert.Equal("options.TimeProvider", error.ParamName);
    }

    [Fact]
    public async Task ReceiveAsync_AlreadyCancelledWithAMessageReady_CanceledAndTheMessageStays()
    {
        // Mutant: the cancelled-token check deleted (no coverage): the ready message was delivered to a cancelled call.
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time, capacity: 2);
        queue.TryEnqueue("a");
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        ValueTask<Delivery<string>> receive = queue.ReceiveAsync(cts.Token);

        Assert.True(receive.IsCanceled);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receive.AsTask());
        Assert.Equal((1, 0), (queue.Count, queue.InFlightCount));
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.Equal(("a", 1), (delivery.Message, delivery.DeliveryCount));
    }

    [Fact]
    public void DeadLetter_NullReason_ThrowsAndLeavesTheDeliveryInFlight()
    {
        // Mutant: the null check deleted: the delivery ended and a letter without a reason was filed.
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = Dlq(time);
        using AckQueue<string> queue = Create(time, capacity: 2, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        Assert.Throws<ArgumentNullException>(() => queue.DeadLetter(delivery, null!));

        Assert.Equal(0, dlq.Count);
        Assert.Equal(1, queue.InFlightCount);
        Assert.True(queue.Ack(delivery));
    }

    [Fact]
    public void DeadLetter_SomeTimeAfterTheDelivery_LastAttemptIsTheDeliveryTime()
    {
        // Mutant: LastAttempt computed as now + elapsed (the existing test dead-lettered at the delivery's instant).
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = Dlq(time);
        using AckQueue<string> queue = Create(time, capacity: 2, deadLetters: dlq);
        queue.TryEnqueue("a");
        time.Advance(TimeSpan.FromSeconds(1));
        DateTimeOffset received = time.GetUtcNow();
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        time.Advance(TimeSpan.FromSeconds(3));

        Assert.True(queue.DeadLetter(delivery, "poison"));

        DeadLetter<string> letter = Assert.Single(dlq.Snapshot());
        Assert.Equal((received, received), (letter.FirstAttempt, letter.LastAttempt));
    }

    [Fact]
    public void DeadLetter_ClockThrowsBeforeTheLetterIsFiled_MessageBackVisibleAtOnceWithItsCount()
    {
        // Mutant: the put-back deleted (no coverage): the message left the table and went nowhere, its room held for good.
        var manual = new ManualTimeProvider();
        var time = new UtcFailingClock(manual);
        using DeadLetterQueue<string> dlq = Dlq(manual);
        using AckQueue<string> queue = Create(time, capacity: 2, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        time.FailNext = true;

        var error = Assert.Throws<InvalidOperationException>(() => queue.DeadLetter(delivery, "poison"));

        Assert.Equal("wall clock failed", error.Message);
        Assert.Equal(0, dlq.Count);
        Assert.Equal((1, 0), (queue.Count, queue.InFlightCount));
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
        Assert.True(queue.Ack(again));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void Dispose_MessageInFlight_NoLongerTimesOutAndStaysAckable()
    {
        // Mutant: the visibility wake-up not disposed: the expiry pass still ran after Dispose and took the message back.
        var time = new ManualTimeProvider();
        AckQueue<string> queue = Create(time, capacity: 2);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));

        queue.Dispose();
        time.Advance(Visibility * 2);

        Assert.Equal(0, time.ActiveTimers);
        Assert.Equal((1, 0L), (queue.InFlightCount, queue.GetStatistics().Expired));
        Assert.True(queue.Ack(delivery));
    }

    [Fact]
    public async Task ReceiveAsync_DisposedWhileParked_ObjectDisposedNamesTheAckQueue()
    {
        // Mutants: the rethrow as this queue's exception deleted or disabled: the caller saw the inner DelayQueue's name.
        var time = new ManualTimeProvider();
        AckQueue<string> queue = Create(time, capacity: 2);
        ValueTask<Delivery<string>> pending = queue.ReceiveAsync();
        Assert.False(pending.IsCompleted);

        queue.Dispose();

        var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.AsTask().WaitAsync(Generous));
        Assert.Equal(typeof(AckQueue<string>).FullName, error.ObjectName);
    }

    [Fact]
    public void TryReceive_SeveralInFlight_ArmsTheVisibilityTimerOnce()
    {
        // Mutant: the arming condition's && turned into ||: every receive re-armed the timer for the same head.
        var manual = new ManualTimeProvider();
        var time = new CountingClock(manual);
        using AckQueue<string> queue = Create(time, capacity: 4);
        for (int i = 0; i < 3; i++)
        {
            queue.TryEnqueue("m" + i);
        }

        int before = time.Armings;
        for (int i = 0; i < 3; i++)
        {
            Assert.True(queue.TryReceive(out _));
            manual.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(1, time.Armings - before);
    }

    [Fact]
    public void TryEnqueue_AllRoomInFlightPastTheLastDeliverysDeadlineNotYetExpired_HintIsZeroNotNegative()
    {
        // Mutant: ToTimeSpan without its "not positive is zero" branch answered a negative hint.
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = Dlq(time);
        using AckQueue<string> queue = Create(time, capacity: 1, maxDeliveries: 1, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));
        time.Advance(Visibility + TimeSpan.FromSeconds(1), fireTimers: false); // the timeout is due, its pass not run yet

        WriteResult rejected = queue.TryEnqueue("b");

        Assert.Equal(WriteOutcome.Rejected, rejected.Outcome);
        Assert.Equal(TimeSpan.Zero, rejected.RetryAfter);
    }

    [Fact]
    public void TryEnqueue_AllRoomInFlightOnAMillisecondClock_HintConvertsTimestampsToTime()
    {
        // Mutant: timestamps divided by the ticks-per-timestamp ratio instead of multiplied (the same on every clock of
        // TimeSpan.TicksPerSecond, which every other test used).
        var manual = new ManualTimeProvider();
        var time = new MillisecondClock(manual);
        using DeadLetterQueue<string> dlq = Dlq(manual);
        using AckQueue<string> queue = Create(time, capacity: 1, maxDeliveries: 1, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));
        manual.Advance(TimeSpan.FromMilliseconds(2500));

        WriteResult rejected = queue.TryEnqueue("b");

        Assert.Equal(WriteOutcome.Rejected, rejected.Outcome);
        Assert.Equal(TimeSpan.FromMilliseconds(7500), rejected.RetryAfter);
    }

    [Fact]
    public void TryEnqueue_RejectedWhileAReceiverHoldsTheTableLock_NoEstimateAtOnce()
    {
        // Mutant: the "lock not taken" answer deleted (no coverage): the hint read the table unlocked, then exited a
        // monitor it did not hold (SynchronizationLockException from TryEnqueue).
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = Dlq(time);
        using AckQueue<string> queue = Create(time, capacity: 1, maxDeliveries: 1, deadLetters: dlq);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));
        object tableLock = TableLock(queue);
        using var held = new ManualResetEventSlim();
        using var done = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            lock (tableLock)
            {
                held.Set();
                done.Wait(Generous);
            }
        });
        holder.Start();
        try
        {
            Assert.True(held.Wait(Generous));

            WriteResult rejected = queue.TryEnqueue("b");

            Assert.Equal((WriteOutcome.Rejected, Timeout.InfiniteTimeSpan), (rejected.Outcome, rejected.RetryAfter));
        }
        finally
        {
            done.Set();
            holder.Join();
        }
    }

    [Fact]
    public async Task TryEnqueue_RejectedWithAnInFlightHint_ReleasesTheTableLock()
    {
        // Mutant: the hint's Monitor.Exit deleted: the enqueuing thread kept the table lock (reentrant for it, so only
        // another thread's ack, receive or expiry saw it: blocked for good).
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = Dlq(time);
        AckQueue<string> queue = Create(time, capacity: 1, maxDeliveries: 1, deadLetters: dlq); // disposed only once the lock is known free: Dispose takes it
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        WriteResult rejected = default;
        var producer = new Thread(() => rejected = queue.TryEnqueue("b"));
        producer.Start();
        producer.Join();
        Assert.Equal((WriteOutcome.Rejected, Visibility), (rejected.Outcome, rejected.RetryAfter));

        Task<bool> ack = Task.Run(() => queue.Ack(delivery));

        Assert.True(await ack.WaitAsync(Generous)); // a TimeoutException: the ack blocked on a lock the producer never released
        queue.Dispose();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void TryEnqueue_LastDeliveriesAckedAnywhereInTheTable_HintIsTheEarliestRemainingDeadline(int seed)
    {
        // Mutants: the sub-FIFO of last deliveries (the hint's O(1) head) linked or unlinked wrong at its head, middle or
        // tail (four blocks of Insert and Unlink): the hint then answered a later message's deadline, or a freed slot's.
        // The table is kept full (every delivery a last one), acks taken at random positions, and each refill received.
        const int Capacity = 4;
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = Dlq(time);
        using AckQueue<string> queue = Create(time, capacity: Capacity, maxDeliveries: 1, deadLetters: dlq);
        var random = new Random(seed);
        var inFlight = new List<(Delivery<string> Delivery, long Deadline)>();
        void ReceiveOne(string message)
        {
            Assert.True(queue.TryEnqueue(message).IsAccepted);
            Assert.True(queue.TryReceive(out Delivery<string> delivery));
            inFlight.Add((delivery, time.GetTimestamp() + Visibility.Ticks));
            time.Advance(TimeSpan.FromMilliseconds(100));
        }

        for (int i = 0; i < Capacity; i++)
        {
            ReceiveOne("m" + i);
        }

        for (int step = 0; step < 40; step++) // 4 s in all: nothing times out
        {
            int pick = random.Next(inFlight.Count);
            Assert.True(queue.Ack(inFlight[pick].Delivery));
            inFlight.RemoveAt(pick);
            ReceiveOne("n" + step);

            WriteResult rejected = queue.TryEnqueue("x");

            Assert.Equal(WriteOutcome.Rejected, rejected.Outcome);
            long earliest = inFlight.Min(entry => entry.Deadline);
            Assert.Equal(TimeSpan.FromTicks(earliest - time.GetTimestamp()), rejected.RetryAfter);
        }
    }

    [Fact]
    public void VisibilityTimeout_ReArmFailsInTheExpiryPassAndNoReceiveFollows_TheNextMessageStillTimesOut()
    {
        // Mutant: the pass's retry after a failed re-arm deleted: the existing test received again, and a receive re-arms.
        var manual = new ManualTimeProvider();
        var time = new TimerFailingClock(manual);
        using AckQueue<string> queue = Create(time, capacity: 2);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b");
        Assert.True(queue.TryReceive(out _));
        manual.Advance(TimeSpan.FromSeconds(5));
        Assert.True(queue.TryReceive(out _));
        time.ArmingFailures = 1;

        manual.Advance(TimeSpan.FromSeconds(5)); // a expires; the re-arm for b fails

        Assert.Equal((1L, 1L), (queue.GetStatistics().Expired, queue.FailedCallbackCount));
        manual.Advance(TimeSpan.FromSeconds(5)); // b's deadline: nothing received meanwhile

        Assert.Equal((2L, 0), (queue.GetStatistics().Expired, queue.InFlightCount));
    }

    [Fact]
    public async Task VisibilityTimeout_ReArmAndItsRetryBothFail_ReportedTwiceAndTheSystemFallbackRestoresTimeouts()
    {
        // Mutants (no coverage before): the retry's failure swallowed (its rethrow deleted), not reported, or not handed
        // to the system-timer fallback: then nothing was armed for b, which never timed out.
        var manual = new ManualTimeProvider();
        var time = new TimerFailingClock(manual);
        using AckQueue<string> queue = Create(time, capacity: 2);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b");
        Assert.True(queue.TryReceive(out _));
        manual.Advance(TimeSpan.FromSeconds(5));
        Assert.True(queue.TryReceive(out _));
        time.ArmingFailures = 2;
        int armings = time.Armings;

        manual.Advance(TimeSpan.FromSeconds(5)); // a expires; the re-arm for b fails, and so does its retry

        Assert.Equal((1L, 2L), (queue.GetStatistics().Expired, queue.FailedCallbackCount));
        Assert.NotNull(queue.FallbackTimer);
        for (int i = 0; i < 3000 && time.Armings == armings; i++)
        {
            await Task.Delay(10); // the fallback's pass runs on a system timer (real time, 1 ms) and re-arms the clock's timer
        }

        Assert.True(time.Armings > armings);
        manual.Advance(TimeSpan.FromSeconds(5)); // b's deadline

        Assert.Equal((2L, 0), (queue.GetStatistics().Expired, queue.InFlightCount));
    }

    [Fact]
    public void VisibilityTimeout_ShortTimeoutAndTheExpiryPassClockThrows_RetriedWithinTheTimeout()
    {
        // Mutant: the retry's delay always MaxExpiryRetryDelay (1 s), not the shorter visibility timeout.
        var manual = new ManualTimeProvider();
        var time = new FailingReadingClock(manual);
        TimeSpan visibility = TimeSpan.FromMilliseconds(100);
        using AckQueue<string> queue = Create(time, capacity: 2, visibility: visibility);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));
        time.FailReading(1);

        manual.Advance(visibility); // the pass's reading throws: reported, retried
        Assert.Equal((1L, 1), (queue.FailedCallbackCount, queue.InFlightCount));
        manual.Advance(visibility);

        Assert.Equal((0, 1L), (queue.InFlightCount, queue.GetStatistics().Expired));
    }

    [Fact]
    public void VisibilityTimeout_TimerFiresAfterTheAckAndTheClockThrows_OneFailureReported()
    {
        // Mutant: RetryExpiry's "table not empty and not disposed" turned into "or": it read the head of an empty table
        // (IndexOutOfRangeException, a second failure reported).
        var manual = new ManualTimeProvider();
        var time = new FailingReadingClock(manual);
        using AckQueue<string> queue = Create(time, capacity: 2);
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, error) => reported.Add(error);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.True(queue.Ack(delivery)); // the wake-up stays armed for its deadline
        time.FailReading(1);

        manual.Advance(Visibility);

        Assert.Equal("clock failed", Assert.Single(reported).Message);
        Assert.Null(queue.FallbackTimer);
    }

    /// <summary>A clock whose wall-clock reading (<see cref="GetUtcNow"/>) throws once on demand.</summary>
    private sealed class UtcFailingClock(ManualTimeProvider inner) : TimeProvider
    {
        private int _failNext;

        public bool FailNext { set => Volatile.Write(ref _failNext, value ? 1 : 0); }

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() =>
            Interlocked.Exchange(ref _failNext, 0) != 0 ? throw new InvalidOperationException("wall clock failed") : inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }

    /// <summary>A <see cref="ManualTimeProvider"/> read in milliseconds (frequency 1000): timestamps are not TimeSpan ticks.</summary>
    private sealed class MillisecondClock(ManualTimeProvider inner) : TimeProvider
    {
        public override long TimestampFrequency => 1000;

        public override long GetTimestamp() => inner.GetTimestamp() / TimeSpan.TicksPerMillisecond;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }
}
