using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Diagnostics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>RateLimiter adapter behaviours outside the BCL comparison: ownership of a wrapped bucket, retry hints behind a queue.</summary>
public sealed class RateLimiterAdapterReviewTests
{
    [Fact]
    public void Dispose_AdapterOverASharedNamedBucket_BucketKeepsReporting()
    {
        string name = "shared-bucket-" + Guid.NewGuid().ToString("N");
        var bucket = new TokenBucket(capacity: 5, tokensPerSecond: 1) { Name = name };
        var adapter = new LockFreeTokenBucketRateLimiter(bucket); // wraps a bucket other code keeps using
        Assert.Contains("lockfree.limiter.limit", MetricsRegistryTests.ReadLimiterInstruments(name));

        adapter.Dispose();

        Assert.True(bucket.TryAcquire()); // the bucket lives on
        Assert.Contains("lockfree.limiter.acquired", MetricsRegistryTests.ReadLimiterInstruments(name)); // and its metrics with it
        GC.KeepAlive(bucket);
    }

    [Fact]
    public async Task AttemptAcquire_BehindSeveralQueuedWaiters_RetryAfterCoversTheWholeQueue()
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 2, TokensPerSecond = 1, QueueLimit = 4, TimeProvider = time });
        Assert.True(limiter.AttemptAcquire(2).IsAcquired);
        Task<RateLimitLease> first = limiter.AcquireAsync(2).AsTask();   // served at 2 s
        Task<RateLimitLease> second = limiter.AcquireAsync(2).AsTask();  // served at 4 s

        RateLimitLease refused = limiter.AttemptAcquire(1);
        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retryAfter));

        // A client that honours the hint must find its permit: both waiters served first, then its own token (5 s; the BCL
        // bucket says the same). The hint used to cover only the oldest waiter (3 s), so the retry was refused for sure.
        Assert.InRange(retryAfter, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5 * 17 / 16.0)); // hints above ~4 s round up to 1/16
        RateLimitLease full = await limiter.AcquireAsync(1); // the queue holds 4 permits: refused at once, with the same hint
        Assert.False(full.IsAcquired);
        Assert.True(full.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan queueFullHint));
        Assert.InRange(queueFullHint, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5 * 17 / 16.0));

        for (int i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.True((await first.WaitAsync(TimeSpan.FromSeconds(30))).IsAcquired);
        Assert.True((await second.WaitAsync(TimeSpan.FromSeconds(30))).IsAcquired);
        Assert.True(limiter.AttemptAcquire(1).IsAcquired);
    }
}
