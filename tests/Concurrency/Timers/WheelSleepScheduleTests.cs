using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// The timer wheel's sleep handshake (fence-free lane push vs the driver's Stale CAS + process-wide barrier + rescan)
/// under the controlled scheduler, with and without store buffers: the real protocol never loses a wake-up; the
/// planted twins (no rescan; the barrier dropped) are found, the second only with store buffers.
/// </summary>
public sealed class WheelSleepScheduleTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies =
    [
        () => Strategy.RandomWalk(17),
        () => Strategy.Pct(17, depth: 2),
        () => Strategy.BoundedPreemption(2),
    ];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Correct_NeverLosesTheWakeup(bool storeBuffers)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), WheelSleepVariant.Correct, storeBuffers, PlantedBug.None);
            output.WriteLine(result.ToString());
        }
    }

    [Fact]
    public void NoRescan_IsFound() => AllFind(WheelSleepVariant.NoRescan, storeBuffers: false, PlantedBug.None);

    [Fact]
    public void DroppedProcessWideBarrier_IsFoundWithStoreBuffers() => AllFind(WheelSleepVariant.Correct, storeBuffers: true, PlantedBug.DroppedProcessWideBarrier);

    [Fact]
    public void DroppedProcessWideBarrier_IsInvisibleWithoutStoreBuffers()
    {
        // The blind spot of sequentially consistent exploration: only the store-buffer simulation sees it.
        foreach (Func<Strategy> make in Strategies)
        {
            Explore(make(), WheelSleepVariant.Correct, storeBuffers: false, PlantedBug.DroppedProcessWideBarrier);
        }
    }

    private static ExplorationResult Explore(Strategy strategy, WheelSleepVariant variant, bool storeBuffers, PlantedBug bugs) =>
        ControlledTest.Explore(
            strategy,
            Budget,
            () =>
            {
                var protocol = new WheelSleepProtocol<TestAtomics>(variant);
                protocol.Setup();
                return protocol;
            },
            [p => p.Scheduler(), p => p.Driver()],
            p => p.Check(),
            new ExploreOptions { StoreBuffers = storeBuffers, StoreBufferDrainOdds = 4, Bugs = bugs, Name = $"wheel sleep ({variant}, {bugs})" });

    private void AllFind(WheelSleepVariant variant, bool storeBuffers, PlantedBug bugs)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(strategy, variant, storeBuffers, bugs));
            Assert.IsType<InvalidOperationException>(failure.InnerException);
            output.WriteLine($"{variant}/{bugs}: {strategy.Name} found it at schedule {failure.Iteration + 1}");
        }
    }
}
