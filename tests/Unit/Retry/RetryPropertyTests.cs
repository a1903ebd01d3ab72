using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>Properties of the backoff formulas and of the retry budget's bound, over generated parameters.</summary>
public sealed class RetryPropertyTests
{
    private const int MaxTests = 300;

    [Fact]
    public void GetBackoff_AnyParameters_StaysWithinTheFormulaBoundsAndTheCap()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), BackoffWithinBounds(static (policy, retry, previous) => policy.GetBackoff(retry, previous)));
    }

    [Fact]
    public void GetBackoff_PlantedHalfAgainTooLong_IsFalsified()
    {
        // Planted (acceptance audit, 2026-11-23: the properties had no planted bug showing they can fail): the delay
        // used is 1.5 times what the policy computed, as a formula off by a factor would give.
        AssertFalsified(BackoffWithinBounds(static (policy, retry, previous) => policy.GetBackoff(retry, previous) * 1.5), MaxTests);
    }

    [Fact]
    public void RetryBudget_AnyCallAndRetrySequence_GrantsNoMoreThanItsBound()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests / 3), BudgetWithinBound(static (budget, _) => budget.TryAcquireRetry(), countsAgree: true));
    }

    [Fact]
    public void RetryBudget_PlantedRefusalIgnored_IsFalsified()
    {
        // Planted: the budget is asked but its refusal ignored (every retry request granted). A subtler leak, every tenth
        // refused request granted, was NOT falsified in 100 generated runs (audit, 2026-11-23): the bound's slack (burst
        // plus MinRetriesPerSecond * (T + 1 s) per window) hides a 10% leak for most generated parameters.
        AssertFalsified(BudgetWithinBound(static (budget, _) => budget.TryAcquireRetry() || true, countsAgree: false), MaxTests / 3);
    }

    [Fact]
    public void RetryBudget_AnyCallRetryClockSequence_MatchesSequentialModel()
    {
        // Model-based (acceptance audit, 2026-11-23): every TryAcquireRetry answer and the counters against a sequential
        // restatement of the documented budget (a capped credit bucket in micro-retries, then a GCRA reserve of exactly
        // MinRetriesPerSecond). The window bound above tolerates a small leak; this does not.
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests / 3), BudgetMatchesModel(static (budget, _) => budget.TryAcquireRetry()));
    }

    [Fact]
    public void RetryBudget_PlantedGrantOfEveryTenthRequest_IsFalsifiedByTheModel()
    {
        // The leak the window bound does not find (see RetryBudget_PlantedRefusalIgnored_IsFalsified): the model does.
        AssertFalsified(BudgetMatchesModel(static (budget, request) => budget.TryAcquireRetry() | (request % 10 == 9)), MaxTests / 3);
    }

    /// <summary>
    /// Budget scenarios: a ratio from <paramref name="ratios"/>, a minimum rate 0-20 per second, a burst 0-50, and 300 ops
    /// (0 = a call, 1 = a retry request, 2 = advance the clock 1-500 ms).
    /// </summary>
    private static Gen<(double Ratio, int MinPerSecond, int Burst, (int Kind, int Ms)[] Ops)> BudgetScenarios(params double[] ratios) =>
        from ratio in Gen.Elements(ratios)
        from min in Gen.Choose(0, 20)
        from burst in Gen.Choose(0, 50)
        from ops in Gen.ArrayOf(Gen.Choose(0, 2).SelectMany(k => Gen.Choose(1, 500).Select(ms => (k, ms))), 300)
        select (ratio, min, burst, ops);

    private static Property BudgetMatchesModel(Func<RetryBudget, int, bool> acquire)
    {
        Gen<(double Ratio, int MinPerSecond, int Burst, (int Kind, int Ms)[] Ops)> gen = BudgetScenarios(0.0, 0.05, 0.1, 0.333333, 0.5, 1.0, 2.5, 10.0);

        return Prop.ForAll(Arb.From(gen), p =>
        {
            var time = new ManualTimeProvider();
            var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = p.Ratio, MinRetriesPerSecond = p.MinPerSecond, MaxBurst = p.Burst, TimeProvider = time });

            // The model: credit in micro-retries, capped at MaxBurst retries; the reserve's theoretical arrival time.
            const long Unit = 1_000_000;
            long deposit = (long)Math.Round(p.Ratio * Unit), maxCredit = p.Burst * Unit, credit = 0;
            long interval = p.MinPerSecond == 0 ? 0 : Math.Max(1, (time.TimestampFrequency + p.MinPerSecond - 1) / p.MinPerSecond);
            long tolerance = (p.MinPerSecond - 1) * interval;
            long origin = time.GetTimestamp(), tat = long.MinValue;
            long calls = 0, granted = 0, refused = 0;
            int requests = 0;
            for (int step = 0; step < p.Ops.Length; step++)
            {
                (int kind, int ms) = p.Ops[step];
                switch (kind)
                {
                    case 0:
                        budget.RecordCall();
                        calls++;
                        credit = credit < maxCredit ? Math.Min(credit + deposit, maxCredit) : credit;
                        break;
                    case 1:
                        bool expected;
                        if (credit >= Unit)
                        {
                            credit -= Unit;
                            expected = true;
                        }
                        else if (p.MinPerSecond == 0)
                        {
                            expected = false;
                        }
                        else
                        {
                            long now = time.GetTimestamp() - origin;
                            long next = Math.Max(tat, now) + interval;
                            expected = next - now <= tolerance + interval;
                            tat = expected ? next : tat;
                        }

                        bool actual = acquire(budget, requests++);
                        if (actual != expected)
                        {
                            return false.Label($"op {step}: TryAcquireRetry {actual}, model {expected}");
                        }

                        granted += expected ? 1 : 0;
                        refused += expected ? 0 : 1;
                        break;
                    default:
                        time.Advance(TimeSpan.FromMilliseconds(ms));
                        break;
                }
            }

            return (budget.Calls == calls && budget.RetriesGranted == granted && budget.RetriesRefused == refused)
                .Label($"counters {budget.Calls}/{budget.RetriesGranted}/{budget.RetriesRefused}, model {calls}/{granted}/{refused}");
        });
    }

    private static void AssertFalsified(Property property, int maxTests)
    {
        Exception? failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(maxTests), property));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
    }

    private static Property BackoffWithinBounds(Func<RetryPolicy, int, TimeSpan, TimeSpan> backoff)
    {
        Gen<(int BaseMs, int CapMs, int Retry, RetryJitter Jitter, int Seed, int PreviousMs)> gen =
            from baseMs in Gen.Choose(0, 2_000)
            from extra in Gen.Choose(0, 60_000)
            from retry in Gen.Choose(1, 80)
            from jitter in Gen.Elements(RetryJitter.None, RetryJitter.Full, RetryJitter.Decorrelated)
            from seed in Gen.Choose(0, int.MaxValue)
            from previous in Gen.Choose(0, 70_000)
            select (baseMs, baseMs + extra, retry, jitter, seed, previous);

        return Prop.ForAll(Arb.From(gen), p =>
        {
            var policy = new RetryPolicy(new RetryPolicyOptions
            {
                BaseDelay = TimeSpan.FromMilliseconds(p.BaseMs),
                MaxDelay = TimeSpan.FromMilliseconds(p.CapMs),
                Jitter = p.Jitter,
                Random = new Random(p.Seed),
            });
            double delay = backoff(policy, p.Retry, TimeSpan.FromMilliseconds(p.PreviousMs)).TotalMilliseconds;
            double exponential = Math.Min(p.CapMs, p.BaseMs * Math.Pow(2, p.Retry - 1));
            double tolerance = 0.0001; // whole ticks
            bool inBounds = p.Jitter switch
            {
                RetryJitter.None => Math.Abs(delay - exponential) <= tolerance,
                RetryJitter.Full => delay >= 0 && delay <= exponential + tolerance,
                _ => delay >= Math.Min(p.BaseMs, p.CapMs) - tolerance && delay <= Math.Min(p.CapMs, 3.0 * Math.Max(p.BaseMs, p.PreviousMs)) + tolerance,
            };
            return (inBounds && delay <= p.CapMs + tolerance).Label($"delay {delay} ms, exponential {exponential} ms");
        });
    }

    /// <summary>
    /// The budget's bound over every window; <paramref name="acquire"/> asks for a retry (its second argument: the
    /// request's index); with <paramref name="countsAgree"/>, the budget's own RetriesGranted must match the grants seen.
    /// </summary>
    private static Property BudgetWithinBound(Func<RetryBudget, int, bool> acquire, bool countsAgree)
    {
        // Ops: 0 = a call, 1 = a retry request, 2 = advance the clock 1-500 ms. Bound: ratio * calls + burst + min * (T + 1 s).
        Gen<(double Ratio, int MinPerSecond, int Burst, (int Kind, int Ms)[] Ops)> gen = BudgetScenarios(0.0, 0.05, 0.1, 0.5, 1.0, 2.5, 10.0);

        return Prop.ForAll(Arb.From(gen), p =>
        {
            var time = new ManualTimeProvider();
            var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = p.Ratio, MinRetriesPerSecond = p.MinPerSecond, MaxBurst = p.Burst, TimeProvider = time });
            long calls = 0, granted = 0;
            int requests = 0;
            double elapsedSeconds = 0;
            var history = new List<(long Calls, long Granted, double Seconds)> { (0, 0, 0) };
            foreach ((int kind, int ms) in p.Ops)
            {
                switch (kind)
                {
                    case 0:
                        budget.RecordCall();
                        calls++;
                        break;
                    case 1:
                        granted += acquire(budget, requests++) ? 1 : 0;
                        break;
                    default:
                        time.Advance(TimeSpan.FromMilliseconds(ms));
                        elapsedSeconds += ms / 1000.0;
                        break;
                }

                history.Add((calls, granted, elapsedSeconds));
            }

            // Every window, not only from the start: unspent credit is capped, so a quiet stretch cannot fund a later storm.
            for (int i = 0; i < history.Count; i++)
            {
                for (int j = i + 1; j < history.Count; j++)
                {
                    long windowCalls = history[j].Calls - history[i].Calls;
                    long windowGranted = history[j].Granted - history[i].Granted;
                    double seconds = history[j].Seconds - history[i].Seconds;
                    double bound = (p.Ratio * windowCalls) + p.Burst + (p.MinPerSecond * (seconds + 1)) + 1; // +1: the reserve's interval is rounded down to whole timestamps
                    if (windowGranted > bound)
                    {
                        return false.Label($"ops {i}..{j}: granted {windowGranted} > bound {bound:F1} ({windowCalls} calls, {seconds:F2} s)");
                    }
                }
            }

            return (!countsAgree || granted == budget.RetriesGranted).Label("RetriesGranted agrees");
        });
    }
}
