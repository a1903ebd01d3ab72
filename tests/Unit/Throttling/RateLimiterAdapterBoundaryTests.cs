using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// Contract points of <see cref="LockFreeTokenBucketRateLimiter"/> that a mutation run of session 14 found untested (each
/// check below could be deleted with every unit test still passing): <c>AcquireAsync</c> after <c>Dispose</c>, the
/// wrapping constructor's arguments, and the statistics of a granted multi-permit queued wait.
/// </summary>
public sealed class RateLimiterAdapterBoundaryTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public void AcquireAsync_AfterDispose_ThrowsObjectDisposed()
    {
        var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 5, TokensPerSecond = 1, TimeProvider = new ManualTimeProvider() });
        limiter.Dispose();
        Assert.Throws<ObjectDisposedException>(() => limiter.AcquireAsync(1));
        Assert.Throws<ObjectDisposedException>(() => limiter.AcquireAsync(0));
    }

    [Fact]
    public void WrappingConstructor_BadArguments_Throw()
    {
        Assert.Equal("bucket", Assert.Throws<ArgumentNullException>(() => new LockFreeTokenBucketRateLimiter(null!, 1)).ParamName);
        var bucket = new TokenBucket(5, 1, new ManualTimeProvider());
        Assert.Equal("queueLimit", Assert.Throws<ArgumentOutOfRangeException>(() => new LockFreeTokenBucketRateLimiter(bucket, -1)).ParamName);
        using var ok = new LockFreeTokenBucketRateLimiter(bucket, 0);
    }

    [Fact]
    public async Task AcquireAsync_QueuedMultiPermitWaitGranted_CountsOneSuccessfulLease()
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 5, TokensPerSecond = 1, QueueLimit = 5, TimeProvider = time });
        using (RateLimitLease all = limiter.AttemptAcquire(5))
        {
            Assert.True(all.IsAcquired);
        }

        ValueTask<RateLimitLease> queued = limiter.AcquireAsync(3);
        Assert.False(queued.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(3));
        using RateLimitLease lease = await queued.AsTask().WaitAsync(Generous);
        Assert.True(lease.IsAcquired);
        RateLimiterStatistics stats = limiter.GetStatistics()!;
        Assert.Equal(2, stats.TotalSuccessfulLeases); // the 5-permit lease and the 3-permit one: leases, not permits
        Assert.Equal(0, stats.CurrentQueuedCount);
    }
}
