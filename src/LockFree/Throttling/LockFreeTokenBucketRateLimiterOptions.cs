namespace LockFree;

/// <summary>Options of a <see cref="LockFreeTokenBucketRateLimiter"/>; validated when the limiter is created.</summary>
public sealed class LockFreeTokenBucketRateLimiterOptions
{
    /// <summary>Tokens the bucket holds when full (the largest burst). Required: 1 to 2^40 - 1.</summary>
    public long TokenLimit { get; set; }

    /// <summary>Refill rate. Required: positive and finite, fractions allowed.</summary>
    public double TokensPerSecond { get; set; }

    /// <summary>Permits that may wait in <c>AcquireAsync</c> at once (0 = never wait). A zero-permit <c>AcquireAsync</c> holds none and waits whatever this says (RateLimiter's contract: it waits until permits are replenished). Default 0.</summary>
    public int QueueLimit { get; set; }

    /// <summary>The fast-path batch (see <see cref="TokenBucket.FastPathBatch"/>); null = <see cref="TokenBucket.DefaultBatch(long)"/>. Default null.</summary>
    public int? FastPathBatch { get; set; }

    /// <summary>The clock; null = <see cref="System.TimeProvider.System"/>. Default null.</summary>
    public TimeProvider? TimeProvider { get; set; }

    /// <summary>A name for the <c>LockFree</c> meter's measurements; null = not reported. Default null.</summary>
    public string? Name { get; set; }
}
