using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// The keyed table's sweep: keys left with a part-spent fast-path batch become evictable (charged exactly, at the
/// last instant the table saw the batch unchanged), and a storm of new keys against a full table of busy keys does
/// not sweep the table once per attempt.
/// </summary>
public sealed class KeyedTokenBucketSweepTests
{
    [Fact]
    public void TryAcquire_TableFullOfIdleKeysWithPartSpentBatches_FirstAttemptEvicts()
    {
        // Capacity 64: a fast-path batch of 4. Each key's one acquire opened a batch (1 of 4 spent, 3 left open).
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(64, 1, maxKeys: 2, time);
        Assert.True(keyed.TryAcquire(1));
        Assert.True(keyed.TryAcquire(2));
        time.Advance(TimeSpan.FromHours(1)); // both idle for an hour: an exact bucket is long full again

        // Before the fix the sweep charged the open batch's spent token at the sweep's own instant, so neither key read
        // full and the table refused the new key (fail closed) although both keys had been idle for an hour.
        Assert.True(keyed.TryAcquire(3));
        Assert.Equal(1, keyed.Count);
    }

    [Fact]
    public void TryAcquire_KeyTookFromItsBatchJustNow_IsNotEvictedUntilItsTokensRefill()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(64, 1, maxKeys: 1, time); // one token per second, batch 4
        Assert.True(keyed.TryAcquire(1)); // opens a batch at t0
        time.Advance(TimeSpan.FromHours(1));
        Assert.True(keyed.TryAcquire(1));
        Assert.True(keyed.TryAcquire(1)); // two fast-path takes now: the key is not idle

        Assert.False(keyed.TryAcquire(2, 1, out TimeSpan retryAfter)); // no eviction: the exact bucket is 2 short of full
        Assert.InRange(retryAfter, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3)); // hint: when the key could be full at the earliest
        Assert.True(keyed.TryGetBucket(1, out TokenBucket? bucket));

        time.Advance(retryAfter);
        Assert.True(keyed.TryAcquire(2)); // idle since the last sweep saw it: charged at that sweep, full now, evicted
        Assert.Throws<InvalidOperationException>(() => bucket.TryAcquire()); // the old bucket is retired
        Assert.Equal(3, bucket.AdmittedTokens); // every token it admitted was charged: none lost, none minted
    }

    [Fact]
    public void TryAcquire_NewKeyStormAgainstFullTableOfBusyKeys_DoesNotSweepPerAttempt()
    {
        var time = new CountingTimeProvider();
        const int Keys = 200;
        var keyed = new KeyedTokenBucket<int>(64, 0.001, maxKeys: Keys, time); // no refill worth speaking of
        for (int key = 0; key < Keys; key++)
        {
            Assert.True(keyed.TryAcquire(key, 64)); // every key busy (empty bucket)
        }

        long before = time.Reads;
        const int Attempts = 1_000;
        for (int i = 0; i < Attempts; i++)
        {
            Assert.False(keyed.TryAcquire(Keys + i, 1, out TimeSpan retryAfter)); // fail closed
            Assert.True(retryAfter > TimeSpan.Zero);
        }

        // Each sweep reads the clock once per held key: before the fix every attempt swept (200 000 reads here). Now a
        // sweep that frees nothing blocks the next until a held key could have refilled, so the storm costs O(1) each.
        long reads = time.Reads - before;
        Assert.InRange(reads, 0, (4 * Attempts) + (2 * Keys));
        Assert.Equal(Keys, keyed.Count);

        time.Inner.Advance(TimeSpan.FromSeconds(64 / 0.001)); // every key refilled: the next attempt sweeps and gets in
        Assert.True(keyed.TryAcquire(-1));
        Assert.Equal(1, keyed.Count);
    }

    [Fact]
    public void EvictIdle_OnDemand_StillSweepsEveryTime()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(4, 1, maxKeys: 2, time);
        Assert.True(keyed.TryAcquire(1, 4));
        Assert.True(keyed.TryAcquire(2, 4));
        Assert.False(keyed.TryAcquire(3)); // a sweep that freed nothing: the next automatic one waits
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(2, keyed.EvictIdle()); // the explicit sweep is not rate-limited
        Assert.Equal(0, keyed.Count);
    }

    /// <summary>A manual clock that counts its reads.</summary>
    private sealed class CountingTimeProvider : TimeProvider
    {
        private long _reads;

        public ManualTimeProvider Inner { get; } = new();

        public long Reads => Volatile.Read(ref _reads);

        public override long TimestampFrequency => Inner.TimestampFrequency;

        public override long GetTimestamp()
        {
            Interlocked.Increment(ref _reads);
            return Inner.GetTimestamp();
        }
    }
}
