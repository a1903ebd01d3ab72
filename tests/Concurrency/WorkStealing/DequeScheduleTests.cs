using System.Diagnostics;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// The real Chase-Lev engine (<c>ChaseLevDeque&lt;object, TestAtomics&gt;</c>) explored over
/// <see cref="DequeScenarios"/> with random walk, PCT and bounded-preemption search, race detection on; every
/// schedule's post part checks exactly-once delivery and linearizability against <see cref="DequeSpec"/>.
/// </summary>
public sealed class DequeScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy per scenario in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    public const int PerStrategy = 400;

    public static TheoryData<string> ScenarioNames => new(DequeScenarios.All(DequeKind.Real).Select((_, i) => i.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    [Theory]
    [MemberData(nameof(ScenarioNames))]
    public void Explore_RealEngine_IsLinearizableAndExactlyOnce(string index)
    {
        DequeScenario scenario = DequeScenarios.All(DequeKind.Real).ElementAt(int.Parse(index, System.Globalization.CultureInfo.InvariantCulture));
        var clock = Stopwatch.StartNew();
        long schedules = 0;
        foreach (var (strategy, budget) in DequeScenarios.Plan(seed: 5000 + int.Parse(index, System.Globalization.CultureInfo.InvariantCulture), PerStrategy))
        {
            ExplorationResult r = scenario.Explore(strategy, budget);
            schedules += r.Iterations;
            output.WriteLine($"{r.Strategy}: {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        output.WriteLine($"{scenario}: {schedules} schedules in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(schedules >= 4, $"only {schedules} schedules");
    }

    [Fact]
    public void Spec_RejectsPopAndStealOfTheSameLastItem()
    {
        var history = new List<Operation<DequeInput, DequeOutput>>
        {
            new(1, new DequeInput(DequeOpKind.Push, 1), DequeOutput.Pushed, 0, 1),
            new(1, new DequeInput(DequeOpKind.Pop), DequeOutput.Item(1), 2, 5),
            new(2, new DequeInput(DequeOpKind.Steal), DequeOutput.Item(1), 3, 6),
        };
        Assert.False(LinearizabilityChecker.Check(new DequeSpec(), history).IsLinearizable);
    }

    [Fact]
    public void Spec_AcceptsRetryAnywhereButEmptyOnlyWhenEmpty()
    {
        var retry = new List<Operation<DequeInput, DequeOutput>>
        {
            new(1, new DequeInput(DequeOpKind.Push, 1), DequeOutput.Pushed, 0, 1),
            new(2, new DequeInput(DequeOpKind.Steal), DequeOutput.Retry, 2, 3),
        };
        Assert.True(LinearizabilityChecker.Check(new DequeSpec(), retry).IsLinearizable);
        var empty = new List<Operation<DequeInput, DequeOutput>>
        {
            new(1, new DequeInput(DequeOpKind.Push, 1), DequeOutput.Pushed, 0, 1),
            new(2, new DequeInput(DequeOpKind.Steal), DequeOutput.Empty, 2, 3),
        };
        Assert.False(LinearizabilityChecker.Check(new DequeSpec(), empty).IsLinearizable);
    }

    [Fact]
    public void Spec_PopIsLifoAndStealIsFifo()
    {
        var history = new List<Operation<DequeInput, DequeOutput>>
        {
            new(1, new DequeInput(DequeOpKind.Push, 1), DequeOutput.Pushed, 0, 1),
            new(1, new DequeInput(DequeOpKind.Push, 2), DequeOutput.Pushed, 2, 3),
            new(2, new DequeInput(DequeOpKind.Steal), DequeOutput.Item(2), 4, 5),
        };
        Assert.False(LinearizabilityChecker.Check(new DequeSpec(), history).IsLinearizable);
        history[2] = new(1, new DequeInput(DequeOpKind.Pop), DequeOutput.Item(1), 4, 5);
        Assert.False(LinearizabilityChecker.Check(new DequeSpec(), history).IsLinearizable);
    }
}
