using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The reserve's bound across the clock's wrap (helper s10-thr, 2026-11-23): a timestamp is a counter that may start
/// anywhere and pass <see cref="long.MaxValue"/>; only differences mean anything. Before, the reserve compared raw
/// timestamps with Math.Max: in the second in which the clock passed long.MaxValue every retry was granted.
/// </summary>
public sealed class RetryBudgetClockWrapTests
{
    private const int PerSecond = 10;
    private static readonly long Second = TimeSpan.TicksPerSecond;

    [Theory]
    [InlineData(long.MaxValue - (3 * TimeSpan.TicksPerSecond / 2))] // wraps 1.5 s in
    [InlineData(long.MaxValue - (TimeSpan.TicksPerSecond / 2))]     // wraps inside the first burst's second
    [InlineData(long.MaxValue)]                                     // wraps at the first tick
    [InlineData(-(3 * TimeSpan.TicksPerSecond / 2))]                // negative, passes 0 1.5 s in
    [InlineData(long.MinValue)]                                     // the most negative reading
    public void TryAcquireRetry_ClockStartsAnywhere_GrantsExactlyAsFromAnOrdinaryStart(long start)
    {
        int[] ordinary = GrantsPerStep(new ManualTimeProvider());
        int[] shifted = GrantsPerStep(new ManualTimeProvider(start));

        Assert.Equal(ordinary, shifted); // before: up to the cap of asks in every step of the wrap's second
        Assert.True(ordinary.Sum() <= PerSecond * (4 + 1), $"granted {ordinary.Sum()} in 4 s"); // the documented bound: rate x (T + 1 s)
        Assert.Equal(PerSecond, ordinary[0]); // the first burst: one second's worth at once
    }

    [Fact]
    public void TryAcquireRetry_InTheSecondThatWraps_ReserveStaysBounded()
    {
        var clock = new ManualTimeProvider(long.MaxValue - (Second / 2));
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0, MaxBurst = 0, MinRetriesPerSecond = PerSecond, TimeProvider = clock });
        int granted = 0;
        for (int step = 0; step < 100; step++) // 1 s in 10 ms steps, straddling the wrap; 100 asks a step
        {
            clock.Advance(TimeSpan.FromMilliseconds(10));
            for (int ask = 0; ask < 100; ask++)
            {
                granted += budget.TryAcquireRetry() ? 1 : 0;
            }
        }

        // The burst (10) plus at most one a tenth of a second: 20 at most in the second. Before: 50 x 100 asks granted
        // in the half-second after the wrap, about 5,000.
        Assert.InRange(granted, PerSecond, 2 * PerSecond);
    }

    /// <summary>Asks for retries until refused (at most 1,000 a step), every 10 ms for 4 s; returns the grants per step.</summary>
    private static int[] GrantsPerStep(ManualTimeProvider clock)
    {
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0, MaxBurst = 0, MinRetriesPerSecond = PerSecond, TimeProvider = clock });
        var grants = new int[401];
        for (int step = 0; step < grants.Length; step++)
        {
            while (grants[step] < 1_000 && budget.TryAcquireRetry())
            {
                grants[step]++;
            }

            clock.Advance(TimeSpan.FromMilliseconds(10));
        }

        return grants;
    }
}
