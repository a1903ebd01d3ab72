using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Queues;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.PlantedBugs;

/// <summary>
/// Proof of power: each planted bug must be found within the CI budget by the same strategies the real queues
/// are explored with, and the report says how many schedules it took. The negative controls (the same protocols
/// without the bug) must pass the same budget.
/// </summary>
public sealed class PlantedBugTests(ITestOutputHelper output)
{
    /// <summary>The most schedules a planted bug may need, per strategy (the real queues get 1000 per strategy per scenario).</summary>
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(7);

    [Fact]
    public void SplitCompareExchange_OnMpmc_IsFound() =>
        AllStrategiesFind(
            "split CAS (MPMC)",
            typeof(QueueCheckException),
            typeof(DataRaceException),
            s => Scenario(QueueKind.Mpmc).Explore(s, Budget, new ExploreOptions { Bugs = PlantedBug.SplitCompareExchange }));

    [Theory]
    [InlineData(QueueKind.Spsc)]
    [InlineData(QueueKind.Mpsc)]
    [InlineData(QueueKind.Spmc)]
    [InlineData(QueueKind.Mpmc)]
    public void DroppedRelease_PublishBeforeWrite_IsFoundByRaceDetector(QueueKind kind) =>
        AllStrategiesFind(
            $"dropped release ({kind})",
            typeof(DataRaceException),
            null,
            s => Scenario(kind).Explore(s, Budget, new ExploreOptions { Bugs = PlantedBug.DroppedRelease }));

    [Fact]
    public void OffByOneFullCheck_IsFoundByQueueChecks() =>
        // Race detection off, so the exactly-once / FIFO / capacity checks have to find it on their own.
        AllStrategiesFind(
            "off-by-one full check (queue checks)",
            typeof(QueueCheckException),
            null,
            s => Scenario(QueueKind.PlantedOffByOne).Explore(s, Budget, new ExploreOptions { DetectRaces = false }));

    [Fact]
    public void OffByOneFullCheck_IsAlsoFoundByRaceDetector() =>
        // The extra item overwrites a slot the consumer has not read: an unordered plain write after a plain read.
        AllStrategiesFind(
            "off-by-one full check (race detector)",
            typeof(DataRaceException),
            typeof(QueueCheckException),
            s => Scenario(QueueKind.PlantedOffByOne).Explore(s, Budget));

    [Fact]
    public void SpuriousEmpty_IsFoundByExactnessCheck() =>
        // No item is lost or reordered: only the "no spurious full/empty" check (or linearizability) can see it.
        AllStrategiesFind(
            "spurious empty (exactness check)",
            typeof(QueueCheckException),
            null,
            s => Scenario(QueueKind.PlantedSpuriousEmpty).Explore(s, Budget));

    [Fact]
    public void MissingFullFence_IsFoundWithStoreBuffers() =>
        AllStrategiesFind(
            "missing full fence (Dekker)",
            typeof(InvalidOperationException),
            null,
            s => ExploreDekker(s, withFence: false));

    [Fact]
    public void MissingFullFence_IsInvisibleWithoutStoreBuffers()
    {
        // Documents the blind spot: sequentially consistent exploration (and the race detector) cannot see it.
        foreach (var strategy in Strategies)
        {
            ExploreDekker(strategy(), withFence: false, storeBuffers: false);
        }
    }

    [Fact]
    public void LostWakeup_IsFoundAsDeadlock() =>
        AllStrategiesFind(
            "lost wake-up",
            typeof(DeadlockException),
            null,
            s => ControlledTest.Explore(
                s,
                Budget,
                () => new LostWakeupProtocol<TestAtomics>(planted: true),
                [p => p.Waiter(), p => p.Notifier()],
                p => Assert.True(p.Woke)));

    [Fact]
    public void Controls_WithoutPlantedBugs_Pass()
    {
        foreach (var strategy in Strategies)
        {
            Scenario(QueueKind.TestRing).Explore(strategy(), Budget);
            // The real engine passes what finds the planted batch bug (FrontToBackRuns, RunSequenceScheduleTests).
            BatchPolling(QueueKind.Spsc).Explore(strategy(), Budget);
            BatchPolling(QueueKind.SpscEagerBound).Explore(strategy(), Budget);
        }

        foreach (var strategy in Strategies)
        {
            ExploreDekker(strategy(), withFence: true);
        }

        foreach (var strategy in Strategies)
        {
            ControlledTest.Explore(
                strategy(),
                Budget,
                () => new LostWakeupProtocol<TestAtomics>(planted: false),
                [p => p.Waiter(), p => p.Notifier()],
                p => Assert.True(p.Woke));
        }
    }

    private static QueueScenario Scenario(QueueKind kind) => new(kind, 2, QueueScenarios.Programs(kind));

    /// <summary>One four-item batch into a queue of 4 while the consumer polls eight times: the batch-atomicity scenario.</summary>
    private static QueueScenario BatchPolling(QueueKind kind) =>
        new(kind, 4, [[new(QueueOpKind.EnqueueMany, 4)], [.. Enumerable.Repeat(new QueueOp(QueueOpKind.Dequeue), 8)]]);

    private static ExplorationResult ExploreDekker(Strategy strategy, bool withFence, bool storeBuffers = true) =>
        ControlledTest.Explore(
            strategy,
            Budget,
            () => new FenceProtocol<TestAtomics>(withFence),
            [p => p.Run(0), p => p.Run(1)],
            p =>
            {
                if (p.MaxInside > 1)
                {
                    throw new InvalidOperationException($"mutual exclusion broken: {p.MaxInside} threads in the critical section");
                }
            },
            new ExploreOptions { StoreBuffers = storeBuffers, Name = withFence ? "Dekker with fence" : "Dekker without fence" });

    private void AllStrategiesFind(string bug, Type expected, Type? alsoAccepted, Func<Strategy, ExplorationResult> explore)
    {
        var found = new List<string>();
        foreach (var make in Strategies)
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => explore(strategy));
            Type actual = failure.InnerException!.GetType();
            Assert.True(
                actual == expected || actual == alsoAccepted,
                $"{bug}: {strategy.Name} failed with {actual.Name}, expected {expected.Name}:\n{failure.Message}");
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1}");
            if (found.Count == 1)
            {
                output.WriteLine(failure.Message);
            }
        }

        output.WriteLine($"{bug}: found by " + string.Join("; ", found));
    }
}
