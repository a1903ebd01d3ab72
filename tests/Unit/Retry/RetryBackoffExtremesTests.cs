using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The backoff formulas at the ends of their ranges (review, 2026-11-23): huge retry numbers, a zero base (where
/// 0 * 2^n is NaN in floating point once 2^n overflows), a previous delay of <see cref="TimeSpan.MaxValue"/>, and
/// random draws at both ends of [0, 1). Every delay must stay in [0, MaxDelay] and match the documented formula.
/// </summary>
public sealed class RetryBackoffExtremesTests
{
    public static TheoryData<RetryJitter, long, long> Cases()
    {
        var data = new TheoryData<RetryJitter, long, long>();
        foreach (RetryJitter jitter in Enum.GetValues<RetryJitter>())
        {
            data.Add(jitter, 0, 0);
            data.Add(jitter, 0, TimeSpan.FromSeconds(30).Ticks);
            data.Add(jitter, 1, TimeSpan.FromSeconds(30).Ticks);
            data.Add(jitter, TimeSpan.FromSeconds(30).Ticks, TimeSpan.FromSeconds(30).Ticks);
            data.Add(jitter, 1, DelayQueue<int>.MaxDelay.Ticks);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GetBackoff_ExtremeRetryNumbersAndPreviousDelays_WithinFormulaAndCap(RetryJitter jitter, long baseTicks, long capTicks)
    {
        foreach (double draw in new[] { 0.0, 0.5, Math.BitDecrement(1.0) })
        {
            var policy = new RetryPolicy(new RetryPolicyOptions
            {
                BaseDelay = TimeSpan.FromTicks(baseTicks),
                MaxDelay = TimeSpan.FromTicks(capTicks),
                Jitter = jitter,
                Random = new FixedRandom(draw),
                MaxAttempts = 1_000_000,
            });
            foreach (int retry in new[] { 1, 2, 63, 64, 65, 1023, 1024, 1025, 999_999, int.MaxValue })
            {
                foreach (TimeSpan previous in new[] { TimeSpan.Zero, TimeSpan.FromTicks(capTicks), TimeSpan.MaxValue })
                {
                    long actual = policy.GetBackoff(retry, previous).Ticks;
                    long expected = Reference(jitter, baseTicks, capTicks, retry, previous.Ticks, draw);
                    Assert.True(actual >= 0 && actual <= capTicks, $"{jitter} retry {retry} previous {previous}: {actual} outside [0, {capTicks}]");
                    Assert.True(Math.Abs(actual - expected) <= 1, $"{jitter} retry {retry} previous {previous} draw {draw}: {actual}, formula {expected}");
                }
            }
        }
    }

    /// <summary>The documented formulas in exact (decimal-free, saturating) arithmetic.</summary>
    private static long Reference(RetryJitter jitter, long b, long c, int n, long previous, double u)
    {
        // min(c, b * 2^(n-1)) without overflow: once the exponent passes 62 any positive base exceeds every cap.
        long exponential = b == 0 ? 0 : n - 1 >= 62 || b > (c >> (n - 1)) ? c : Math.Min(c, b << (n - 1));
        return jitter switch
        {
            RetryJitter.None => exponential,
            RetryJitter.Full => (long)(exponential * u),
            _ => (long)Math.Min(c, b + ((3.0 * Math.Max(b, previous)) - b) * u),
        };
    }

    private sealed class FixedRandom(double value) : Random
    {
        public override double NextDouble() => value;

        protected override double Sample() => value;
    }
}
