using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;
using static LockFree.Tests.Concurrency.Linearizability.QueueOpKind;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// SpscRing's run-borne readiness and its batch paths (session 5; see the design comment in SpscRing.cs) under the
/// controlled scheduler: a batch is one run published by its first slot's sequence (the run's end), the consumer's bound
/// rises to a run's end and never goes down, and the batch dequeue reads tail, and pauses when it streams close behind
/// the producer, at a bound read. Scenarios on the real engine (default tuning, eager bound reads, eager pauses) are
/// checked for exactly-once, FIFO, exactness and linearizability; the same scenarios must find the planted twins of
/// PlantedBugs/PlantedRunRing.cs (a bound that goes down; a sequence equal to the position taken as published; a batch
/// published as runs of one, front to back; a bound raised past the tail) and pass on its control.
/// </summary>
public sealed class RunSequenceScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy per scenario (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 1000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(53);

    [Theory]
    [InlineData(QueueKind.Spsc)]
    [InlineData(QueueKind.SpscEagerBound)]
    [InlineData(QueueKind.SpscEagerPause)]
    [InlineData(QueueKind.RunRing)]
    public void RunScenarios_CorrectRings_PassAllChecks(QueueKind kind)
    {
        long schedules = 0;
        foreach (QueueScenario scenario in Scenarios(kind))
        {
            foreach (var make in Strategies)
            {
                ExplorationResult r = scenario.Explore(make(), ExplorationBudget.Schedules(PerStrategy));
                schedules += r.Iterations;
                output.WriteLine($"{scenario}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps");
            }
        }

        Assert.True(schedules > 0);
    }

    [Fact]
    public void BoundGoesDown_IsFoundByExactnessOrLinearizability() =>
        // Nothing is lost or reordered: the consumer answers empty inside a published run.
        AllStrategiesFind("bound lowered below a run's end", QueueKind.PlantedBoundGoesDown, typeof(QueueCheckException), null);

    [Fact]
    public void RunEndOffByOne_IsFound() =>
        // The consumer takes a slot the producer has not written: a plain read racing its plain write, or a bad item.
        AllStrategiesFind("sequence equal to the position taken as published", QueueKind.PlantedRunEndOffByOne, typeof(DataRaceException), typeof(QueueCheckException));

    [Fact]
    public void FrontToBackRuns_IsFoundByExactnessOrLinearizability() =>
        // Nothing is lost or reordered: a consumer takes the batch's first item and then sees an empty queue. The window is
        // a few steps wide (between two sequence stores); the batch-polling scenario polls in a loop while one batch goes in.
        AllStrategiesFind("batch published as runs of one, front to back", QueueKind.PlantedFrontToBackRuns, typeof(QueueCheckException), null);

    [Fact]
    public void BoundPastTail_IsFound() =>
        // The consumer takes the slot at tail, which the producer has not written: a plain read racing its plain write.
        AllStrategiesFind("bound raised one past the tail read", QueueKind.PlantedRunBoundPastTail, typeof(DataRaceException), typeof(QueueCheckException));

    [Fact]
    public void BoundPastTail_IsFoundByQueueChecksAlone() =>
        // Race detection off: the exactly-once / FIFO checks see the unwritten item on their own.
        AllStrategiesFind("bound raised one past the tail read (queue checks)", QueueKind.PlantedRunBoundPastTail, typeof(QueueCheckException), null, new ExploreOptions { DetectRaces = false });

    /// <summary>
    /// Batch polling (one run of four into a queue of four while the consumer polls eight single dequeues: the window
    /// between the run's sequence store and the tail store), batches on both sides at capacity 4 (bound reads, runs read
    /// beyond the bound, pauses), and a run that wraps the ring after a first lap at capacity 2.
    /// </summary>
    private static IEnumerable<QueueScenario> Scenarios(QueueKind kind) =>
    [
        new(kind, 4, [[new(EnqueueMany, 4)], [.. Enumerable.Repeat(new QueueOp(Dequeue), 8)]]),
        new(kind, 4, [[new(EnqueueMany, 2), new(Enqueue), new(EnqueueMany, 3)], [new(Dequeue), new(DequeueMany, 2), new(DequeueMany, 4), new(Peek), new(DequeueMany, 2)]]),
        new(kind, 2, [[new(EnqueueMany, 2), new(EnqueueMany, 2), new(Enqueue)], [new(DequeueMany, 2), new(Dequeue), new(DequeueMany, 2), new(Dequeue)]]),
    ];

    private void AllStrategiesFind(string bug, QueueKind kind, Type expected, Type? alsoAccepted, ExploreOptions? options = null)
    {
        var found = new List<string>();
        foreach (var make in Strategies)
        {
            Strategy strategy = make();
            ScheduleFailureException? failure = null;
            foreach (QueueScenario scenario in Scenarios(kind))
            {
                try
                {
                    scenario.Explore(strategy, ExplorationBudget.Schedules(PerStrategy), options);
                }
                catch (ScheduleFailureException e)
                {
                    failure = e;
                    break;
                }

                strategy = make(); // a fresh strategy for the next scenario
            }

            Assert.True(failure is not null, $"{bug}: {strategy.Name} did not find it");
            Type actual = failure!.InnerException!.GetType();
            Assert.True(actual == expected || actual == alsoAccepted, $"{bug}: {strategy.Name} failed with {actual.Name}:\n{failure.Message}");
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1}");
            if (found.Count == 1)
            {
                output.WriteLine(failure.Message);
            }
        }

        output.WriteLine($"{bug}: found by " + string.Join("; ", found));
    }
}
