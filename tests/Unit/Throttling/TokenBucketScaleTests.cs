using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// From <c>TokenBucketCore</c>'s mutation run (session 21): no unit test ran a bucket whose engine scales its time units
/// (a rate above the clock's frequency / 4096 tokens per second, where the engine counts 2^shift units per clock tick so a
/// token's interval keeps its precision), and the bucket's wait hint and its time-to-full were checked only with the
/// clock near the bucket's origin. Mutants that reversed the scaling (<c>&gt;&gt; shift</c> for <c>&lt;&lt; shift</c>), skipped it,
/// or added the current time where it is subtracted survived. These pin the scaling, the wait hint and the time-to-full at a clock far from the origin (five mutants, each planted by hand).
/// </summary>
public sealed class TokenBucketScaleTests
{
    /// <summary>3e6 tokens/s on the 1e7 Hz manual clock: 3.33 ticks a token, so the engine must scale (unscaled, the interval rounds up to 4 ticks: 2.5e6/s).</summary>
    private const double HighRate = 3e6;

    [Fact]
    public void HighRate_ScaledUnits_KeepTheRateAndRefillAsTheClockMoves()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(3000, HighRate, fastPathBatch: 1, time);
        Assert.InRange(bucket.EffectiveTokensPerSecond, HighRate * 0.99, HighRate); // never above the configured rate

        time.Advance(TimeSpan.FromSeconds(10)); // far from the origin
        Assert.True(bucket.TryAcquire(3000));
        Assert.False(bucket.TryAcquire(1, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromTicks(4), retryAfter); // one token: 3.33 ticks, rounded up, never early

        time.Advance(TimeSpan.FromTicks(5000)); // half a millisecond
        long expected = (long)(bucket.EffectiveTokensPerSecond * 0.0005);
        Assert.InRange(bucket.AvailableTokens, expected - 1, expected);
        Assert.True(bucket.TryAcquire((int)(expected - 1)));

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(3000, bucket.AvailableTokens); // capped at the capacity
    }

    [Fact]
    public void UntilAvailable_FarFromTheOrigin_IsTheBucketsOwnWait()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1.0, fastPathBatch: 1, time);
        time.Advance(TimeSpan.FromSeconds(100));
        Assert.True(bucket.TryAcquire(10)); // empty
        Assert.Equal(TimeSpan.FromSeconds(1), bucket.UntilAvailable(1));
        Assert.Equal(TimeSpan.FromSeconds(3), bucket.UntilAvailable(3));

        time.Advance(TimeSpan.FromSeconds(0.25));
        Assert.Equal(TimeSpan.FromSeconds(0.75), bucket.UntilAvailable(1));
        Assert.Equal(TimeSpan.FromSeconds(0.75) + TimeSpan.FromSeconds(2), bucket.UntilAvailableBehind(queuedTokens: 2, tokens: 1)); // two queued tokens first
    }

    [Fact]
    public void TryRetireIfIdle_FarFromTheOrigin_NamesWhenTheBucketIsFull()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1.0, fastPathBatch: 1, time);
        time.Advance(TimeSpan.FromSeconds(100));
        Assert.True(bucket.TryAcquire(4));
        Assert.False(bucket.TryRetireIfIdle(out long fullInUnits));
        Assert.Equal(TimeSpan.FromSeconds(4), bucket.ToTimeSpan(fullInUnits));

        time.Advance(TimeSpan.FromSeconds(4));
        Assert.True(bucket.TryRetireIfIdle(out _)); // full again: retired
    }
}
