using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="KeyedTokenBucket{TKey}"/>'s retry hint when its table is full of busy keys (session 16, from its mutation
/// run, which found the hint's later refusals, its clock-unit conversion and the sweep spacing's floor unchecked): the
/// first refusal sweeps and names the time until the earliest key could refill; refusals before that instant do not sweep
/// again and name the time left; the hint is in real time whatever the clock's frequency; and sweeps are spaced at least
/// <c>maxKeys</c> × 1 µs apart even when a key refills sooner.
/// </summary>
public sealed class KeyedTokenBucketSweepHintTests
{
    [Fact]
    public void TryAcquire_TableFullThenRefusedAgainBeforeTheHorizon_NamesTheTimeLeft()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(4, 2, maxKeys: 2, time);
        Assert.True(keyed.TryAcquire(1));
        Assert.True(keyed.TryAcquire(2));
        Assert.False(keyed.TryAcquire(3, 1, out TimeSpan first));
        Assert.Equal(TimeSpan.FromSeconds(0.5), first); // the sweep's horizon: each key owes one token at 2/s

        time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.False(keyed.TryAcquire(3, 1, out TimeSpan second)); // refused in O(1), no sweep before the horizon
        Assert.Equal(TimeSpan.FromSeconds(0.3), second);
        Assert.Equal(2, keyed.Count);

        time.Advance(second);
        Assert.True(keyed.TryAcquire(3)); // at the horizon: the sweep finds both keys refilled
    }

    [Fact]
    public void TryAcquire_TableFullOnAClockOfAnotherFrequency_HintIsInRealTime()
    {
        var time = new MicrosecondClock(new ManualTimeProvider()); // 1 MHz timestamps
        var keyed = new KeyedTokenBucket<int>(4, 2, maxKeys: 2, time);
        Assert.True(keyed.TryAcquire(1));
        Assert.True(keyed.TryAcquire(2));
        Assert.False(keyed.TryAcquire(3, 1, out TimeSpan first));
        Assert.Equal(TimeSpan.FromSeconds(0.5), first);
        time.Inner.Advance(TimeSpan.FromSeconds(0.2));
        Assert.False(keyed.TryAcquire(3, 1, out TimeSpan second));
        Assert.Equal(TimeSpan.FromSeconds(0.3), second);
    }

    [Fact]
    public void TryAcquire_TableFullOfKeysThatRefillSoon_SweepsNoCloserThanTheSpacing()
    {
        // At 10^6 tokens/s a key owing one token is full again in 1 µs, but sweeps are spaced maxKeys x 1 µs apart (2 µs
        // here): the hint names the spacing, not the refill.
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(4, 1_000_000, maxKeys: 2, time);
        Assert.True(keyed.TryAcquire(1));
        Assert.True(keyed.TryAcquire(2));
        Assert.False(keyed.TryAcquire(3, 1, out TimeSpan retryAfter));
        Assert.Equal(2 * KeyedTokenBucket<int>.SweepSpacingPerKey, retryAfter);
    }

    /// <summary>A manual clock read in microseconds (frequency 10^6, not the <see cref="TimeSpan"/> tick's 10^7).</summary>
    private sealed class MicrosecondClock(ManualTimeProvider inner) : TimeProvider
    {
        public ManualTimeProvider Inner => inner;

        public override long TimestampFrequency => 1_000_000;

        public override long GetTimestamp() => inner.GetTimestamp() / 10;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();
    }
}
