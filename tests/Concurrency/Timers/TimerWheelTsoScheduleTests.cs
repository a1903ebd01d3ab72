using LockFree.Tests.Concurrency.Composed;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// The real timer wheel engine under x86-TSO (session 20): <see cref="TimerWheelScheduleTests"/>' fire-xor-cancel scenario
/// and <see cref="TimerWheelLaneScheduleTests"/>' lanes (rings of two entries: wrap, inbox fallback, nodes returned through
/// the lanes) explored with store buffers, each schedule in a no-GC region, with the same post-part checks. A lane's slot
/// store and its release of the tail may now still sit in the owner's buffer while the driver drains. Also the wheel's and
/// the delay queue core's linearizability scenarios.
/// </summary>
[Collection(StillObjectsCollection.Name)]
public sealed class TimerWheelTsoScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 150;

    [Fact]
    public void Explore_FireXorCancelUnderTso() =>
        Run("wheel fire-xor-cancel, TSO", 6200, (strategy, budget) => TimerWheelScheduleTests.Explore(strategy, budget, Options("wheel fire-xor-cancel, TSO")));

    [Fact]
    public void Explore_LanesUnderTso() =>
        Run("wheel lanes, TSO", 6300, (strategy, budget) => TimerWheelLaneScheduleTests.Explore(strategy, budget, Options("wheel lanes, TSO"), null));

    [Fact]
    public void Engine_ControlledSchedulesUnderTso_AreLinearizable() =>
        TimerWheelLinearizabilityTests.ExploreAllUnderTso(output.WriteLine, ExplorationBudget.Schedules(60));

    [Fact]
    public void DelayQueueCore_ControlledSchedulesUnderTso_AreLinearizable() =>
        DelayQueueLinearizabilityTests.ExploreAllUnderTso(output.WriteLine, ExplorationBudget.Schedules(100));

    private static ExploreOptions Options(string name) => new ExploreOptions { Name = name }.WithTso();

    private void Run(string name, int seed, Func<Strategy, int, ExplorationResult> explore) =>
        Assert.True(ComposedRuns.ExploreStandard(output.WriteLine, name, seed + name.Length, ExplorationBudget.Schedules(PerStrategy), explore) >= 4, name);
}
