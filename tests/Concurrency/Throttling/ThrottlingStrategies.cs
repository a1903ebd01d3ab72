using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.Throttling;

/// <summary>The strategies the throttling primitives are explored with: random walk, PCT depth 2 and 3, two-preemption search.</summary>
internal static class ThrottlingStrategies
{
    /// <summary>Schedules per strategy per scenario in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    public const int PerStrategy = 500;

    public static Func<Strategy>[] All(int seed) => CiStrategies.Standard(seed);
}
