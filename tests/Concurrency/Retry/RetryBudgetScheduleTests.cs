using System.Diagnostics;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Retry;

/// <summary>
/// The retry budget's engine (<see cref="RetryBudgetCore{TAtomics}"/>, the code <see cref="RetryBudget"/> runs)
/// instantiated with <see cref="TestAtomics"/>: two or three threads recording calls and asking for retries at once,
/// explored under random walk, PCT (depth 2 and 3) and bounded-preemption search, race detection on.
/// Post-part checks: the counters agree with what the threads saw (calls, grants, refusals), and, on a clock that does
/// not move, the history with the final credit is linearizable against <see cref="RetryBudgetSpec"/> (the sequential
/// rules of the model-based property in tests/Unit/Retry: capped deposits, whole-retry spends, the GCRA reserve), so
/// no retry is granted beyond what some order of the same calls allows, none refused while credit remained, and no
/// deposit lost; with the clock moving, the reserve's grants stay within burst + rate x time advanced.
/// The planted split CAS (a load, a switch, then a store) must be found by every strategy: a retry spent twice, a
/// deposit lost at the cap, two reserve grants on the same arrival time (on a still clock and with the clock moving).
/// </summary>
public sealed class RetryBudgetScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy per scenario in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 400;

    private const BudgetOp C = BudgetOp.RecordCall;
    private const BudgetOp A = BudgetOp.TryAcquireRetry;

    /// <summary>One scenario: the budget's options, calls recorded alone first, each thread's program, clock moves of 500 ms.</summary>
    public sealed record Scenario(string Name, double Ratio, int MinPerSecond, int Burst, int SetupCalls, BudgetOp[][] Threads, int ClockSteps = 0)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<string> Names => new() { "spends race", "deposits at the cap", "reserve burst", "credit then reserve", "clock moves" };

    internal static Scenario Get(string name) => name switch
    {
        // Two retries of credit, five requests: exactly two granted.
        "spends race" => new Scenario(name, Ratio: 1.0, MinPerSecond: 0, Burst: 10, SetupCalls: 2, Threads: [[A, A], [A, A], [A]]),

        // Deposits of 0.6 racing at a cap of 2 retries, with spends between them.
        "deposits at the cap" => new Scenario(name, Ratio: 0.6, MinPerSecond: 0, Burst: 2, SetupCalls: 0, Threads: [[C, C, A], [C, A, C], [C, C]]),

        // No ratio, a reserve of 2 per second on a still clock: exactly two of four granted.
        "reserve burst" => new Scenario(name, Ratio: 0.0, MinPerSecond: 2, Burst: 0, SetupCalls: 0, Threads: [[A, A], [A], [A]]),

        // Both buckets: a retry falls through to the reserve once the credit is spent.
        "credit then reserve" => new Scenario(name, Ratio: 0.5, MinPerSecond: 1, Burst: 1, SetupCalls: 2, Threads: [[C, A], [A, C], [A, A]]),

        // The reserve while a thread moves the clock: at most 2 + 2/s x 1 s.
        _ => new Scenario(name, Ratio: 0.0, MinPerSecond: 2, Burst: 0, SetupCalls: 0, Threads: [[A, A, A], [A, A, A]], ClockSteps: 2),
    };

    /// <summary>What one schedule shares: the engine, its clock, and the history (one logical thread runs at a time).</summary>
    internal sealed class State
    {
        public readonly ManualTimeProvider Time = new();
        public readonly List<Operation<BudgetOp, long>> History = [];
        public RetryBudgetCore<TestAtomics> Core; // mutable struct: used in place
        public long Tick;                         // the history's clock: bumped only by the running logical thread
        public int MillisecondsAdvanced;

        public State(Scenario scenario)
        {
            Core = new RetryBudgetCore<TestAtomics>(scenario.Ratio, scenario.MinPerSecond, scenario.Burst, Time);
            for (int i = 0; i < scenario.SetupCalls; i++)
            {
                Core.RecordCall();
            }
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Explore_ConcurrentCallsAndRetries_AccountingExact(string name)
    {
        Scenario scenario = Get(name);
        var clock = Stopwatch.StartNew();
        long schedules = 0;
        foreach (Func<Strategy> strategy in CiStrategies.Standard(5000 + name.Length))
        {
            ExplorationResult r = Explore(scenario, strategy(), ExplorationBudget.Schedules(PerStrategy), new ExploreOptions { Name = name });
            schedules += r.Iterations;
            output.WriteLine($"{name}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        output.WriteLine($"{name}: {schedules} schedules in {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Theory]
    [InlineData("spends race")]         // the credit's CAS: two spends of the same retry
    [InlineData("reserve burst")]       // the reserve's CAS: two grants on the same arrival time
    [InlineData("clock moves")]         // the same, found by the bound with the clock moving
    [InlineData("deposits at the cap")] // a lost deposit: the final credit no order of the calls leaves
    public void Explore_SplitCompareExchange_IsFound(string name)
    {
        Scenario scenario = Get(name);
        var found = new List<string>();
        foreach (Func<Strategy> strategy in CiStrategies.Standard(77))
        {
            Strategy s = strategy();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(scenario, s, 1000,
                new ExploreOptions { Name = name + ", planted split CAS", Bugs = PlantedBug.SplitCompareExchange, DetectRaces = false }));
            Assert.IsType<BudgetViolationException>(failure.InnerException);
            found.Add($"{s.Name}: schedule {failure.Iteration + 1}");
            if (found.Count == 1)
            {
                output.WriteLine(failure.Message);
            }
        }

        output.WriteLine($"{name}: split CAS found by " + string.Join("; ", found));
    }

    internal static ExplorationResult Explore(Scenario scenario, Strategy strategy, int budget, ExploreOptions options)
    {
        var threads = new List<Action<State>>();
        for (int t = 0; t < scenario.Threads.Length; t++)
        {
            int thread = t;
            threads.Add(s =>
            {
                foreach (BudgetOp op in scenario.Threads[thread])
                {
                    long call = ++s.Tick;
                    long result = 0;
                    if (op == BudgetOp.RecordCall)
                    {
                        s.Core.RecordCall();
                    }
                    else
                    {
                        result = s.Core.TryAcquireRetry() ? 1 : 0;
                    }

                    s.History.Add(new Operation<BudgetOp, long>(thread, op, result, call, ++s.Tick));
                }
            });
        }

        if (scenario.ClockSteps > 0)
        {
            threads.Add(s =>
            {
                for (int i = 0; i < scenario.ClockSteps; i++)
                {
                    TestAtomics.FullFence(); // a scheduling point between clock moves
                    s.Time.Advance(TimeSpan.FromMilliseconds(500), fireTimers: false);
                    s.MillisecondsAdvanced += 500;
                }
            });
        }

        return ControlledTest.Explore(strategy, budget, () => new State(scenario), threads, s => Check(scenario, s), options);
    }

    private static void Check(Scenario scenario, State s)
    {
        long calls = scenario.SetupCalls + s.History.Count(o => o.Input == BudgetOp.RecordCall);
        long granted = s.History.Count(o => o.Input == BudgetOp.TryAcquireRetry && o.Output == 1);
        long refused = s.History.Count(o => o.Input == BudgetOp.TryAcquireRetry && o.Output == 0);
        if (s.Core.Calls != calls || s.Core.Granted != granted || s.Core.Refused != refused)
        {
            throw new BudgetViolationException($"counters {s.Core.Calls}/{s.Core.Granted}/{s.Core.Refused}, seen {calls}/{granted}/{refused} (calls/granted/refused)");
        }

        if (scenario.ClockSteps > 0)
        {
            // Ratio 0: only the reserve grants; GCRA burst = rate, then at most rate x time.
            long bound = scenario.MinPerSecond + (scenario.MinPerSecond * s.MillisecondsAdvanced / 1000);
            if (granted > bound || s.Core.Credit != 0)
            {
                throw new BudgetViolationException($"granted {granted} retries, bound {bound} ({scenario.MinPerSecond}/s, {s.MillisecondsAdvanced} ms advanced); credit {s.Core.Credit}");
            }

            return;
        }

        // A still clock: the history, closed by the final credit, must be one the sequential budget can produce.
        var history = new List<Operation<BudgetOp, long>>(s.History)
        {
            new(-1, BudgetOp.ObserveCredit, s.Core.Credit, s.Tick + 1, s.Tick + 2),
        };
        var spec = new RetryBudgetSpec(scenario.Ratio, scenario.MinPerSecond, scenario.Burst, s.Time.TimestampFrequency, scenario.SetupCalls);
        LinearizabilityResult result = LinearizabilityChecker.Check(spec, history);
        if (!result.IsLinearizable)
        {
            throw new BudgetViolationException("not linearizable against the sequential budget: " + result.Explanation);
        }
    }

    /// <summary>The budget granted more than its rules allow, lost a deposit, or miscounted.</summary>
    public sealed class BudgetViolationException(string message) : Exception(message);
}
