using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// The other composed types under x86-TSO, as <see cref="BufferStoreBufferScheduleTests"/> runs the buffer: the
/// <c>Channel&lt;T&gt;</c> adapter, the delay queue, the ack queue and the retry policy, each scenario of their
/// sequentially consistent classes explored with store buffers, each schedule in a no-GC region, with the same checks.
/// </summary>
[Collection(StillObjectsCollection.Name)]
public sealed class ComposedTsoScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 60;

    [Theory]
    [MemberData(nameof(ChannelScheduleTests.Scenarios), MemberType = typeof(ChannelScheduleTests))]
    public void Explore_ChannelAdapterUnderTso(string name) =>
        Run(name, 4100, (strategy, budget) => ChannelScheduleTests.Explore(strategy, "TSO: " + name, ChannelScheduleTests.All[name], PlantedFault.None, budget, storeBuffers: true));

    [Theory]
    [MemberData(nameof(DelayQueueScheduleTests.Scenarios), MemberType = typeof(DelayQueueScheduleTests))]
    public void Explore_DelayQueueUnderTso(string name) =>
        Run(name, 4200, (strategy, budget) => DelayQueueScheduleTests.Explore(strategy, "TSO: " + name, DelayQueueScheduleTests.All[name], PlantedFault.None, budget, storeBuffers: true));

    [Theory]
    [MemberData(nameof(AckQueueScheduleTests.Scenarios), MemberType = typeof(AckQueueScheduleTests))]
    public void Explore_AckQueueUnderTso(string name) =>
        Run(name, 4300, (strategy, budget) => AckQueueScheduleTests.Explore(strategy, "TSO: " + name, AckQueueScheduleTests.All[name], PlantedFault.None, budget, storeBuffers: true));

    [Theory]
    [MemberData(nameof(RetryPolicyScheduleTests.Scenarios), MemberType = typeof(RetryPolicyScheduleTests))]
    public void Explore_RetryPolicyUnderTso(string name) =>
        Run(name, 4400, (strategy, budget) => RetryPolicyScheduleTests.Explore(strategy, "TSO: " + name, RetryPolicyScheduleTests.All[name], PlantedFault.None, budget, storeBuffers: true));

    private void Run(string name, int seed, Func<Strategy, int, ExplorationResult> explore) =>
        Assert.True(ComposedRuns.ExploreStandard(output.WriteLine, name, seed + name.Length, ExplorationBudget.Schedules(PerStrategy), explore) >= 4, name);
}
