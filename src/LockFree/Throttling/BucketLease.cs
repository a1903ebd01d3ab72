using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace LockFree.Throttling;

// Design: leases are immutable and carry no limiter, so they are shared process-wide: one success lease, and
// failure leases cached per retry-after value, rounded up (to the millisecond below ~4 s, to 1/16 of the value
// above), so a refusal with RetryAfter metadata allocates nothing once its rounded value has been seen.
// Rounding up keeps the hint honest (a client that waits it out finds the tokens there). Disposing a token
// bucket lease returns nothing (tokens are spent, as with the BCL's TokenBucketRateLimiter), so a shared
// instance is safe to dispose any number of times.
internal sealed class BucketLease : RateLimitLease
{
    private const int ExactMilliseconds = 4096;

    /// <summary>The whole milliseconds of <see cref="TimeSpan.MaxValue"/>: the longest hint a lease carries.</summary>
    private const long MaxMilliseconds = long.MaxValue / TimeSpan.TicksPerMillisecond;

    private static readonly string[] RetryAfterNames = [MetadataName.RetryAfter.Name];
    private static readonly BucketLease?[] FailedByMillisecond = new BucketLease?[ExactMilliseconds];
    private static readonly ConcurrentDictionary<long, BucketLease> FailedLong = new();

    private readonly object? _retryAfter; // boxed once per cached lease

    private BucketLease(bool acquired, TimeSpan? retryAfter)
    {
        IsAcquired = acquired;
        _retryAfter = retryAfter;
    }

    public static BucketLease Success { get; } = new(true, null);

    /// <summary>A failed lease without metadata (a wait ended by disposal: no retry hint about a disposed limiter).</summary>
    public static BucketLease FailedNoHint { get; } = new(false, null);

    public override bool IsAcquired { get; }

    public override IEnumerable<string> MetadataNames => _retryAfter is null ? [] : RetryAfterNames;

    /// <summary>The cached failed lease whose RetryAfter is <paramref name="retryAfter"/> rounded up.</summary>
    public static BucketLease Failed(TimeSpan retryAfter)
    {
        long ticks = retryAfter.Ticks;
        long ms = ticks <= 0 ? 0 : (ticks / TimeSpan.TicksPerMillisecond) + (ticks % TimeSpan.TicksPerMillisecond != 0 ? 1 : 0); // rounds up without overflowing near TimeSpan.MaxValue
        if (ms < ExactMilliseconds)
        {
            return FailedByMillisecond[ms] ?? Create(ref FailedByMillisecond[ms], ms); // benign race: a duplicate is harmless
        }

        int exponent = 63 - (int)long.LeadingZeroCount(ms);
        long step = 1L << (exponent - 4);
        long rounded = Math.Min((ms + step - 1) & ~(step - 1), MaxMilliseconds); // saturates at the longest TimeSpan
        return FailedLong.TryGetValue(rounded, out BucketLease? lease) ? lease : FailedLong.GetOrAdd(rounded, static v => new BucketLease(false, TimeSpan.FromMilliseconds(v)));
    }

    private static BucketLease Create(ref BucketLease? slot, long ms) => slot = new BucketLease(false, TimeSpan.FromMilliseconds(ms));

    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        if (_retryAfter is not null && metadataName == MetadataName.RetryAfter.Name)
        {
            metadata = _retryAfter;
            return true;
        }

        metadata = null;
        return false;
    }
}
