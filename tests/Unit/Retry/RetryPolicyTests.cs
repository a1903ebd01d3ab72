using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary><see cref="RetryPolicy"/> and <see cref="RetryBudget"/>: backoff sequences, jitter bounds, hints, budget, the async driver.</summary>
public sealed class RetryPolicyTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>A random source that always draws the same value.</summary>
    private sealed class FixedRandom(double value) : Random
    {
        public override double NextDouble() => value;

        protected override double Sample() => value;
    }

    private static RetryPolicy Policy(RetryJitter jitter, Random? random = null, int maxAttempts = 10, double baseMs = 100, double maxMs = 1000, RetryBudget? budget = null) =>
        new(new RetryPolicyOptions
        {
            Jitter = jitter,
            Random = random,
            MaxAttempts = maxAttempts,
            BaseDelay = Ms(baseMs),
            MaxDelay = Ms(maxMs),
            Budget = budget,
        });

    [Fact]
    public void GetBackoff_NoJitter_DoublesUpToTheCap()
    {
        RetryPolicy policy = Policy(RetryJitter.None);

        TimeSpan[] delays = Enumerable.Range(1, 6).Select(n => policy.GetBackoff(n, TimeSpan.Zero)).ToArray();

        Assert.Equal([Ms(100), Ms(200), Ms(400), Ms(800), Ms(1000), Ms(1000)], delays);
        Assert.Equal(Ms(1000), policy.GetBackoff(1_000_000, TimeSpan.Zero)); // no overflow far out
    }

    [Fact]
    public void GetBackoff_FullJitter_ScalesTheCappedExponential()
    {
        Assert.Equal(TimeSpan.Zero, Policy(RetryJitter.Full, new FixedRandom(0)).GetBackoff(3, TimeSpan.Zero));
        Assert.Equal(Ms(200), Policy(RetryJitter.Full, new FixedRandom(0.5)).GetBackoff(3, TimeSpan.Zero));
        Assert.Equal(Ms(500), Policy(RetryJitter.Full, new FixedRandom(0.5)).GetBackoff(9, TimeSpan.Zero));
    }

    [Fact]
    public void GetBackoff_FullJitter_StaysInBounds()
    {
        RetryPolicy policy = Policy(RetryJitter.Full, new Random(1234));
        for (int retry = 1; retry <= 8; retry++)
        {
            TimeSpan bound = Ms(Math.Min(1000, 100 * Math.Pow(2, retry - 1)));
            for (int i = 0; i < 200; i++)
            {
                TimeSpan delay = policy.GetBackoff(retry, TimeSpan.Zero);
                Assert.InRange(delay, TimeSpan.Zero, bound);
            }
        }
    }

    [Fact]
    public void GetBackoff_DecorrelatedJitter_StaysBetweenBaseAndThreePreviousCapped()
    {
        RetryPolicy policy = Policy(RetryJitter.Decorrelated, new Random(99));
        TimeSpan previous = TimeSpan.Zero;
        for (int retry = 1; retry <= 200; retry++)
        {
            TimeSpan delay = policy.GetBackoff(retry, previous);
            TimeSpan high = Ms(Math.Min(1000, 3 * Math.Max(100, previous.TotalMilliseconds)));
            Assert.InRange(delay, Ms(100), high);
            previous = delay;
        }

        Assert.Equal(Ms(100), Policy(RetryJitter.Decorrelated, new FixedRandom(0)).GetBackoff(5, Ms(300)));
        Assert.Equal(Ms(500), Policy(RetryJitter.Decorrelated, new FixedRandom(0.5)).GetBackoff(5, Ms(300))); // 100 + 0.5 * (900 - 100)
        Assert.Equal(Ms(1000), Policy(RetryJitter.Decorrelated, new FixedRandom(0.99)).GetBackoff(5, Ms(900)));
    }

    [Fact]
    public void Evaluate_LastAttempt_Stops()
    {
        RetryPolicy policy = Policy(RetryJitter.None, maxAttempts: 3);
        var failure = new InvalidOperationException("boom");

        Assert.Equal(RetryDecision.Retry(Ms(100)), policy.Evaluate(1, failure, TimeSpan.Zero));
        Assert.Equal(RetryDecision.Retry(Ms(200)), policy.Evaluate(2, failure, Ms(100)));
        Assert.Equal(RetryDecision.Stop(RetryStopReason.MaxAttempts), policy.Evaluate(3, failure, Ms(200)));
    }

    [Fact]
    public void Evaluate_NotRetryable_Stops()
    {
        Assert.Equal(RetryStopReason.NotRetryable, Policy(RetryJitter.None).Evaluate(1, new OperationCanceledException(), TimeSpan.Zero).StopReason);
        var policy = new RetryPolicy(new RetryPolicyOptions { ShouldRetry = e => e is TimeoutException });
        Assert.Equal(RetryStopReason.NotRetryable, policy.Evaluate(1, new InvalidOperationException(), TimeSpan.Zero).StopReason);
        Assert.True(policy.Evaluate(1, new TimeoutException(), TimeSpan.Zero).ShouldRetry);
    }

    [Fact]
    public void Evaluate_RetryAfterHint_IsHonouredAndCapped()
    {
        RetryPolicy policy = Policy(RetryJitter.None);

        Assert.Equal(RetryDecision.Retry(Ms(750)), policy.Evaluate(1, new RetryAfterException(Ms(750)), TimeSpan.Zero));
        Assert.Equal(RetryDecision.Retry(Ms(400)), policy.Evaluate(3, new RetryAfterException(Ms(50)), TimeSpan.Zero)); // backoff is longer
        Assert.Equal(RetryDecision.Stop(RetryStopReason.RetryAfterTooLong), policy.Evaluate(1, new RetryAfterException(Ms(1001)), TimeSpan.Zero));

        var custom = new RetryPolicy(new RetryPolicyOptions { BaseDelay = Ms(1), Jitter = RetryJitter.None, RetryAfter = e => e is TimeoutException ? Ms(42) : null });
        Assert.Equal(Ms(42), custom.Evaluate(1, new TimeoutException(), TimeSpan.Zero).Delay);
    }

    [Fact]
    public void Evaluate_FailureStorm_BudgetLimitsRetriesToTheRatio()
    {
        var time = new ManualTimeProvider();
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0.1, MinRetriesPerSecond = 0, MaxBurst = 1000, TimeProvider = time });
        RetryPolicy policy = Policy(RetryJitter.None, maxAttempts: 5, budget: budget);
        int retries = 0;
        int exhausted = 0;

        for (int call = 0; call < 1000; call++)
        {
            policy.RecordCall();
            for (int attempt = 1; ; attempt++) // every attempt fails
            {
                RetryDecision decision = policy.Evaluate(attempt, new TimeoutException(), TimeSpan.Zero);
                if (!decision.ShouldRetry)
                {
                    exhausted += decision.StopReason == RetryStopReason.BudgetExhausted ? 1 : 0;
                    break;
                }

                retries++;
            }
        }

        // Without a budget the storm would retry 4000 times; the budget holds it to 10% of the 1000 calls.
        Assert.Equal(100, retries);
        Assert.Equal(100, budget.RetriesGranted);
        Assert.Equal(1000, budget.Calls);
        Assert.True(exhausted > 900);
    }

    [Fact]
    public void RetryBudget_Reserve_AllowsMinPerSecondThenRefills()
    {
        var time = new ManualTimeProvider();
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0, MinRetriesPerSecond = 10, TimeProvider = time });

        int burst = 0;
        while (budget.TryAcquireRetry())
        {
            burst++;
            Assert.True(burst <= 10, "the reserve must not exceed its burst");
        }

        Assert.Equal(10, burst);
        time.Advance(Ms(100));
        Assert.True(budget.TryAcquireRetry());
        Assert.False(budget.TryAcquireRetry());
        time.Advance(TimeSpan.FromSeconds(5)); // a long quiet spell refills one second's worth, no more
        Assert.Equal(10, Enumerable.Range(0, 20).Count(_ => budget.TryAcquireRetry()));
    }

    [Fact]
    public void RetryBudget_Deposits_AreCappedAtMaxBurst()
    {
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 1, MinRetriesPerSecond = 0, MaxBurst = 5 });
        for (int i = 0; i < 100; i++)
        {
            budget.RecordCall();
        }

        Assert.Equal(5, Enumerable.Range(0, 20).Count(_ => budget.TryAcquireRetry()));
        Assert.Equal(15, budget.RetriesRefused);
    }

    [Fact]
    public void RetryBudget_RatioAboveOne_UnspentCreditNeverExceedsMaxBurst()
    {
        // One call deposits 3 retries, but at most MaxBurst = 2 may be held: before, the deposit that found the
        // credit below the cap was added whole, so a single call funded 3 (and 100 with RetryRatio = 100).
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 3, MinRetriesPerSecond = 0, MaxBurst = 2 });
        budget.RecordCall();
        Assert.Equal(2, Enumerable.Range(0, 10).Count(_ => budget.TryAcquireRetry()));

        budget.RecordCall();
        budget.RecordCall();
        Assert.Equal(2, Enumerable.Range(0, 10).Count(_ => budget.TryAcquireRetry()));
    }

    [Fact]
    public void RetryBudget_SmallRatio_IsNotRoundedAway()
    {
        // RetryRatio = 0.0004 is in the documented range [0, 100]: before, the deposit was kept in milli-retries and
        // rounded to 0, so no number of calls ever funded a retry (the ratio silently became 0).
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0.0004, MinRetriesPerSecond = 0, MaxBurst = 10 });
        for (int i = 0; i < 5000; i++)
        {
            budget.RecordCall();
        }

        Assert.Equal(2, Enumerable.Range(0, 10).Count(_ => budget.TryAcquireRetry()));

        // Below the budget's resolution (one millionth of a retry per call) a positive ratio is refused, not zeroed.
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { RetryRatio = 1e-7 }));
    }

    [Fact]
    public async Task ExecuteAsync_FailsThenSucceeds_RetriesAndReturns()
    {
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 4, BaseDelay = TimeSpan.Zero, Jitter = RetryJitter.None });
        int calls = 0;

        int result = await policy.ExecuteAsync(_ => ++calls < 3 ? throw new TimeoutException() : new ValueTask<int>(42)).AsTask().WaitAsync(Generous);

        Assert.Equal(42, result);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task ExecuteAsync_AlwaysFails_ThrowsTheLastFailureAfterMaxAttempts()
    {
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 3, BaseDelay = TimeSpan.Zero });
        int calls = 0;

        var error = await Assert.ThrowsAsync<TimeoutException>(() =>
            policy.ExecuteAsync<int>(_ => throw new TimeoutException($"attempt {++calls}")).AsTask().WaitAsync(Generous));

        Assert.Equal("attempt 3", error.Message);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task ExecuteAsync_WaitsOnTheClock_NeverRetriesEarly()
    {
        var time = new ManualTimeProvider();
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = Ms(100), Jitter = RetryJitter.None, TimeProvider = time });
        int calls = 0;
        Task<int> run = policy.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException() : new ValueTask<int>(calls)).AsTask();

        await Task.Delay(50);
        time.Advance(Ms(99));
        await Task.Delay(50);
        Assert.Equal(1, calls);
        Assert.False(run.IsCompleted);
        time.Advance(Ms(1));

        Assert.Equal(2, await run.WaitAsync(Generous));
    }

    [Fact]
    public async Task ExecuteAsync_OnTimerWheel_WaitsForTheWheelNeverEarly()
    {
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Ms(1), time);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = Ms(100), Jitter = RetryJitter.None, TimeProvider = time, TimerWheel = wheel });
        int calls = 0;
        Task<int> run = policy.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException() : new ValueTask<int>(calls)).AsTask();

        time.Advance(Ms(99));
        wheel.Advance();
        await Task.Delay(50);
        Assert.Equal(1, calls);
        Assert.False(run.IsCompleted);

        time.Advance(Ms(5)); // the wheel may fire up to two ticks after the due time, never before
        wheel.Advance();
        Assert.Equal(2, await run.WaitAsync(Generous));
        Assert.Equal(1, wheel.FiredCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ExecuteAsync_OnTimerWheelThatRefuses_WaitsOnTheClockInstead(bool disposed)
    {
        // A full wheel (its MaxTimers held) or a disposed one refuses the wait's timer. Before, that refusal
        // (InvalidOperationException, ObjectDisposedException) came out of ExecuteAsync in place of the retry the
        // policy had just granted; the queues' wake-ups fall back to a TimeProvider timer, and so does the wait now.
        var time = new ManualTimeProvider();
        var wheel = new HierarchicalTimerWheel(Ms(1), time, maxTimers: 1);
        wheel.Schedule(TimeSpan.FromHours(1), static _ => { }, null); // fills it
        if (disposed)
        {
            wheel.Dispose();
        }

        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = Ms(100), Jitter = RetryJitter.None, TimeProvider = time, TimerWheel = wheel });
        int calls = 0;
        Task<int> run = policy.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException() : new ValueTask<int>(calls)).AsTask();

        time.Advance(Ms(99));
        await Task.Delay(50);
        Assert.Equal(1, calls);
        Assert.False(run.IsCompleted); // never early on the fallback either

        time.Advance(Ms(1));
        Assert.Equal(2, await run.WaitAsync(Generous));
        wheel.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ExecuteAsync_WheelDisposedWhileWaiting_RetriesOnTheClockAtTheDueTime(bool withToken)
    {
        // The wheel is disposed while the wait between attempts is pending on it. Before, Dispose dropped the wait's
        // timer and ExecuteAsync never returned (with a token too: cancelling asked the disposed wheel, which answered
        // false). The wait now finishes on the policy's clock at the same due time.
        var time = new ManualTimeProvider();
        var wheel = new HierarchicalTimerWheel(Ms(1), time);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = Ms(100), Jitter = RetryJitter.None, TimeProvider = time, TimerWheel = wheel });
        using var cts = new CancellationTokenSource();
        int calls = 0;
        Task<int> run = policy.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException() : new ValueTask<int>(calls), withToken ? cts.Token : default).AsTask();
        await UntilPending(wheel, 1);

        wheel.Dispose();
        time.Advance(Ms(99));
        await Task.Delay(20);
        Assert.False(run.IsCompleted); // never early on the fallback

        time.Advance(Ms(1));
        Assert.Equal(2, await run.WaitAsync(Generous));
        Assert.Equal(0, wheel.FiredCount);
    }

    [Fact]
    public async Task ExecuteAsync_WheelDisposedWhileWaiting_CancellationStillCancels()
    {
        // Before, the token's cancellation went to the disposed wheel, whose Cancel answered false: the wait hung.
        var time = new ManualTimeProvider();
        var wheel = new HierarchicalTimerWheel(Ms(1), time);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, BaseDelay = Ms(100), Jitter = RetryJitter.None, TimeProvider = time, TimerWheel = wheel });
        using var cts = new CancellationTokenSource();
        int calls = 0;
        Task<int> run = policy.ExecuteAsync<int>(_ => { calls++; throw new TimeoutException(); }, cts.Token).AsTask();
        await UntilPending(wheel, 1);

        wheel.Dispose();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Generous));
        Assert.Equal(1, calls);
        Assert.Equal(0, time.ActiveTimers); // the fallback timer went with the wait
    }

    /// <summary>Advances the wheel (clock unchanged) until it holds <paramref name="timers"/> timers.</summary>
    private static async Task UntilPending(HierarchicalTimerWheel wheel, int timers)
    {
        DateTime deadline = DateTime.UtcNow + Generous;
        while (true)
        {
            wheel.Advance();
            if (wheel.PendingCount >= timers)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the wait did not schedule {timers} wheel timers");
            await Task.Delay(5);
        }
    }

    [Fact]
    public void Constructor_TimerWheelOnAnotherClock_Throws()
    {
        // ExecuteAsync is documented to wait on the policy's TimeProvider; a wheel reading another clock would make it
        // wait on that one instead (a manual-clock test would then depend on real time). Before, it was accepted.
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Ms(1), new ManualTimeProvider());
        Assert.Throws<ArgumentException>(() => new RetryPolicy(new RetryPolicyOptions { TimeProvider = time, TimerWheel = wheel }));
        using var systemWheel = new HierarchicalTimerWheel(Ms(1));
        Assert.Throws<ArgumentException>(() => new RetryPolicy(new RetryPolicyOptions { TimeProvider = time, TimerWheel = systemWheel }));
        Assert.NotNull(new RetryPolicy(new RetryPolicyOptions { TimerWheel = systemWheel })); // both on TimeProvider.System
    }

    [Fact]
    public async Task ExecuteAsync_OnTimerWheel_CancelledWhileWaiting_CancelsTheWheelTimer()
    {
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Ms(1), time);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, BaseDelay = Ms(100), TimeProvider = time, TimerWheel = wheel });
        using var cts = new CancellationTokenSource();
        int calls = 0;
        Task<int> run = policy.ExecuteAsync<int>(_ => { calls++; throw new TimeoutException(); }, cts.Token).AsTask();

        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Generous));
        time.Advance(Ms(1000));
        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount); // the timer was cancelled, not fired
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task ExecuteAsync_CancelledWhileWaiting_ThrowsAndStopsRetrying()
    {
        var time = new ManualTimeProvider();
        // No jitter: a full-jitter draw near zero is a timer the manual clock fires at once, and the second attempt
        // would then run before the cancel (seen once in CI-sized runs). The wait must be the whole 100 ms here.
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 5, BaseDelay = Ms(100), Jitter = RetryJitter.None, TimeProvider = time });
        using var cts = new CancellationTokenSource();
        int calls = 0;
        Task<int> run = policy.ExecuteAsync<int>(_ => { calls++; throw new TimeoutException(); }, cts.Token).AsTask();
        await Task.Delay(50);

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Generous));
        Assert.Equal(1, calls);
    }

    [Fact]
    public void Constructor_BadArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy(new RetryPolicyOptions { BaseDelay = Ms(-1) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy(new RetryPolicyOptions { BaseDelay = Ms(10), MaxDelay = Ms(5) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy(new RetryPolicyOptions { MaxDelay = TimeSpan.FromDays(60) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy(new RetryPolicyOptions { Jitter = (RetryJitter)9 }));
        Assert.Throws<ArgumentNullException>(() => new RetryPolicy(new RetryPolicyOptions { TimeProvider = null! }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { RetryRatio = -0.1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { RetryRatio = double.NaN }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { MinRetriesPerSecond = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { MaxBurst = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryAfterException(Ms(-1)));

        RetryPolicy policy = Policy(RetryJitter.None);
        Assert.Throws<ArgumentOutOfRangeException>(() => policy.Evaluate(0, new TimeoutException(), TimeSpan.Zero));
        Assert.Throws<ArgumentNullException>(() => policy.Evaluate(1, null!, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => policy.GetBackoff(1, Ms(-1)));
        Assert.Throws<ArgumentNullException>(() => policy.ExecuteAsync<int>(null!));
    }
}
