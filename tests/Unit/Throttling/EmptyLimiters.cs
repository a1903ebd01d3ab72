using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>Rate limiters the queued-wait tests start from.</summary>
internal static class EmptyLimiters
{
    /// <summary>A limiter of one token at one per second on <paramref name="time"/>, its token taken: the next acquire queues.</summary>
    public static LockFreeTokenBucketRateLimiter OneTokenTaken(ManualTimeProvider time, int queueLimit = 1)
    {
        var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 1,
            TokensPerSecond = 1,
            QueueLimit = queueLimit,
            TimeProvider = time,
        });
        using (RateLimitLease drained = limiter.AttemptAcquire())
        {
            Assert.True(drained.IsAcquired);
        }

        return limiter;
    }
}
