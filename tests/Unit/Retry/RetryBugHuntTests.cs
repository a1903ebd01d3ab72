using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// Bugs found by the session-10 bug hunt on the retry side (each test failed before its fix): an expiry pass whose
/// re-arm threw lost the messages it had just timed out; <see cref="RetryPolicy.ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/>
/// spent the budget (and ran ShouldRetry) for a failure whose caller had already cancelled.
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
    public async Task ExecuteAsync_CancelledBeforeTheCall_NeverCallsTheAction()
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
}
