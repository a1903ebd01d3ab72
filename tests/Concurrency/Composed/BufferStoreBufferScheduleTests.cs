using System.Text.RegularExpressions;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// The composed back-pressure buffer (<see cref="BufferScheduleTests"/>'s scenarios) explored under x86-TSO: every int and
/// long store of the buffer, its engines, waiter lists, gates and marks waits in its thread's store buffer until a fence,
/// a locked instruction or the strategy drains it (<see cref="StoreBuffers"/>), so a missing full fence between a store
/// and a later load shows (a lost wake-up, a lost or duplicated item). Each schedule runs in a no-GC region
/// (<see cref="ExploreOptions.HoldObjectsStill"/>), so the library's ordinary objects do not move under a buffered store.
/// </summary>
[Collection(StillObjectsCollection.Name)]
public sealed class BufferStoreBufferScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 100;

    /// <summary>Planted-fence runs: a buffered store drains with probability 1/8 per scheduling point, so it can outlast the other side's registration and recheck.</summary>
    private const int DrainOdds = 8;

    [Theory]
    [MemberData(nameof(BufferScheduleTests.Scenarios), MemberType = typeof(BufferScheduleTests))]
    public void Explore_RealBufferUnderTso_NoLostWakeupEveryItemOnceLinearizable(string name)
    {
        BufferScheduleTests.Scenario scenario = BufferScheduleTests.All[name];
        long schedules = ComposedRuns.ExploreStandard(
            output.WriteLine,
            name,
            3600 + name.Length,
            ExplorationBudget.Schedules(PerStrategy),
            (strategy, budget) => BufferScheduleTests.Explore(strategy, "TSO: " + name, scenario, PlantedFault.None, budget, storeBuffers: true));
        Assert.True(schedules >= 4, name);
    }

    [Theory]
    [InlineData(PlantedBug.DroppedFullFence, "spsc wait cap 1: write-async x3 | read-async x3")]
    [InlineData(PlantedBug.DroppedFullFence, "spsc wait cap 1: wait-to-write x3 | read x3")]
    [InlineData(PlantedBug.DroppedProcessWideBarrier, "spsc wait cap 1: try-write x3 | read x1")]
    public void Explore_MissingFence_IsFoundUnderTsoOnly(PlantedBug bug, string name)
    {
        // The parking gate's store-load orders in the real buffer: a signaller's fence between its publish and its read of
        // the waiter count (after the first park), and the first park's process-wide barrier. Without one, the publish can
        // sit in the store buffer while the other side parks on a recheck that misses it: a lost wake-up (a deadlock of
        // blocking calls, a livelock of the polling await). Sequentially consistent exploration cannot see it (the control
        // below passes with the bug planted). Session 20's runs: the dropped fence found by RandomWalk at schedule 623
        // (write-async) and PCT depth 2 at 1,136 (wait-to-write); the dropped barrier by PCT depth 3 at 472; the blocking
        // "write x3 | read x3" hid the dropped fence from all four strategies within 3,000 schedules each.
        BufferScheduleTests.Scenario scenario = BufferScheduleTests.All[name];
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            $"{bug} under TSO",
            97,
            PlantedFault.None,
            (strategy, _, budget) => BufferScheduleTests.Explore(strategy, $"planted {bug} under TSO: {name}", scenario, PlantedFault.None, budget, storeBuffers: true, bugs: bug, drainOdds: DrainOdds),
            failure => Assert.True(Regex.IsMatch(failure.Message, "deadlock|livelock|stuck", RegexOptions.IgnoreCase), failure.Message));

        ComposedRuns.ExploreStandard(
            output.WriteLine,
            $"control: {bug} without store buffers",
            97,
            300,
            (strategy, budget) => BufferScheduleTests.Explore(strategy, $"planted {bug}, sequentially consistent: {name}", scenario, PlantedFault.None, budget, bugs: bug));
    }
}
