using LockFree.Tests.Concurrency.Scheduling;
using static LockFree.Tests.Concurrency.WorkStealing.DequeStep;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>The deque scenarios explored in CI, for the real engine and the planted variants alike.</summary>
public static class DequeScenarios
{
    /// <summary>The owner and two thieves race for the last item.</summary>
    public static DequeScenario LastElement(DequeKind kind) =>
        new(kind, 1, [[Pop, Push, Pop], [Steal, Steal], [Steal]], prefill: 1);

    /// <summary>Pushes that grow a capacity-1 buffer twice while two thieves steal (growth during steals).</summary>
    public static DequeScenario GrowthDuringSteals(DequeKind kind) =>
        new(kind, 1, [[Push, Push, Push, Pop], [Steal, Steal], [Steal]], prefill: 1);

    /// <summary>Positions start just below long.MaxValue and wrap past it while the buffer wraps and grows.</summary>
    public static DequeScenario PositionWrap(DequeKind kind) =>
        new(kind, 2, [[Push, Pop, Push, Push, Pop], [Steal, Steal]], prefill: 1, start: long.MaxValue - 1);

    /// <summary>Batch steals against owner pops (the owner pops above top without touching it).</summary>
    public static DequeScenario BatchVsPops(DequeKind kind) =>
        new(kind, 4, [[Pop, Pop, Pop, Push, Pop], [StealBatch, Steal]], prefill: 4);

    /// <summary>A batch steal and a batch-and-pop racing each other and the owner.</summary>
    public static DequeScenario TwoBatchThieves(DequeKind kind) =>
        new(kind, 4, [[Pop, Push], [StealBatch], [StealBatchAndPop]], prefill: 4);

    /// <summary>A thief rereads a slot the owner reuses: small buffer, steals and pushes wrap around it.</summary>
    public static DequeScenario SlotReuse(DequeKind kind) =>
        new(kind, 2, [[Pop, Push, Push, Pop, Push], [Steal, Steal]], prefill: 2);

    /// <summary>The owner pops the second of two items while a thief takes both in turn: the store-load window of TryPop's fence.</summary>
    public static DequeScenario PopAgainstTwoSteals(DequeKind kind) =>
        new(kind, 2, [[Pop], [Steal, Steal]], prefill: 2);

    public static IEnumerable<DequeScenario> All(DequeKind kind) =>
    [
        LastElement(kind),
        GrowthDuringSteals(kind),
        PositionWrap(kind),
        BatchVsPops(kind),
        TwoBatchThieves(kind),
        SlotReuse(kind),
    ];

    public static IEnumerable<(Strategy Strategy, int Schedules)> Plan(long seed, int perStrategy) =>
    [
        (Strategy.RandomWalk(seed), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.Pct(seed + 1, depth: 2), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.Pct(seed + 2, depth: 3), ExplorationBudget.Schedules(perStrategy)),
        (Strategy.BoundedPreemption(2), ExplorationBudget.Schedules(perStrategy)),
    ];
}
