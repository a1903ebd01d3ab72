using System.Diagnostics;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using LockFree.Throttling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Throttling;

/// <summary>
/// The token bucket engine instantiated with <see cref="TestAtomics"/>, explored with concurrent acquirers (and a
/// thread that moves the manual clock) under random walk, PCT and bounded-preemption search, race detection on.
/// Post-part checks: the accuracy bound over the whole run, admitted &lt;= capacity + rate x time advanced; with the
/// clock still, no token lost (admitted + available = capacity) and none refused while the bucket held it.
/// The planted split CAS (a lost update on the batch word) must be found as over-admission.
/// </summary>
public sealed class TokenBucketScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy per scenario in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 600;

    /// <summary>One scenario: the bucket's shape and each thread's program.</summary>
    public sealed record Scenario(string Name, long Capacity, long Batch, int Acquirers, int[] Costs, int ClockSteps)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<string> Names => new() { "no refill, batch 2", "no refill, exact", "clock moves, batch 3", "multi-token costs" };

    internal static Scenario Get(string name) => name switch
    {
        "no refill, batch 2" => new Scenario(name, Capacity: 3, Batch: 2, Acquirers: 3, Costs: [1, 1], ClockSteps: 0),
        "no refill, exact" => new Scenario(name, Capacity: 2, Batch: 1, Acquirers: 3, Costs: [1, 1], ClockSteps: 0),
        "clock moves, batch 3" => new Scenario(name, Capacity: 4, Batch: 3, Acquirers: 2, Costs: [1, 1, 1], ClockSteps: 2),
        _ => new Scenario(name, Capacity: 5, Batch: 2, Acquirers: 2, Costs: [2, 1, 3], ClockSteps: 1),
    };

    /// <summary>What one schedule shares: the engine, its clock, and per-thread tallies (each written by one thread only).</summary>
    internal sealed class State
    {
        public readonly ManualTimeProvider Time = new();
        public TokenBucketCore<TestAtomics> Core; // mutable struct: used in place
        public readonly long[] Admitted;
        public int SecondsAdvanced;

        public State(Scenario scenario)
        {
            Core = new TokenBucketCore<TestAtomics>(scenario.Capacity, 1.0, scenario.Batch, Time);
            Admitted = new long[scenario.Acquirers];
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Explore_ConcurrentAcquirers_NeverExceedTheBound(string name)
    {
        Scenario scenario = Get(name);
        var clock = Stopwatch.StartNew();
        long schedules = 0;
        foreach (var (strategy, budget) in Plan(seed: 4000 + name.Length, PerStrategy))
        {
            ExplorationResult r = Explore(scenario, strategy, budget, new ExploreOptions { Name = name });
            schedules += r.Iterations;
            output.WriteLine($"{name}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        output.WriteLine($"{name}: {schedules} schedules in {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public void Explore_SplitCompareExchange_IsFoundAsOverAdmission()
    {
        Scenario scenario = Get("no refill, batch 2");
        var found = new List<string>();
        foreach (var (strategy, _) in Plan(seed: 77, 0))
        {
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(scenario, strategy, 1000,
                new ExploreOptions { Name = "planted split CAS", Bugs = PlantedBug.SplitCompareExchange, DetectRaces = false }));
            Assert.IsType<BoundViolationException>(failure.InnerException);
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1}");
            if (found.Count == 1)
            {
                output.WriteLine(failure.Message);
            }
        }

        output.WriteLine("split CAS found by " + string.Join("; ", found));
    }

    private static IEnumerable<(Strategy Strategy, int Schedules)> Plan(long seed, int perStrategy) =>
    [
        (Strategy.RandomWalk(seed), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.Pct(seed + 1, depth: 2), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.Pct(seed + 2, depth: 3), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.BoundedPreemption(2), ExplorationBudget.Schedules(perStrategy)),
    ];

    internal static ExplorationResult Explore(Scenario scenario, Strategy strategy, int budget, ExploreOptions options)
    {
        var threads = new List<Action<State>>();
        for (int t = 0; t < scenario.Acquirers; t++)
        {
            int thread = t;
            threads.Add(s =>
            {
                foreach (int cost in scenario.Costs)
                {
                    if (s.Core.TryAcquire(cost, out _) == AcquireStatus.Acquired)
                    {
                        s.Admitted[thread] += cost;
                    }
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
                    s.Time.Advance(TimeSpan.FromSeconds(1), fireTimers: false);
                    s.SecondsAdvanced++;
                }
            });
        }

        return ControlledTest.Explore(
            strategy,
            budget,
            () => new State(scenario),
            threads,
            s =>
            {
                long admitted = s.Admitted.Sum();
                long bound = scenario.Capacity + s.SecondsAdvanced; // rate 1 token/s
                if (admitted > bound)
                {
                    throw new BoundViolationException($"admitted {admitted} tokens, bound {bound} (capacity {scenario.Capacity} + {s.SecondsAdvanced} s x 1/s)");
                }

                // With the clock still, a quiescent bucket settles to exactly what is left: nothing is lost.
                if (scenario.ClockSteps == 0)
                {
                    long available = s.Core.Available();
                    if (admitted + available != scenario.Capacity)
                    {
                        throw new BoundViolationException($"admitted {admitted} + available {available} != capacity {scenario.Capacity}: tokens lost");
                    }

                    // And with the clock still, charging is exact: no request was refused while the bucket held its tokens.
                    long requested = scenario.Acquirers * (long)scenario.Costs.Sum();
                    if (admitted != Math.Min(requested, scenario.Capacity))
                    {
                        throw new BoundViolationException($"admitted {admitted} of {requested} requested from a full bucket of {scenario.Capacity}: a refusal while tokens remained");
                    }
                }
            },
            options);
    }

    /// <summary>The bucket admitted more than the accuracy bound allows, or lost tokens.</summary>
    public sealed class BoundViolationException(string message) : Exception(message);
}
