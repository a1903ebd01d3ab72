using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The session-10 bug hunt on the retry side. Bugs (each test named in its commit failed before the fix): an expiry
/// pass whose re-arm threw lost the messages it had just timed out;
/// <see cref="RetryPolicy.ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/>
/// spent the budget (and ran ShouldRetry) for a failure whose caller had already cancelled, passed an action's own
/// cancellation with the wrong token, and recorded a call cancelled before it started; a replay whose sink threw lost
/// that exception when the put-back's drop callback threw too. The other tests check behaviour found correct.
/// </summary>
public sealed class RetryBugHuntTests
{
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(10);

    [Fact]
    public void VisibilityTimeout_ReArmThrowsInTheExpiryPass_ExpiredMessagesKeptAndTimeoutsResume()
    {
        // The expiry pass unlinks the expired deliveries, then re-arms the timer for the next head, under the lock.
        // Before, a re-arm that threw (the TimeProvider's ITimer: user code) left the pass before the expired messages
        // were put back: out of the table, never in the ready queue, their room held for good (at-least-once broken).
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 4, VisibilityTimeout = Visibility, TimeProvider = clock });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, ex) => reported.Add(ex);
        Assert.True(queue.TryEnqueue("a").IsAccepted);
        Assert.True(queue.TryEnqueue("b").IsAccepted);
        Assert.True(queue.TryReceive(out Delivery<string> a));
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryReceive(out Delivery<string> b));
        Assert.Equal(("a", "b"), (a.Message, b.Message));

        clock.ArmingFailures = 1; // the pass's re-arm for "b"
        manual.Advance(Visibility - TimeSpan.FromSeconds(1)); // "a" expires

        Assert.Equal("arming failed", Assert.Single(reported).Message);
        Assert.Equal(1, queue.InFlightCount); // "b"
        Assert.Equal(2, queue.Count);
        Assert.True(queue.TryReceive(out Delivery<string> again)); // before: false, "a" was lost
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
        Assert.False(queue.Ack(a)); // stale
        Assert.True(queue.Ack(again));

        manual.Advance(TimeSpan.FromSeconds(2)); // the retried arming times "b" out
        Assert.Equal(0, queue.InFlightCount);
        Assert.True(queue.TryReceive(out Delivery<string> bAgain));
        Assert.Equal(("b", 2), (bAgain.Message, bAgain.DeliveryCount));
        Assert.False(queue.Ack(b));
        Assert.True(queue.Ack(bAgain));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void VisibilityTimeout_ClockTimerCannotBeArmedAndNoReceiveFollows_MessageStillTimesOut()
    {
        // The clock's timer cannot be armed at all (a receive's arming and the expiry pass's retries all throw). Before,
        // nothing retried until another receive: with none, the message stayed in flight for good. Now the pass runs on a
        // system timer (real time, backing off from 1 ms) and still reads the queue's clock.
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual) { ArmingFailures = 1_000_000 };
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 4, VisibilityTimeout = Visibility, TimeProvider = clock });
        Assert.True(queue.TryEnqueue("a").IsAccepted);
        Assert.True(queue.TryReceive(out Delivery<string> a));
        Assert.True(queue.FailedCallbackCount >= 1); // the receive's arming failed, reported
        manual.Advance(Visibility); // no timer of the clock fires: none could be armed

        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (queue.InFlightCount != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the message in flight never timed out");
            Thread.Sleep(5);
        }

        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
        Assert.False(queue.Ack(a)); // stale
        Assert.True(queue.Ack(again));
    }

    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static RetryBudget Budget(int credit) => new(new RetryBudgetOptions { RetryRatio = 1, MaxBurst = credit, MinRetriesPerSecond = 0 });

    [Fact]
    public async Task ExecuteAsync_CallerCancelsAndTheAttemptFailsOtherwise_CancelledWithTheCallersTokenNothingSpent()
    {
        // The caller's token is cancelled while the attempt fails with an unrelated exception (a client that notices the
        // cancellation late, or a race). A cancelled call is never retried, so it must not spend from the budget, nor
        // ask ShouldRetry. Before, Evaluate ran first (ShouldRetry called, one retry granted and spent), then the
        // backoff wait threw for the cancelled token: the budget paid for a retry that never ran.
        var budget = Budget(10);
        int asked = 0;
        var policy = new RetryPolicy(new RetryPolicyOptions
        {
            MaxAttempts = 5,
            Jitter = RetryJitter.None,
            Budget = budget,
            TimeProvider = new ManualTimeProvider(),
            ShouldRetry = _ => { asked++; return true; },
        });
        using var cts = new CancellationTokenSource();
        int calls = 0;
        var failure = new IOException("connection reset");

        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.ExecuteAsync<int>(
            _ =>
            {
                calls++;
                cts.Cancel();
                throw failure;
            },
            cts.Token).AsTask().WaitAsync(Generous));

        Assert.Equal(1, calls);
        Assert.Equal(0, budget.RetriesGranted + budget.RetriesRefused); // before: 1 granted
        Assert.Equal(0, asked); // before: 1
        Assert.Equal(1, budget.Calls);
        Assert.Equal(cts.Token, oce.CancellationToken);
        Assert.Same(failure, oce.InnerException); // before: none (the backoff wait's cancellation)
    }

    [Fact]
    public async Task ExecuteAsync_ActionThrowsItsOwnCancellationAfterTheCallerCancelled_CancelledWithTheCallersToken()
    {
        // An action cancelled through its own (for example linked) token after the caller cancelled: the caller gets an
        // OperationCanceledException for its token (the action's one inside), so a `when (e.CancellationToken == ct)`
        // filter matches. Before, the action's exception passed through with the other token.
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, Jitter = RetryJitter.None, TimeProvider = new ManualTimeProvider() });
        using var caller = new CancellationTokenSource();
        using var own = new CancellationTokenSource();
        var inner = new OperationCanceledException(own.Token);

        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.ExecuteAsync<int>(
            _ =>
            {
                caller.Cancel();
                throw inner;
            },
            caller.Token).AsTask().WaitAsync(Generous));

        Assert.Equal(caller.Token, oce.CancellationToken);
        Assert.Same(inner, oce.InnerException);
    }

    [Fact]
    public async Task ExecuteAsync_ActionThrowsTheCallersCancellation_PropagatesAsIs()
    {
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, Jitter = RetryJitter.None, TimeProvider = new ManualTimeProvider() });
        using var cts = new CancellationTokenSource();
        int calls = 0;

        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.ExecuteAsync<int>(
            token =>
            {
                calls++;
                cts.Cancel();
                token.ThrowIfCancellationRequested();
                return ValueTask.FromResult(0);
            },
            cts.Token).AsTask().WaitAsync(Generous));

        Assert.Equal(cts.Token, oce.CancellationToken);
        Assert.Null(oce.InnerException);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task ExecuteAsync_ActionThrowsItsOwnCancellationCallerNot_NotRetriedByDefaultAndPropagatesAsIs()
    {
        var budget = Budget(10);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, Jitter = RetryJitter.None, Budget = budget, TimeProvider = new ManualTimeProvider() });
        using var own = new CancellationTokenSource();
        own.Cancel();
        int calls = 0;

        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.ExecuteAsync<int>(
            _ =>
            {
                calls++;
                own.Token.ThrowIfCancellationRequested();
                return ValueTask.FromResult(0);
            },
            CancellationToken.None).AsTask().WaitAsync(Generous));

        Assert.Equal(own.Token, oce.CancellationToken);
        Assert.Equal(1, calls);
        Assert.Equal(0, budget.RetriesGranted);
    }

    [Fact]
    public async Task ExecuteAsync_CancelledBeforeTheCall_NeverCallsTheActionNorRecordsACall()
    {
        var budget = Budget(10);
        var policy = new RetryPolicy(new RetryPolicyOptions { Budget = budget, TimeProvider = new ManualTimeProvider() });
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        int calls = 0;

        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.ExecuteAsync<int>(
            _ => { calls++; return ValueTask.FromResult(1); },
            cts.Token).AsTask().WaitAsync(Generous));

        Assert.Equal(cts.Token, oce.CancellationToken);
        Assert.Equal(0, calls);
        Assert.Equal(0, budget.Calls); // before: 1, a deposit for a call that never reached the dependency
    }

    [Fact]
    public async Task ExecuteAsync_CancelledDuringTheBackoff_EndsWithTheCallersTokenAndNoFurtherAttempt()
    {
        var time = new ManualTimeProvider();
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, BaseDelay = TimeSpan.FromSeconds(10), Jitter = RetryJitter.None, TimeProvider = time });
        using var cts = new CancellationTokenSource();
        int calls = 0;
        Task<int> run = policy.ExecuteAsync<int>(_ => { Interlocked.Increment(ref calls); throw new TimeoutException(); }, cts.Token).AsTask();
        Assert.False(run.IsCompleted); // waiting out the 10 s backoff on the manual clock, which does not move

        cts.Cancel();

        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Generous));
        Assert.Equal(cts.Token, oce.CancellationToken);
        time.Advance(TimeSpan.FromMinutes(1)); // nothing left scheduled runs the action again
        Assert.Equal(1, Volatile.Read(ref calls));
        Assert.Equal(0, time.ActiveTimers);
    }

    [Fact]
    public async Task ExecuteAsync_ShouldRetryThrows_ItsExceptionSurfacesNothingSpentNothingScheduled()
    {
        var time = new ManualTimeProvider();
        var budget = Budget(10);
        var policy = new RetryPolicy(new RetryPolicyOptions
        {
            MaxAttempts = 5,
            Budget = budget,
            TimeProvider = time,
            ShouldRetry = _ => throw new FormatException("callback failed"),
        });
        int calls = 0;

        FormatException thrown = await Assert.ThrowsAsync<FormatException>(() => policy.ExecuteAsync<int>(
            _ => { calls++; throw new TimeoutException(); }).AsTask().WaitAsync(Generous));

        Assert.Equal("callback failed", thrown.Message);
        Assert.Equal(1, calls);
        Assert.Equal(0, budget.RetriesGranted + budget.RetriesRefused);
        Assert.Equal(0, time.ActiveTimers);
    }

    [Theory]
    [InlineData(-5_000)]
    [InlineData(0)]
    public void Evaluate_NegativeOrZeroRetryAfterHint_RetriesAfterTheBackoff(int hintMs)
    {
        // RetryAfterException refuses a negative hint; a custom RetryAfter reader may still return one: it is ignored.
        var policy = new RetryPolicy(new RetryPolicyOptions
        {
            MaxAttempts = 5,
            BaseDelay = TimeSpan.FromMilliseconds(100),
            Jitter = RetryJitter.None,
            RetryAfter = _ => TimeSpan.FromMilliseconds(hintMs),
        });
        RetryDecision decision = policy.Evaluate(1, new TimeoutException(), TimeSpan.Zero);
        Assert.True(decision.ShouldRetry);
        Assert.Equal(TimeSpan.FromMilliseconds(100), decision.Delay);
    }

    [Fact]
    public async Task ExecuteAsync_RetryAfterAboveTheCap_StopsAtOnceWithoutSpending()
    {
        var budget = Budget(10);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, MaxDelay = TimeSpan.FromSeconds(1), Budget = budget, TimeProvider = new ManualTimeProvider() });
        Assert.Equal(RetryStopReason.RetryAfterTooLong, policy.Evaluate(1, new RetryAfterException(TimeSpan.FromSeconds(2)), TimeSpan.Zero).StopReason);
        int calls = 0;
        await Assert.ThrowsAsync<RetryAfterException>(() => policy.ExecuteAsync<int>(
            _ => { calls++; throw new RetryAfterException(TimeSpan.FromSeconds(2)); }).AsTask().WaitAsync(Generous));
        Assert.Equal(1, calls);
        Assert.Equal(0, budget.RetriesGranted);
    }

    [Fact]
    public async Task ExecuteAsync_MaxAttemptsOne_CallsOnceRecordsTheCallSpendsNothing()
    {
        var budget = Budget(10);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 1, Budget = budget, TimeProvider = new ManualTimeProvider() });
        int calls = 0;
        await Assert.ThrowsAsync<TimeoutException>(() => policy.ExecuteAsync<int>(_ => { calls++; throw new TimeoutException(); }).AsTask().WaitAsync(Generous));
        Assert.Equal(1, calls);
        Assert.Equal(1, budget.Calls);
        Assert.Equal(0, budget.RetriesGranted + budget.RetriesRefused);
    }

    [Fact]
    public void RetryBudget_ThreadsRacingForTheCredit_GrantExactlyTheCredit()
    {
        // 4 threads race TryAcquireRetry (and RecordCall at the cap, which must deposit nothing) on a credit of 2,000:
        // exactly 2,000 granted, never one more.
        const int Credit = 2_000;
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 1, MaxBurst = Credit, MinRetriesPerSecond = 0 });
        for (int i = 0; i < Credit; i++)
        {
            budget.RecordCall();
        }

        using var start = new Barrier(4);
        var granted = new int[4];
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            int id = t;
            threads[t] = new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < Credit; i++)
                {
                    if (budget.TryAcquireRetry())
                    {
                        granted[id]++;
                    }
                }
            });
            threads[t].Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(Generous));
        }

        Assert.Equal(Credit, granted.Sum());
        Assert.Equal(Credit, budget.RetriesGranted);
        Assert.Equal((4L * Credit) - Credit, budget.RetriesRefused);
    }

    [Fact]
    public void RetryBudget_ThreadsRacingForTheReserveOnAFrozenClock_GrantExactlyTheBurst()
    {
        // No ratio credit: only the per-second reserve, whose burst is MinRetriesPerSecond. The manual clock does not
        // move, so 4 threads asking 200 times each get exactly 100 between them.
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0, MaxBurst = 0, MinRetriesPerSecond = 100, TimeProvider = new ManualTimeProvider() });
        using var start = new Barrier(4);
        int granted = 0;
        var threads = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < 200; i++)
            {
                if (budget.TryAcquireRetry())
                {
                    Interlocked.Increment(ref granted);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        Assert.All(threads, t => Assert.True(t.Join(Generous)));

        Assert.Equal(100, granted);
        Assert.Equal((100L, 700L), (budget.RetriesGranted, budget.RetriesRefused));
    }

    [Fact]
    public void RetryBudget_CallsAndRetriesRacing_NeverGrantMoreThanTheDeposits()
    {
        // Two threads record calls (0.5 retry each) while two spend: granted <= 0.5 * calls at every end state.
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0.5, MaxBurst = 1_000_000, MinRetriesPerSecond = 0 });
        const int Calls = 20_000;
        using var start = new Barrier(4);
        int stopSpending = 0;
        var threads = new List<Thread>();
        for (int t = 0; t < 2; t++)
        {
            threads.Add(new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < Calls; i++)
                {
                    budget.RecordCall();
                }
            }));
        }

        var spenders = new List<Thread>();
        for (int t = 0; t < 2; t++)
        {
            spenders.Add(new Thread(() =>
            {
                start.SignalAndWait();
                while (Volatile.Read(ref stopSpending) == 0)
                {
                    budget.TryAcquireRetry();
                }
            }));
        }

        foreach (Thread thread in threads.Concat(spenders))
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(Generous));
        }

        Volatile.Write(ref stopSpending, 1);
        foreach (Thread thread in spenders)
        {
            Assert.True(thread.Join(Generous));
        }

        while (budget.TryAcquireRetry())
        {
        }

        Assert.Equal(2L * Calls, budget.Calls);
        Assert.Equal(Calls, budget.RetriesGranted); // every deposit spent exactly once: 0.5 * 40,000
    }

    [Fact]
    public void Ack_StaleAfterRedelivery_RefusedAndTheNewDeliveryStaysInFlight()
    {
        var time = new ManualTimeProvider();
        using var dlq = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = time });
        using var queue = AckQueueTests.Create(time, capacity: 4, deadLetters: dlq);
        queue.TryEnqueue("m");
        Assert.True(queue.TryReceive(out Delivery<string> first));
        time.Advance(Visibility);
        Assert.True(queue.TryReceive(out Delivery<string> second));
        Assert.Equal((1, 2), (first.DeliveryCount, second.DeliveryCount));

        Assert.False(queue.Ack(first)); // stale: must not end the redelivery (the same slot is reused)
        Assert.False(queue.Nack(first));
        Assert.False(queue.DeadLetter(first, "stale"));
        Assert.Equal(1, queue.InFlightCount);
        Assert.Equal(0, dlq.Count);

        Assert.True(queue.Ack(second));
        Assert.False(queue.Ack(second)); // double ack
        Assert.False(queue.Nack(second));
        Assert.Equal(0, queue.Count);
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((1L, 1L, 1L, 0L, 0L), (stats.Enqueued, stats.Acked, stats.Expired, stats.Nacked, stats.DeadLettered));
    }

    [Fact]
    public void Ack_AfterNackWithDelay_RefusedMessageComesBackAfterTheDelayWithItsCount()
    {
        var time = new ManualTimeProvider();
        using var queue = AckQueueTests.Create(time, capacity: 4);
        queue.TryEnqueue("m");
        Assert.True(queue.TryReceive(out Delivery<string> first));
        Assert.True(queue.Nack(first, TimeSpan.FromSeconds(5)));
        Assert.False(queue.Ack(first));
        Assert.Equal((1, 0), (queue.Count, queue.InFlightCount)); // delayed, still held

        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(queue.TryReceive(out _)); // never early
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryReceive(out Delivery<string> second));
        Assert.Equal(("m", 2), (second.Message, second.DeliveryCount));
        time.Advance(Visibility);
        Assert.True(queue.TryReceive(out Delivery<string> third));
        Assert.Equal(3, third.DeliveryCount);
        Assert.True(queue.Ack(third));
    }

    [Fact]
    public void TryEnqueue_CapacityCountsMessagesInFlight_RejectedUntilOneIsAcked()
    {
        // Documented: Capacity bounds ready + delayed + in flight together.
        var time = new ManualTimeProvider();
        using var queue = AckQueueTests.Create(time, capacity: 2);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b");
        Assert.True(queue.TryReceive(out Delivery<string> a));
        Assert.True(queue.TryReceive(out Delivery<string> b));
        WriteResult full = queue.TryEnqueue("c");
        Assert.False(full.IsAccepted);
        Assert.Equal(WriteOutcome.Rejected, full.Outcome);
        Assert.True(queue.Nack(b)); // back, still held
        Assert.False(queue.TryEnqueue("c").IsAccepted);
        Assert.True(queue.Ack(a));
        Assert.True(queue.TryEnqueue("c").IsAccepted);
        Assert.Equal(2, queue.Count);
    }

    [Fact]
    public async Task Dispose_WithReceiversParkedAndMessagesInFlight_ReceiversSeeDisposedNothingLost()
    {
        var time = new ManualTimeProvider();
        var queue = AckQueueTests.Create(time, capacity: 4);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b", TimeSpan.FromSeconds(5)); // delayed
        Assert.True(queue.TryReceive(out Delivery<string> a));
        ValueTask<Delivery<string>> parked1 = queue.ReceiveAsync();
        ValueTask<Delivery<string>> parked2 = queue.ReceiveAsync();
        Assert.False(parked1.IsCompleted);

        queue.Dispose();

        ObjectDisposedException ode = await Assert.ThrowsAsync<ObjectDisposedException>(() => parked1.AsTask().WaitAsync(Generous));
        Assert.Contains("AckQueue", ode.ObjectName);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => parked2.AsTask().WaitAsync(Generous));
        Assert.Throws<ObjectDisposedException>(() => queue.TryEnqueue("c"));
        Assert.Throws<ObjectDisposedException>(() => queue.Nack(a));
        Assert.Equal(2, queue.Count); // "a" in flight, "b" delayed: neither lost
        Assert.True(queue.Ack(a));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(queue.TryReceive(out Delivery<string> b));
        Assert.Equal("b", b.Message);
        Assert.True(queue.Ack(b));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task ReceiveAsync_Cancelled_LeavesNoTraceTheNextMessageGoesToTheNextReceiver()
    {
        var time = new ManualTimeProvider();
        using var queue = AckQueueTests.Create(time, capacity: 4);
        using var cts = new CancellationTokenSource();
        ValueTask<Delivery<string>> cancelled = queue.ReceiveAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.AsTask().WaitAsync(Generous));

        ValueTask<Delivery<string>> next = queue.ReceiveAsync();
        queue.TryEnqueue("m");
        Delivery<string> got = await next.AsTask().WaitAsync(Generous);
        Assert.Equal(("m", 1), (got.Message, got.DeliveryCount));
        Assert.Equal((1, 1), (queue.Count, queue.InFlightCount));
        Assert.True(queue.Ack(got));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void DeadLetter_StaleDeliveryAfterMaxDeliveriesExpiry_RefusedAndTheLetterMovedOnce()
    {
        var time = new ManualTimeProvider();
        using var dlq = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = time });
        using var queue = AckQueueTests.Create(time, capacity: 4, maxDeliveries: 2, deadLetters: dlq);
        queue.TryEnqueue("m");
        Assert.True(queue.TryReceive(out Delivery<string> first));
        time.Advance(Visibility);
        Assert.True(queue.TryReceive(out Delivery<string> second));
        time.Advance(Visibility); // second delivery times out at MaxDeliveries: dead-lettered by the expiry pass

        Assert.Equal(1, dlq.Count);
        Assert.False(queue.DeadLetter(second, "late"));
        Assert.False(queue.Ack(second));
        Assert.Equal(1, dlq.Count);
        DeadLetter<string> letter = Assert.Single(dlq.Snapshot());
        Assert.Equal(("m", 2), (letter.Message, letter.AttemptCount));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void Replay_RacingWithAdds_EveryLetterReplayedOnceOrHeldNeverBoth()
    {
        // One thread adds 2,000 letters while another replays (a sink refusing now and then); every letter ends exactly
        // once: replayed or still held (capacity is large enough that nothing is evicted).
        const int N = 2_000;
        using var dlq = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = N });
        var seen = new int[N];
        int adding = 1;
        int refusedAdds = 0;
        var adder = new Thread(() =>
        {
            for (int i = 0; i < N; i++)
            {
                if (!dlq.TryAdd(i, "src", "r", null, 1).IsAccepted)
                {
                    refusedAdds++; // no assertion on a worker thread: an exception there ends the test host
                }
            }

            Volatile.Write(ref adding, 0);
        });
        int refusals = 0;
        var replayer = new Thread(() =>
        {
            while (Volatile.Read(ref adding) != 0)
            {
                dlq.Replay(letter =>
                {
                    if (letter.Message % 7 == 3 && Interlocked.Increment(ref refusals) % 2 == 1)
                    {
                        return false; // refused: kept (put back at the front)
                    }

                    Interlocked.Increment(ref seen[letter.Message]);
                    return true;
                });
            }
        });
        adder.Start();
        replayer.Start();
        Assert.True(adder.Join(Generous));
        Assert.True(replayer.Join(Generous));

        Assert.Equal(0, refusedAdds);
        foreach (DeadLetter<int> held in dlq.Snapshot())
        {
            seen[held.Message]++;
        }

        Assert.All(seen, count => Assert.Equal(1, count));
        DeadLetterStatistics stats = dlq.GetStatistics();
        Assert.Equal(stats.Added, stats.Replayed + stats.Removed + stats.Evicted + stats.Count);
        Assert.Equal(N, stats.Added);
    }

    [Fact]
    public void Replay_SinkThrowsMidway_ReplayedOnesGoneTheFailedOneAndTheRestKeptInOrder()
    {
        using var dlq = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 8 });
        for (int i = 0; i < 6; i++)
        {
            dlq.TryAdd(i, "src", "r", null, 1);
        }

        var delivered = new List<int>();
        InvalidOperationException thrown = Assert.Throws<InvalidOperationException>(() => dlq.Replay(
            letter =>
            {
                if (letter.Message == 3)
                {
                    throw new InvalidOperationException("target failed");
                }

                delivered.Add(letter.Message);
                return true;
            },
            letter => letter.Message % 2 == 1)); // 1, 3, 5 selected

        Assert.Equal("target failed", thrown.Message);
        Assert.Equal([1], delivered);
        Assert.Equal([0, 2, 3, 4, 5], dlq.Snapshot().Select(l => l.Message)); // the failed one and the rest back where they were (before session 11: at the front, [3, 5, 0, 2, 4])
        DeadLetterStatistics stats = dlq.GetStatistics();
        Assert.Equal((6L, 1L, 5), (stats.Added, stats.Replayed, stats.Count));

        // The transform of the bounded-queue overload throwing behaves the same.
        var target = new MpmcQueue<int>(16);
        Assert.Throws<FormatException>(() => dlq.Replay(target, transform: l => l.Message == 5 ? throw new FormatException() : l.Message));
        Assert.Equal([0, 2, 3, 4], Drain(target));
        Assert.Equal([5], dlq.Snapshot().Select(l => l.Message));
        stats = dlq.GetStatistics();
        Assert.Equal(stats.Added, stats.Replayed + stats.Removed + stats.Evicted + stats.Count);
    }

    [Fact]
    public void Replay_SinkThrowsAndThePutBackOverflowsIntoAThrowingDropCallback_BothExceptionsSurface()
    {
        // The sink adds two letters (filling the queue), then throws; putting the two taken ones back overflows, and
        // the drop callback throws too. Before, the put-back's exception (thrown from the finally) replaced the sink's:
        // the replay's own failure was lost without a trace.
        var reported = new List<int>();
        using var dlq = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int>
        {
            Capacity = 2,
            ItemDropped = (letter, _) =>
            {
                reported.Add(letter.Message);
                throw new FormatException("drop callback failed");
            },
        });
        dlq.TryAdd(1, "src", "r", null, 1);
        dlq.TryAdd(2, "src", "r", null, 1);

        AggregateException thrown = Assert.Throws<AggregateException>(() => dlq.Replay(letter =>
        {
            dlq.TryAdd(10, "src", "r", null, 1);
            dlq.TryAdd(11, "src", "r", null, 1);
            throw new InvalidOperationException("sink failed");
        }));

        Assert.Equal(2, thrown.InnerExceptions.Count);
        Assert.Equal("sink failed", Assert.IsType<InvalidOperationException>(thrown.InnerExceptions[0]).Message);
        Assert.Equal("drop callback failed", Assert.IsType<FormatException>(thrown.InnerExceptions[1]).Message);
        Assert.Equal([2, 1], reported); // both taken letters evicted on the way back, each reported
        Assert.Equal([10, 11], dlq.Snapshot().Select(l => l.Message));
        DeadLetterStatistics stats = dlq.GetStatistics();
        Assert.Equal(stats.Added, stats.Replayed + stats.Removed + stats.Evicted + stats.Count);
    }

    [Fact]
    public void TryAdd_EachOverflowPolicy_CountsMatch()
    {
        foreach (OverflowPolicy mode in new[] { OverflowPolicy.DropOldest, OverflowPolicy.DropIncoming, OverflowPolicy.Reject })
        {
            var dropped = new List<(int, DropReason)>();
            using var dlq = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 2, FullMode = mode, ItemDropped = (l, r) => dropped.Add((l.Message, r)) });
            for (int i = 0; i < 5; i++)
            {
                dlq.TryAdd(i, "src", "r", null, 1);
            }

            DeadLetterStatistics stats = dlq.GetStatistics();
            Assert.Equal(2, stats.Count);
            switch (mode)
            {
                case OverflowPolicy.DropOldest:
                    Assert.Equal((5L, 3L, 0L, 0L), (stats.Added, stats.Evicted, stats.DroppedIncoming, stats.Rejected));
                    Assert.Equal([(0, DropReason.Oldest), (1, DropReason.Oldest), (2, DropReason.Oldest)], dropped);
                    Assert.Equal([3, 4], dlq.Snapshot().Select(l => l.Message));
                    break;
                case OverflowPolicy.DropIncoming:
                    Assert.Equal((2L, 0L, 3L, 0L), (stats.Added, stats.Evicted, stats.DroppedIncoming, stats.Rejected));
                    Assert.Equal([(2, DropReason.Incoming), (3, DropReason.Incoming), (4, DropReason.Incoming)], dropped);
                    Assert.Equal([0, 1], dlq.Snapshot().Select(l => l.Message));
                    break;
                default:
                    Assert.Equal((2L, 0L, 0L, 3L), (stats.Added, stats.Evicted, stats.DroppedIncoming, stats.Rejected));
                    Assert.Empty(dropped);
                    Assert.Equal([0, 1], dlq.Snapshot().Select(l => l.Message));
                    break;
            }
        }
    }

    [Fact]
    public void GetBackoff_SeededJitter_WithinBoundsAndCentredWhereTheFormulaSays()
    {
        // Deterministic (seeded): full jitter draws uniformly from [0, d), so the mean of 20,000 draws is d/2 within a
        // few percent; decorrelated draws from [base, 3 * previous] capped: never below base, never above the cap.
        const int Draws = 20_000;
        var full = new RetryPolicy(new RetryPolicyOptions { BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(10), Jitter = RetryJitter.Full, Random = new Random(42) });
        double sum = 0;
        for (int i = 0; i < Draws; i++)
        {
            TimeSpan d = full.GetBackoff(3, TimeSpan.Zero); // d = 400 ms
            Assert.InRange(d, TimeSpan.Zero, TimeSpan.FromMilliseconds(400));
            sum += d.TotalMilliseconds;
        }

        Assert.InRange(sum / Draws, 190, 210);

        var decorrelated = new RetryPolicy(new RetryPolicyOptions { BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(1), Jitter = RetryJitter.Decorrelated, Random = new Random(7) });
        TimeSpan previous = TimeSpan.Zero;
        sum = 0;
        bool reachedCap = false;
        for (int i = 0; i < Draws; i++)
        {
            TimeSpan d = decorrelated.GetBackoff(i + 1, previous);
            Assert.InRange(d, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1));
            Assert.True(d.Ticks <= 3 * Math.Max(previous.Ticks, TimeSpan.FromMilliseconds(100).Ticks));
            reachedCap |= d == TimeSpan.FromSeconds(1);
            sum += decorrelated.GetBackoff(1, TimeSpan.FromMilliseconds(200)).TotalMilliseconds; // uniform in [100, 600)
            previous = d;
        }

        Assert.True(reachedCap);
        Assert.InRange(sum / Draws, 340, 360);
    }

    private static List<int> Drain(MpmcQueue<int> queue)
    {
        var items = new List<int>();
        while (queue.TryDequeue(out int item))
        {
            items.Add(item);
        }

        return items;
    }
}

