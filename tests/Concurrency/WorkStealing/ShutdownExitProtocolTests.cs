using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// The workers' exit rule during Dispose as a model (<see cref="ShutdownExitProtocol{TAtomics}"/>) under the controlled
/// scheduler: with the real rule, work queued by a LongRunning task while the workers are leaving always runs on a
/// worker, and no worker leaves while another holds or runs a task; the rule before the fix (no LongRunning count), a
/// variant reading the count after the last look, and two without the scan announcement (or its shutdown-seen half)
/// are each found.
/// </summary>
public sealed class ShutdownExitProtocolTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(13);

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(2, true)]
    public void ExitRule_LateWorkFromALongRunningTask_AlwaysRunsBeforeTheLastWorkerLeaves(int workers, bool storeBuffers)
    {
        foreach (var make in Strategies)
        {
            Strategy strategy = make();
            ExplorationResult result = Explore(strategy, workers, ShutdownExitBug.None, storeBuffers);
            output.WriteLine($"{strategy.Name}: {result.Iterations} schedules, {result.TotalSteps} steps, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    // CountReadAfterLastLook on one worker: with two, both must look before the enqueue and read the count after the
    // decrement, which a uniform random walk rarely produces within the budget; one worker shows the same window.
    [Theory]
    [InlineData(ShutdownExitBug.NoLongRunningCheck, 2)]
    [InlineData(ShutdownExitBug.CountReadAfterLastLook, 1)]
    [InlineData(ShutdownExitBug.NoScanAnnouncement, 2)]
    [InlineData(ShutdownExitBug.NoShutdownSeenCheck, 2)]
    public void PlantedExitRule_IsFoundAsLostWork(ShutdownExitBug bug, int workers)
    {
        var found = ScenarioRunner.AssertEachFinds<InvalidOperationException>(Strategies, strategy => Explore(strategy, workers, bug, storeBuffers: false));
        output.WriteLine(found[0].Failure.Message);
        output.WriteLine($"{bug}: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    private static ExplorationResult Explore(Strategy strategy, int workers, ShutdownExitBug bug, bool storeBuffers)
    {
        var threads = new List<Action<ShutdownExitProtocol<TestAtomics>>> { p => p.LongRunningTask() };
        for (int i = 0; i < workers; i++)
        {
            int me = i;
            threads.Add(p => p.Worker(me));
        }

        return ControlledTest.Explore(
            strategy,
            Budget,
            () => new ShutdownExitProtocol<TestAtomics>(workers, bug),
            threads,
            p =>
            {
                if (p.Ran != 2 || p.Queued != 2 || p.Live != 0)
                {
                    throw new InvalidOperationException($"ran {p.Ran} of {p.Queued} queued tasks, {p.Live} workers left: work was left queued after the last worker left");
                }
            },
            new ExploreOptions { StoreBuffers = storeBuffers, Name = $"shutdown exit {workers}w {bug}" });
    }
}
