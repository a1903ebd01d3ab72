using System.Diagnostics;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// Each real queue engine, instantiated with <see cref="TestAtomics"/>, explored over its scenarios at capacities
/// 1, 2 and 4 (and 2 starting full) with random walk, PCT and bounded-preemption search, with race detection on. Post-part checks:
/// exactly-once, per-producer FIFO, capacity, peek consistency and linearizability.
/// CI budget: at least 10,000 schedules per primitive (<see cref="PerStrategy"/> x 5 strategies x 4 scenarios,
/// fewer only where the bounded search is exhausted earlier, which is then complete for that bound).
/// </summary>
public sealed class QueueScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy per capacity in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    public const int PerStrategy = 2500;

    [Theory]
    [InlineData(QueueKind.Spsc)]
    [InlineData(QueueKind.SpscEagerBound)]
    [InlineData(QueueKind.SpscEagerPause)]
    [InlineData(QueueKind.Mpsc)]
    [InlineData(QueueKind.Spmc)]
    [InlineData(QueueKind.Mpmc)]
    public void Explore_RealEngine_PassesAllChecks(QueueKind kind)
    {
        var clock = Stopwatch.StartNew();
        long schedules = 0;
        foreach (QueueScenario scenario in QueueScenarios.For(kind))
        {
            foreach (var (strategy, budget) in QueueScenarios.Plan(seed: 1000 + ((int)kind * 100) + (scenario.Capacity * 10) + scenario.Prefill, PerStrategy))
            {
                ExplorationResult r = scenario.Explore(strategy, budget);
                schedules += r.Iterations;
                output.WriteLine($"{scenario}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
            }
        }

        output.WriteLine($"{kind}: {schedules} schedules in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(schedules >= ExplorationBudget.Schedules(10_000), $"{kind}: only {schedules} schedules");
    }
}
