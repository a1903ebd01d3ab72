using System.Threading.RateLimiting;
using LockFree.Throttling;

namespace LockFree;

/// <summary>
/// A <see cref="PartitionedRateLimiter{TResource}"/> over a <see cref="KeyedTokenBucket{TKey}"/>: each resource
/// maps to a key, each key has its own lock-free bucket, keys are bounded and idle ones evicted. Failed leases carry
/// <see cref="MetadataName.RetryAfter"/>; leases are shared instances (0 B). Acquires never queue: <c>AcquireAsync</c>
/// answers at once like <c>AttemptAcquire</c>.
/// </summary>
/// <typeparam name="TResource">What a request is (an HTTP context, a message).</typeparam>
/// <typeparam name="TKey">The partition key (user, tenant, client address).</typeparam>
public sealed class LockFreeKeyedRateLimiter<TResource, TKey> : PartitionedRateLimiter<TResource>
    where TKey : notnull
{
    private readonly KeyedTokenBucket<TKey> _buckets;
    private readonly Func<TResource, TKey> _keySelector;
    private readonly Internal.StripedCounterSet _failedLeases = new(); // one counter (index 0), striped by core
    private int _disposed;

    /// <summary>Creates the limiter over <paramref name="buckets"/>, mapping each resource to its key with <paramref name="keySelector"/>.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public LockFreeKeyedRateLimiter(KeyedTokenBucket<TKey> buckets, Func<TResource, TKey> keySelector)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        ArgumentNullException.ThrowIfNull(keySelector);
        _buckets = buckets;
        _keySelector = keySelector;
    }

    /// <summary>The per-key buckets.</summary>
    public KeyedTokenBucket<TKey> Buckets => _buckets;

    /// <summary>
    /// A snapshot for the resource's key: its available tokens (capacity when the key is not held), its successful leases
    /// (one per lease whatever its permit count, plus zero-permit probes that found permits, as the BCL counts them; since
    /// the key's bucket was created, so an evicted key starts again from 0) and failed leases over all keys.
    /// </summary>
    public override RateLimiterStatistics? GetStatistics(TResource resource)
    {
        ThrowIfDisposed();
        TKey key = _keySelector(resource);
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = _buckets.TryGetBucket(key, out TokenBucket? bucket) ? bucket.AvailableTokens : _buckets.Capacity,
            TotalFailedLeases = _failedLeases.Sum(0),
            TotalSuccessfulLeases = bucket is null ? 0 : Math.Max(bucket.AdmittedTokens - bucket.TokensBeyondLeases, 0),
        };
    }

    /// <inheritdoc/>
    protected override RateLimitLease AttemptAcquireCore(TResource resource, int permitCount)
    {
        ThrowIfDisposed();
        TKey key = _keySelector(resource);
        if (permitCount == 0)
        {
            return Probe(key);
        }

        if (_buckets.TryAcquire(key, permitCount, out TimeSpan retryAfter, out TokenBucket? charged))
        {
            if (permitCount > 1)
            {
                charged!.AddTokensBeyondLeases(permitCount - 1); // one lease, not permitCount of them
            }

            return BucketLease.Success;
        }

        _failedLeases.Add(0, 1);
        return BucketLease.Failed(retryAfter);
    }

    /// <inheritdoc/>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<RateLimitLease>(cancellationToken);
        }

        return new ValueTask<RateLimitLease>(AttemptAcquireCore(resource, permitCount));
    }

    /// <summary>A zero-permit probe: counted as a lease like the BCL's (a success on a key not held yet has no bucket to count on).</summary>
    private RateLimitLease Probe(TKey key)
    {
        if (!_buckets.TryGetBucket(key, out TokenBucket? bucket))
        {
            return BucketLease.Success; // a fresh key's bucket is full
        }

        if (bucket.AvailableTokens > 0)
        {
            bucket.AddTokensBeyondLeases(-1); // a successful lease that took no token
            return BucketLease.Success;
        }

        _failedLeases.Add(0, 1);
        return BucketLease.Failed(bucket.UntilAvailable(1));
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        Volatile.Write(ref _disposed, 1);
        base.Dispose(disposing);
    }

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            throw new ObjectDisposedException(nameof(LockFreeKeyedRateLimiter<TResource, TKey>));
        }
    }
}
