using LockFree.Tests.Unit.Diagnostics;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>RateLimiter adapter behaviours outside the BCL comparison: ownership of a wrapped bucket.</summary>
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
}
