using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;
using static LockFree.Tests.Concurrency.Linearizability.QueueOpKind;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// The catch-up pause of SequencedRing's single side (MPSC's consumer, SPMC's producer; see "Catch-up pause" in its
/// design note) under the controlled scheduler: scenarios in which the single side catches up with the other side
/// several times (each catch-up is a Pause scheduling point, where the other threads may run), checked for exactly-once,
/// FIFO, exactness and linearizability; and the planted twin, a test-only MPSC ring whose consumer trusts its pause and
/// answers empty without reading the tail, which every strategy must catch.
/// </summary>
public sealed class CatchUpPauseScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy per scenario (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 1000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(41);

    [Theory]
    [InlineData(QueueKind.Mpsc, 2)]
    [InlineData(QueueKind.Mpsc, 4)]
    [InlineData(QueueKind.Spmc, 1)]
    [InlineData(QueueKind.Spmc, 2)]
    [InlineData(QueueKind.MpscPrimed, 2)]
    [InlineData(QueueKind.SpmcPrimed, 2)]
    public void CatchUpScenario_RealEngine_PassesAllChecks(QueueKind kind, int capacity)
    {
        var scenario = new QueueScenario(kind, capacity, CatchUpPrograms(kind));
        long schedules = 0;
        foreach (var make in Strategies)
        {
            ExplorationResult r = scenario.Explore(make(), ExplorationBudget.Schedules(PerStrategy));
            schedules += r.Iterations;
            output.WriteLine($"{scenario}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps");
        }

        Assert.True(schedules > 0);
    }

    [Fact]
    public void TrustCatchUpPause_IsFoundByExactnessOrLinearizability()
    {
        // Nothing is lost or reordered: an "empty" answered while a later producer's item had already been published is
        // seen only by the exactness check or the linearizability checker (both report QueueCheckException).
        var found = new List<string>();
        foreach (var make in Strategies)
        {
            Strategy strategy = make();
            var scenario = new QueueScenario(QueueKind.PlantedTrustCatchUpPause, 2, CatchUpPrograms(QueueKind.PlantedTrustCatchUpPause));
            var failure = Assert.Throws<ScheduleFailureException>(() => scenario.Explore(strategy, PerStrategy));
            Assert.IsType<QueueCheckException>(failure.InnerException);
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1}");
            if (found.Count == 1)
            {
                output.WriteLine(failure.Message);
            }
        }

        output.WriteLine("trusted catch-up pause: found by " + string.Join("; ", found));
    }

    [Fact]
    public void CatchUpRingControl_WithoutThePlantedBug_Passes()
    {
        var scenario = new QueueScenario(QueueKind.CatchUpRing, 2, CatchUpPrograms(QueueKind.CatchUpRing));
        foreach (var make in Strategies)
        {
            scenario.Explore(make(), PerStrategy);
        }
    }

    /// <summary>
    /// MPSC: two producers, one consumer that keeps catching up with them (more dequeues than items, so it meets
    /// empty slots while producers are between claim and publish). SPMC at capacity 1-2: a producer with more items
    /// than room, so it meets full slots while consumers are between claim and release.
    /// </summary>
    private static IReadOnlyList<QueueOp[]> CatchUpPrograms(QueueKind kind) => kind switch
    {
        QueueKind.Mpsc or QueueKind.MpscPrimed or QueueKind.CatchUpRing or QueueKind.PlantedTrustCatchUpPause =>
        [
            [new(Enqueue), new(Enqueue)],
            [new(Enqueue), new(Enqueue)],
            [new(Dequeue), new(Dequeue), new(Peek), new(Dequeue), new(Dequeue), new(Dequeue)],
        ],
        QueueKind.Spmc or QueueKind.SpmcPrimed =>
        [
            [new(Enqueue), new(Enqueue), new(Enqueue), new(EnqueueMany, 2)],
            [new(Dequeue), new(Dequeue)],
            [new(Dequeue), new(DequeueMany, 2)],
        ],
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
