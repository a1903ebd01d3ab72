using LockFree.Internal;
using LockFree.Tests.Unit.Support;
using LockFree.Throttling;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// The per-thread token caches of <see cref="TokenBucket"/> (see TokenBucketCore's "Thread caches"): which buckets
/// cache, that a cache serves its own thread only, and that a cache's leftover is dead after any settlement (charged,
/// never admitted), so nothing is over-admitted.
/// </summary>
public sealed class TokenBucketThreadCacheTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(127, 0)]
    [InlineData(128, 2)]
    [InlineData(500, 7)]
    [InlineData(1024, 16)]
    [InlineData(100_000, 16)]
    public void DefaultThreadCache_Batch_IsBatchOver64UpTo16(long batch, long expected) =>
        Assert.Equal(expected, TokenBucketCore<RealAtomics>.DefaultThreadCache(batch));

    [Fact]
    public void Constructor_Defaults_CacheOnlyWithALargeBatch()
    {
        Assert.Equal(16, new TokenBucket((1L << 40) - 1, 1e9).ThreadCache);
        Assert.Equal(2, new TokenBucket(2048, 100).ThreadCache); // batch 128
        Assert.Equal(0, new TokenBucket(2047, 100).ThreadCache); // batch 127
        Assert.Equal(0, new TokenBucket(1 << 20, 100, fastPathBatch: 1).ThreadCache); // exact: no batch, no cache
    }

    [Fact]
    public void KeyedTable_Buckets_DoNotCache()
    {
        var table = new KeyedTokenBucket<string>(1 << 20, 1000, maxKeys: 4);
        Assert.True(table.TryAcquire("a"));
        Assert.True(table.TryGetBucket("a", out TokenBucket? bucket));
        Assert.Equal(1024, bucket.FastPathBatch);
        Assert.Equal(0, bucket.ThreadCache);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(-1)]
    [InlineData(65)] // more than half the batch of 128
    public void Constructor_BadThreadCache_Throws(long threadCache)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucketCore<RealAtomics>(1024, 10, 128, new ManualTimeProvider(), threadCache));
        Assert.Equal("threadCache", e.ParamName);
    }

    [Fact]
    public void TryAcquire_OneThreadClockStill_AdmitsExactlyTheCapacity()
    {
        // One thread, one-token requests: the batch drains one token at a time once fewer than a cache remain, so no
        // leftover dies and the full bucket is admitted to the last token.
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(4096, 10, 256, time, threadCache: 8);
        int admitted = 0;
        while (bucket.TryAcquire())
        {
            admitted++;
            Assert.True(admitted <= 4096, "admitted more than the capacity");
        }

        Assert.Equal(4096, admitted);
        Assert.Equal(1, bucket.CachedThreads);
        Assert.False(bucket.TryAcquire(1, out TimeSpan retryAfter));
        Assert.True(retryAfter > TimeSpan.Zero);
    }

    [Fact]
    public void TryAcquire_CacheOfAnotherThread_IsNotShared()
    {
        // Thread A leaves tokens in its cache; thread B cannot take them, and once a settlement (AvailableTokens)
        // kills A's cache they are charged but never admitted: admitted + available stays within the capacity.
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(256, 1, 128, time, threadCache: 8);
        RunOn(() => Assert.True(bucket.TryAcquire())); // A opens the batch as its owner (no cache yet)
        RunOn(() => Assert.True(bucket.TryAcquire())); // another thread: fills its cache (8 tokens, 7 left in it)
        int admittedByMain = 0;
        while (bucket.TryAcquire())
        {
            admittedByMain++;
        }

        long available = bucket.AvailableTokens;
        long admitted = 2 + admittedByMain;
        Assert.True(admitted + available <= 256, $"admitted {admitted} + available {available} > capacity");
        Assert.InRange(admitted, 256 - 7 - 7, 256); // at most two leftovers (the other threads' caches) died
        Assert.InRange(bucket.CachedThreads, 2, 3); // the second helper thread may reuse the first one's managed id, and so its slot
    }

    [Fact]
    public void TryAcquire_ManyThreadsClockStill_NeverOverAdmits()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(20_000, 1, 1024, time); // default cache: 16
        long[] admitted = new long[4];
        var threads = Enumerable.Range(0, admitted.Length).Select(t => new Thread(() =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                if (bucket.TryAcquire(1 + (i % 3)))
                {
                    admitted[t] += 1 + (i % 3);
                }
            }
        })).ToArray();
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "an acquirer hung");
        }

        long total = admitted.Sum();
        long available = bucket.AvailableTokens;
        Assert.True(total + available <= 20_000, $"admitted {total} + available {available} > capacity");
        Assert.True(total >= 20_000 - (50 * 4 * 15), $"admitted only {total}: far more leftovers died than settlements explain");
    }

    [Fact]
    public void AdmittedTokens_DeadLeftoverReportedByItsThread_IsLeftOut()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(256, 1, 128, time, threadCache: 8);
        Assert.True(bucket.TryAcquire()); // opens the batch (owner): no cache yet
        Assert.True(bucket.TryAcquire()); // fills this thread's cache: 8 taken from the batch, 7 left in the cache
        Assert.Equal(256 - 9, bucket.AvailableTokens); // settles: the cache's 8 are charged, and the cache is dead
        Assert.Equal(9, bucket.AdmittedTokens);        // the leftover counts until its thread comes back
        Assert.True(bucket.TryAcquire());              // comes back: reports the dead 7, fills a new cache
        Assert.Equal(2, bucket.AdmittedTokens);        // exact as of the last settlement (the new cache is not settled yet)
    }

    [Fact]
    public void KeyedTable_RefusalsFromManyThreads_CountedExactlyWithoutPerThreadSlots()
    {
        var time = new ManualTimeProvider();
        var table = new KeyedTokenBucket<string>(1, 0.001, maxKeys: 4, time);
        var plain = new TokenBucket(1, 0.001, time); // control: per-thread slots
        Assert.True(table.TryAcquire("a"));
        Assert.True(plain.TryAcquire());
        var threads = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                Assert.False(table.TryAcquire("a"));
                Assert.False(plain.TryAcquire());
            }
        })).ToArray();
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "a thread hung");
        }

        Assert.True(table.TryGetBucket("a", out TokenBucket? bucket));
        Assert.Equal(4000, bucket.RefusedCount);
        Assert.Equal(4000, plain.RefusedCount);
        Assert.True(bucket.OwnerRefusedCount < 4000, "no refusal was made on a memo: the lean count went untested");
        Assert.False(bucket.HasPerThreadRefusalSlots);
        Assert.True(plain.HasPerThreadRefusalSlots);
    }

    private static void RunOn(Action action)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "the helper thread hung");
        if (failure is not null)
        {
            throw failure;
        }
    }
}
