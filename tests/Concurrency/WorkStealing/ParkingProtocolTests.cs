using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// The scheduler's park/unpark protocol as a model (<see cref="ParkingProtocol{TAtomics}"/>) under the controlled
/// scheduler: the real protocol never loses a wake-up and always shuts down, also with a retiring searcher; each
/// planted variant (no re-check after parking, no hand-on when a searcher retires) is found.
/// </summary>
public sealed class ParkingProtocolTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(11);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(2, 2)]
    public void Protocol_NoLostWakeup_EveryItemTakenAndAllExit(int workers, int items)
    {
        foreach (var make in Strategies)
        {
            Strategy strategy = make();
            ExplorationResult result = Explore(strategy, workers, items, ParkingBug.None, storeBuffers: false);
            output.WriteLine($"{strategy.Name}: {result.Iterations} schedules, {result.TotalSteps} steps, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public void Protocol_WithARetiringSearcher_NoLostWakeup()
    {
        foreach (var make in Strategies)
        {
            Explore(make(), 2, 1, ParkingBug.None, storeBuffers: false, retireLast: true);
        }
    }

    [Fact]
    public void PlantedNoHandOffOnRetire_IsFoundAsDeadlock() =>
        // Random walk is left out: the losing schedule needs one worker to run about a dozen steps (search, park,
        // re-check, wait) while the other two threads stand still, which a uniform walk almost never does; the
        // priority-based and the exhaustive strategies find it.
        AllStrategiesFind(ParkingBug.NoHandOffOnRetire, storeBuffers: false, workers: 2, retireLast: true, skipRandomWalk: true);

    [Fact]
    public void Protocol_WithStoreBuffers_NoLostWakeup()
    {
        foreach (var make in Strategies)
        {
            Explore(make(), 1, 1, ParkingBug.None, storeBuffers: true);
        }
    }

    [Fact]
    public void PlantedNoRecheckAfterPark_IsFoundAsDeadlock() =>
        AllStrategiesFind(ParkingBug.NoRecheckAfterPark, storeBuffers: false);

    private static ExplorationResult Explore(Strategy strategy, int workers, int items, ParkingBug bug, bool storeBuffers, bool retireLast = false)
    {
        var threads = new List<Action<ParkingProtocol<TestAtomics>>> { p => p.Producer() };
        for (int i = 0; i < workers; i++)
        {
            int me = i;
            threads.Add(p => p.Worker(me));
        }

        return ControlledTest.Explore(
            strategy,
            Budget,
            () => new ParkingProtocol<TestAtomics>(workers, items, bug, retireLast),
            threads,
            p =>
            {
                if (p.Taken != items || p.State != 0)
                {
                    throw new InvalidOperationException($"taken {p.Taken} of {items}, idle state {p.State:X}");
                }
            },
            new ExploreOptions { StoreBuffers = storeBuffers, Name = $"parking {workers}w {items} items {bug}{(retireLast ? " retire" : string.Empty)}" });
    }

    private void AllStrategiesFind(ParkingBug bug, bool storeBuffers, int workers = 1, bool retireLast = false, bool skipRandomWalk = false)
    {
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(
            skipRandomWalk ? Strategies[1..] : Strategies, strategy => Explore(strategy, workers, 1, bug, storeBuffers, retireLast));
        output.WriteLine(found[0].Failure.Message);
        output.WriteLine($"{bug}: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }
}
