using System.Threading.RateLimiting;

namespace LockFree;

/// <summary>
/// A <see cref="RateLimiter"/> over an <see cref="AdaptiveConcurrencyLimiter"/>, for code written against
/// System.Threading.RateLimiting (ASP.NET Core rate limiting middleware, Polly's rate limiter strategy): a lease is
/// one slot; disposing it completes the request as <see cref="AdaptiveOutcome.Success"/>. To report an overload
/// drop, cast the lease to <see cref="AdaptiveRateLimitLease"/> and call <see cref="AdaptiveRateLimitLease.Complete"/> first.
/// </summary>
/// <remarks>
/// Nothing queues: <see cref="RateLimiter.AcquireAsync"/> answers at once like <see cref="RateLimiter.AttemptAcquire"/>
/// (an adaptive limit exists to shed, not to park callers). A permit count must be 0 (asks whether a slot is free,
/// takes none) or 1. Unlike <see cref="AdaptiveConcurrencyLimiter.TryAcquire"/>, each successful lease is an object
/// (the <see cref="RateLimitLease"/> contract is a class); failed leases are one shared instance.
/// </remarks>
public sealed class AdaptiveConcurrencyRateLimiter : RateLimiter
{
    private static readonly RateLimitLease Failed = new FixedLease(acquired: false);
    private static readonly RateLimitLease Available = new FixedLease(acquired: true);

    private readonly AdaptiveConcurrencyLimiter _limiter;
    private int _disposed;
    private long _probesAvailable; // zero-permit probes that found a free slot: successful leases, as the BCL counts them
    private long _probesRefused;   // ... and those that found none: failed leases

    /// <summary>Wraps <paramref name="limiter"/>.</summary>
    /// <param name="limiter">The adaptive limiter the leases come from.</param>
    /// <exception cref="ArgumentNullException"><paramref name="limiter"/> is null.</exception>
    public AdaptiveConcurrencyRateLimiter(AdaptiveConcurrencyLimiter limiter)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        _limiter = limiter;
    }

    /// <summary>The wrapped limiter.</summary>
    public AdaptiveConcurrencyLimiter Limiter => _limiter;

    /// <summary>Zero when nothing is in flight, otherwise null (the limiter does not record when it became idle).</summary>
    public override TimeSpan? IdleDuration => _limiter.InFlight == 0 ? TimeSpan.Zero : null;

    /// <summary>
    /// A snapshot: free slots, and leases counted as the BCL's <see cref="ConcurrencyLimiter"/> counts them: the wrapped
    /// limiter's admissions and refusals (its direct <c>TryAcquire</c> callers included) plus this adapter's
    /// zero-permit probes (a success when a slot was free, a failure otherwise).
    /// </summary>
    public override RateLimiterStatistics? GetStatistics()
    {
        ThrowIfDisposed();
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = Math.Max(0, _limiter.Limit - _limiter.InFlight),
            CurrentQueuedCount = 0,
            TotalFailedLeases = _limiter.Rejected + Volatile.Read(ref _probesRefused),
            TotalSuccessfulLeases = _limiter.Acquired + Volatile.Read(ref _probesAvailable),
        };
    }

    /// <inheritdoc/>
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ThrowIfDisposed();
        if (permitCount == 0)
        {
            if (_limiter.InFlight < _limiter.Limit)
            {
                Interlocked.Increment(ref _probesAvailable);
                return Available;
            }

            Interlocked.Increment(ref _probesRefused);
            return Failed;
        }

        if (permitCount != 1)
        {
            throw new ArgumentOutOfRangeException(nameof(permitCount), permitCount, "An adaptive concurrency lease is one request: ask for 0 or 1 permit.");
        }

        return _limiter.TryAcquire(out AdaptiveLease lease) ? new AdaptiveRateLimitLease(lease) : Failed;
    }

    /// <inheritdoc/>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(AttemptAcquireCore(permitCount));
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing) => Interlocked.Exchange(ref _disposed, 1);

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            throw new ObjectDisposedException(nameof(AdaptiveConcurrencyRateLimiter));
        }
    }

    private sealed class FixedLease(bool acquired) : RateLimitLease
    {
        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}

/// <summary>
/// A lease from <see cref="AdaptiveConcurrencyRateLimiter"/>: one admitted request. <see cref="Complete"/> reports how
/// it ended; <see cref="RateLimitLease.Dispose()"/> completes it as <see cref="AdaptiveOutcome.Success"/> unless it was
/// completed already. Completing twice (or disposing twice) is harmless.
/// </summary>
public sealed class AdaptiveRateLimitLease : RateLimitLease
{
    private readonly AdaptiveLease _lease;
    private int _completed;

    internal AdaptiveRateLimitLease(AdaptiveLease lease) => _lease = lease;

    /// <inheritdoc/>
    public override bool IsAcquired => true;

    /// <inheritdoc/>
    public override IEnumerable<string> MetadataNames => [];

    /// <summary>Ends the request with <paramref name="outcome"/> (only the first call counts).</summary>
    /// <param name="outcome">How the request ended.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="outcome"/> is not a defined value.</exception>
    public void Complete(AdaptiveOutcome outcome)
    {
        if ((uint)outcome > (uint)AdaptiveOutcome.Ignore)
        {
            throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "Undefined AdaptiveOutcome.");
        }

        if (Interlocked.Exchange(ref _completed, 1) == 0)
        {
            _lease.Complete(outcome);
        }
    }

    /// <inheritdoc/>
    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = null;
        return false;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing) => Complete(AdaptiveOutcome.Success);
}
