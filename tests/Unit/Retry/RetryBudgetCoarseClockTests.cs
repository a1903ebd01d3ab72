using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The reserve's documented bound (over any interval of length T, at most MinRetriesPerSecond * (T + 1 s) retries
/// from the reserve) on a clock whose frequency is not a multiple of the rate (review, 2026-11-23): before, the
/// interval between reserve retries was rounded down to whole timestamps, so a 1 kHz clock with a rate of 600 per
/// second granted 1,000 per second (and a 1,000 burst); on a 10 MHz clock (Windows' Stopwatch) 300,000 per second
/// became 303,030.
/// </summary>
public sealed class RetryBudgetCoarseClockTests
{
    [Theory]
    [InlineData(1_000, 600)]
    [InlineData(1_000, 7)]
    [InlineData(10_000_000, 300_000)]
    [InlineData(1_000_000_000, 7)]
    [InlineData(1_000, 1_000)]
    [InlineData(1_000, 2_000)] // more retries per second than the clock has timestamps
    public void TryAcquireRetry_AnyClockFrequency_ReserveStaysWithinItsBound(long frequency, int perSecond)
    {
        var clock = new ScaledClock(frequency);
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0, MaxBurst = 0, MinRetriesPerSecond = perSecond, TimeProvider = clock });

        // Ask for a retry at every timestamp for 10 s (and a whole burst's worth at once at the start).
        const int Seconds = 10;
        long granted = 0;
        for (int i = 0; i < perSecond; i++)
        {
            granted += budget.TryAcquireRetry() ? 1 : 0;
        }

        Assert.Equal(perSecond, granted); // the one-second burst: MinRetriesPerSecond at once

        long step = Math.Max(1, frequency / Math.Min(frequency, 4L * perSecond)); // several asks per interval
        for (long t = 0; t < Seconds * frequency; t += step)
        {
            clock.Now += step;
            while (budget.TryAcquireRetry())
            {
                granted++;
            }
        }

        Assert.True(granted <= (long)perSecond * (Seconds + 1), $"granted {granted} > bound {(long)perSecond * (Seconds + 1)}");
    }

    [Fact]
    public void TryAcquireRetry_MaxBurstZero_RatioGrantsNothingOnlyTheReserve()
    {
        // As documented on RetryBudgetOptions.MaxBurst: a retry spends a whole unit, and credit is capped at 0.
        var clock = new ScaledClock(1_000);
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 10, MaxBurst = 0, MinRetriesPerSecond = 2, TimeProvider = clock });
        for (int i = 0; i < 1_000; i++)
        {
            budget.RecordCall();
        }

        Assert.True(budget.TryAcquireRetry());
        Assert.True(budget.TryAcquireRetry());
        Assert.False(budget.TryAcquireRetry()); // the reserve's burst is spent; the ratio bucket holds nothing
    }

    /// <summary>A clock of any frequency, moved by hand.</summary>
    private sealed class ScaledClock(long frequency) : TimeProvider
    {
        public long Now { get; set; } = 12_345;

        public override long TimestampFrequency => frequency;

        public override long GetTimestamp() => Now;
    }
}
