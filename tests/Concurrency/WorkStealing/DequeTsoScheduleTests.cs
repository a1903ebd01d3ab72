using LockFree.Tests.Concurrency.Scheduling;
using Xunit;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// The real Chase-Lev engine (<see cref="DequeKind.Real"/>) under x86-TSO (session 20): every deque scenario explored with
/// store buffers, each schedule in a no-GC region, so the owner's buffered bottom store meets the thieves' loads as on
/// hardware, and the engine's full fence in <c>Pop</c> is what keeps the last element from being taken twice. Before,
/// only the pinned test copy (<c>PlantedDeque</c>) ran under the simulation.
/// </summary>
[Collection(StillObjectsCollection.Name)]
public sealed class DequeTsoScheduleTests
{
    private const int Budget = 250;

    public static TheoryData<string> Scenarios() =>
        ["last element", "growth during steals", "position wrap", "batch vs pops", "two batch thieves", "slot reuse", "pop against two steals"];

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void RealDeque_UnderTso_PassesEveryCheck(string name)
    {
        DequeScenario scenario = name switch
        {
            "last element" => DequeScenarios.LastElement(DequeKind.Real),
            "growth during steals" => DequeScenarios.GrowthDuringSteals(DequeKind.Real),
            "position wrap" => DequeScenarios.PositionWrap(DequeKind.Real),
            "batch vs pops" => DequeScenarios.BatchVsPops(DequeKind.Real),
            "two batch thieves" => DequeScenarios.TwoBatchThieves(DequeKind.Real),
            "slot reuse" => DequeScenarios.SlotReuse(DequeKind.Real),
            _ => DequeScenarios.PopAgainstTwoSteals(DequeKind.Real),
        };

        foreach (Func<Strategy> make in CiStrategies.Standard(6400 + name.Length))
        {
            scenario.Explore(make(), ExplorationBudget.Schedules(Budget), new ExploreOptions { Name = "real deque under TSO: " + name }.WithTso());
        }
    }

    [Fact]
    public void RealDeque_WithoutItsPopFence_IsFoundUnderTsoOnly()
    {
        // PlantedBug.DroppedFullFence removes the real engine's fence between the owner's bottom store and its top load
        // in Pop. The owner's buffered "bottom = 1" then lets a thief take item 1 too, which the owner pops without a CAS:
        // taken twice (or the thief reads the slot the owner cleared). Session 20's run, drain odds 1/8: RandomWalk 180,
        // PCT d2 331, PCT d3 24, bounded preemption 2 (it never picks a drain). At odds 1/2 random walk and PCT d2 missed
        // it within 10,000 and PCT d3 needed 9,276.
        var found = new List<string>();
        foreach (Func<Strategy> make in CiStrategies.Standard(6500))
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => DequeScenarios.PopAgainstTwoSteals(DequeKind.Real).Explore(
                strategy, 1000, new ExploreOptions { StoreBufferDrainOdds = 8, Bugs = PlantedBug.DroppedFullFence, Name = "real deque without its pop fence" }.WithTso()));
            Assert.IsType<DequeCheckException>(failure.InnerException);
            found.Add($"{strategy.Name}: {failure.Iteration + 1}");
        }

        // The control: sequentially consistent exploration cannot see it.
        DequeScenarios.PopAgainstTwoSteals(DequeKind.Real).Explore(Strategy.RandomWalk(6501), 1000, new ExploreOptions { Bugs = PlantedBug.DroppedFullFence });
        Assert.Equal(4, found.Count);
    }
}
