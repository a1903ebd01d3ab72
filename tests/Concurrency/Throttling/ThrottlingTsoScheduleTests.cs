using LockFree.Tests.Concurrency.Composed;
using LockFree.Tests.Concurrency.Retry;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Throttling;

/// <summary>
/// The lock-free counting cores under x86-TSO (session 20): the token bucket's core (<see cref="TokenBucketScheduleTests"/>'
/// scenarios: never more admitted than the bound), the keyed limiter's eviction racing batch takes
/// (<see cref="KeyedEvictionScheduleTests"/>) and the retry budget (<see cref="RetryBudgetScheduleTests"/>: exact
/// accounting), each explored with store buffers, each schedule in a no-GC region, with the same checks.
/// </summary>
[Collection(StillObjectsCollection.Name)]
public sealed class ThrottlingTsoScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 100;

    [Theory]
    [MemberData(nameof(TokenBucketScheduleTests.Names), MemberType = typeof(TokenBucketScheduleTests))]
    public void TokenBucketCore_UnderTso_NeverExceedsTheBound(string name) =>
        Run(name, 7100, (strategy, budget) => TokenBucketScheduleTests.Explore(TokenBucketScheduleTests.Get(name), strategy, budget, Tso(name)));

    [Theory]
    [MemberData(nameof(RetryBudgetScheduleTests.Names), MemberType = typeof(RetryBudgetScheduleTests))]
    public void RetryBudget_UnderTso_AccountingExact(string name) =>
        Run(name, 7200, (strategy, budget) => RetryBudgetScheduleTests.Explore(RetryBudgetScheduleTests.Get(name), strategy, budget, Tso(name)));

    [Fact]
    public void KeyedEviction_UnderTso_NeverExceedsTheBound() =>
        Run("keyed eviction", 7300, (strategy, budget) => KeyedEvictionScheduleTests.Explore(strategy, budget, Tso("keyed eviction"), planted: false));

    private static ExploreOptions Tso(string name) => new ExploreOptions { Name = name + " (TSO)" }.WithTso();

    private void Run(string name, int seed, Func<Strategy, int, ExplorationResult> explore) =>
        Assert.True(ComposedRuns.ExploreStandard(output.WriteLine, name, seed + name.Length, ExplorationBudget.Schedules(PerStrategy), explore) >= 4, name);
}
