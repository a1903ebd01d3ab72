using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using static LockFree.Tests.Concurrency.Linearizability.QueueOpKind;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>The fixed scenarios each queue kind is explored with (2-3 threads, roles as the kind allows).</summary>
public static class QueueScenarios
{
    /// <summary>Capacities explored: 1 (every operation wraps), 2 and 4.</summary>
    public static readonly int[] Capacities = [1, 2, 4];

    private static QueueOp Op(QueueOpKind kind, int count = 1) => new(kind, count);

    /// <summary>The thread programs for <paramref name="kind"/>.</summary>
    public static IReadOnlyList<QueueOp[]> Programs(QueueKind kind) => kind switch
    {
        QueueKind.Spsc or QueueKind.SpscEagerBound or QueueKind.SpscEagerPause or QueueKind.TestRing or QueueKind.PlantedOffByOne
            or QueueKind.PlantedSpuriousEmpty or QueueKind.RunRing or QueueKind.PlantedBoundGoesDown or QueueKind.PlantedRunEndOffByOne
            or QueueKind.PlantedFrontToBackRuns or QueueKind.PlantedRunBoundPastTail =>
        [
            [Op(Enqueue), Op(Enqueue), Op(EnqueueMany, 2), Op(Enqueue)],
            [Op(Dequeue), Op(Peek), Op(Dequeue), Op(DequeueMany, 2), Op(Dequeue)],
        ],
        QueueKind.Mpsc or QueueKind.CatchUpRing or QueueKind.PlantedTrustCatchUpPause =>
        [
            [Op(Enqueue), Op(EnqueueMany, 2)],
            [Op(Enqueue), Op(Enqueue)],
            [Op(Dequeue), Op(Peek), Op(DequeueMany, 2), Op(Dequeue)],
        ],
        QueueKind.Spmc =>
        [
            [Op(Enqueue), Op(EnqueueMany, 2), Op(Enqueue)],
            [Op(Dequeue), Op(DequeueMany, 2)],
            [Op(Dequeue), Op(Dequeue)],
        ],
        QueueKind.Mpmc =>
        [
            [Op(Enqueue), Op(Dequeue), Op(EnqueueMany, 2)],
            [Op(Enqueue), Op(Enqueue), Op(DequeueMany, 2)],
            [Op(Dequeue), Op(DequeueMany, 2), Op(Dequeue)],
        ],
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>One scenario per capacity for <paramref name="kind"/>.</summary>
    /// <summary>One scenario per capacity for <paramref name="kind"/>, plus one that starts full at capacity 2 (the init part fills it).</summary>
    public static IEnumerable<QueueScenario> For(QueueKind kind) =>
        Capacities.Select(c => new QueueScenario(kind, c, Programs(kind))).Append(new QueueScenario(kind, 2, Programs(kind), prefill: 2));

    /// <summary>
    /// The CI exploration plan for one scenario: (strategy, schedules). Random walk and PCT (depth 2 and 3) with
    /// fixed seeds, then the bounded-preemption search with 2 and with 3 preemptions, each up to its budget
    /// (small SPSC scenarios exhaust both bounds: every schedule with at most that many preemptions is run).
    /// </summary>
    public static IEnumerable<(Strategy Strategy, int Schedules)> Plan(long seed, int perStrategy) =>
    [
        (Strategy.RandomWalk(seed), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.Pct(seed + 1, depth: 2), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.Pct(seed + 2, depth: 3), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.BoundedPreemption(2), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.BoundedPreemption(3), ExplorationBudget.Schedules(perStrategy)),
    ];
}
