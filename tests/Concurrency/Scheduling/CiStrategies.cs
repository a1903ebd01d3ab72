namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>The strategy set the CI explorations use: random walk, PCT at depths 2 and 3, and bounded-preemption search.</summary>
internal static class CiStrategies
{
    /// <summary>Fresh strategies (each is single-use) seeded with <paramref name="seed"/>.</summary>
    public static Func<Strategy>[] Standard(int seed) =>
    [
        () => Strategy.RandomWalk(seed),
        () => Strategy.Pct(seed, depth: 2),
        () => Strategy.Pct(seed, depth: 3),
        () => Strategy.BoundedPreemption(2),
    ];

    /// <summary>The same set, each made from a seed the caller varies (bounded preemption is exhaustive: it ignores the seed).</summary>
    public static readonly Func<int, Strategy>[] Seeded =
    [
        seed => Strategy.RandomWalk(seed),
        seed => Strategy.Pct(seed, depth: 2),
        seed => Strategy.Pct(seed, depth: 3),
        _ => Strategy.BoundedPreemption(2),
    ];
}
