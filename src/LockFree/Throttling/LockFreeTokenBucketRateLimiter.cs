using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using LockFree.Backpressure;
using LockFree.Throttling;

namespace LockFree;

// Design: a System.Threading.RateLimiting adapter over one TokenBucket, so the bucket plugs into ASP.NET Core's
// rate-limiting middleware and Polly's rate-limiter strategy. Leases are shared immutable instances (see
// BucketLease): a successful AttemptAcquire is the bucket's one CAS plus returning a static lease (0 B), and a
// refusal returns a cached lease whose RetryAfter is the bucket's hint rounded up (0 B in steady state).
// Statistics come from counters the bucket keeps anyway (tokens admitted, refusals), corrected by counters kept
// on the rare paths only (waits, probes, extra permits of multi-permit leases): neither the single-permit success
// path nor the refusal path counts anything itself.

/// <summary>
/// A <see cref="ReplenishingRateLimiter"/> over a lock-free <see cref="TokenBucket"/>: the drop-in for
/// <see cref="TokenBucketRateLimiter"/> where throughput matters. Replenishment is continuous and lazy (no timer):
/// <see cref="IsAutoReplenishing"/> is true and <see cref="ReplenishmentPeriod"/> is one token's interval.
/// Failed leases carry <see cref="MetadataName.RetryAfter"/>. Waiting (<c>AcquireAsync</c>) is FIFO up to
/// <see cref="LockFreeTokenBucketRateLimiterOptions.QueueLimit"/> permits; while anyone waits, attempts fail. Zero
/// permits take nothing: <c>AttemptAcquire(0)</c> reports whether a permit is there, <c>AcquireAsync(0)</c> waits until one is.
/// </summary>
public sealed class LockFreeTokenBucketRateLimiter : ReplenishingRateLimiter
{
    private readonly TokenBucket _bucket;
    private readonly int _queueLimit;
    private readonly bool _ownsBucket; // created from options: Dispose ends the bucket's metrics; a wrapped bucket is its owner's
    private readonly CancellationTokenSource _disposed = new();
    private readonly OperationPool<QueuedAcquire> _queuedAcquires = new(); // queued AcquireAsync calls (0 B per wait in steady state)
    private long _queuedPermits;
    private long _otherFailures; // failed leases the bucket did not refuse (zero-permit probes, disposal)
    private long _waits;         // refusals that became waits (and later successful leases)
    private long _tokensBeyondLeases; // admitted tokens that are not leases of their own: the extra permits of multi-permit leases, less successful zero-permit probes (which take none)

    /// <summary>Creates the limiter and its bucket from <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see each option).</exception>
    public LockFreeTokenBucketRateLimiter(LockFreeTokenBucketRateLimiterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.QueueLimit, nameof(options.QueueLimit));
        TokenBucket.ValidateOptions(options.TokenLimit, options.TokensPerSecond);
        int batch = options.FastPathBatch ?? TokenBucket.DefaultBatch(options.TokenLimit);
        _bucket = new TokenBucket(options.TokenLimit, options.TokensPerSecond, batch, options.TimeProvider) { Name = options.Name };
        _queueLimit = options.QueueLimit;
        _ownsBucket = true;
    }

    /// <summary>Wraps an existing bucket (which other code may share): disposing the limiter leaves the bucket, and its metrics, to its owner.</summary>
    /// <param name="bucket">The bucket.</param>
    /// <param name="queueLimit">Permits that may wait at once (0 = never wait).</param>
    /// <exception cref="ArgumentNullException"><paramref name="bucket"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="queueLimit"/> is negative.</exception>
    public LockFreeTokenBucketRateLimiter(TokenBucket bucket, int queueLimit = 0)
    {
        ArgumentNullException.ThrowIfNull(bucket);
        ArgumentOutOfRangeException.ThrowIfNegative(queueLimit);
        _bucket = bucket;
        _queueLimit = queueLimit;
    }

    /// <summary>The bucket behind the limiter.</summary>
    public TokenBucket Bucket => _bucket;

    /// <inheritdoc/>
    public override bool IsAutoReplenishing => true;

    /// <summary>One token's interval at the effective rate (replenishment is continuous).</summary>
    public override TimeSpan ReplenishmentPeriod =>
        1 / _bucket.EffectiveTokensPerSecond >= TimeSpan.MaxValue.TotalSeconds ? TimeSpan.MaxValue : TimeSpan.FromSeconds(1 / _bucket.EffectiveTokensPerSecond); // saturates for rates slower than one token per TimeSpan.MaxValue

    /// <inheritdoc/>
    public override TimeSpan? IdleDuration => _bucket.IdleDuration;

    /// <summary>Nothing to do: the bucket refills lazily from the clock. Always false.</summary>
    public override bool TryReplenish() => false;

    /// <summary>
    /// A snapshot: available tokens (reads the clock), queued permits, failed leases (the bucket's refusals, less
    /// those that became waits, plus zero-permit probes that found nothing), and successful leases (tokens the bucket
    /// admitted minus the extra permits of multi-permit leases, plus zero-permit probes that found permits, as the
    /// BCL's limiters count them; the open fast-path batch is counted when it settles). A bucket shared with other
    /// code counts that code's acquires too.
    /// </summary>
    public override RateLimiterStatistics? GetStatistics()
    {
        ThrowIfDisposed();
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = _bucket.AvailableTokens,
            CurrentQueuedCount = Volatile.Read(ref _queuedPermits),
            TotalFailedLeases = Math.Max(_bucket.RefusedCount - Volatile.Read(ref _waits) + Volatile.Read(ref _otherFailures), 0),
            TotalSuccessfulLeases = Math.Max(_bucket.AdmittedTokens - Volatile.Read(ref _tokensBeyondLeases), 0),
        };
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ThrowIfDisposed();
        if (permitCount <= 1 && permitCount >= 0)
        {
            if (permitCount == 0)
            {
                return Probe();
            }

            if (_bucket.TryAcquire(1, out TimeSpan retryAfter))
            {
                return BucketLease.Success;
            }

            return BucketLease.Failed(Volatile.Read(ref _queuedPermits) == 0 ? retryAfter : BehindQueue(1, retryAfter));
        }

        return AttemptMany(permitCount);
    }

    /// <inheritdoc/>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (permitCount == 0)
        {
            return ProbeOrWaitAsync(cancellationToken);
        }

        TokenBucket.ValidateTokens(permitCount, _bucket.Capacity);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<RateLimitLease>(cancellationToken);
        }

        if (_bucket.TryAcquire(permitCount, out TimeSpan retryAfter))
        {
            CountExtra(permitCount);
            return new ValueTask<RateLimitLease>(BucketLease.Success);
        }

        // Read first (session 22): while the queue is full, most refusals decide from this read (the queue was full at that
        // moment) without the add and its undo, two locked writes on a line every acquirer uses, whose brief overshoot
        // could also refuse a concurrent call that fits.
        bool full = Volatile.Read(ref _queuedPermits) + permitCount > _queueLimit;
        if (!full && Interlocked.Add(ref _queuedPermits, permitCount) > _queueLimit)
        {
            Interlocked.Add(ref _queuedPermits, -permitCount); // the exact check lost to a concurrent call: undo
            full = true;
        }

        if (full)
        {
            return new ValueTask<RateLimitLease>(BucketLease.Failed(BehindQueue(permitCount, retryAfter)));
        }

        Interlocked.Increment(ref _waits);
        return WaitAsync(permitCount, cancellationToken);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed.IsCancellationRequested)
        {
            _disposed.Cancel(); // queued waits end with a failed lease
            if (_ownsBucket)
            {
                if (_bucket.Name is not null)
                {
                    TokenBucketMetrics.Unregister(_bucket); // a disposed limiter stops reporting, as a disposed buffer does (a wrapped bucket keeps reporting: other code may still use it)
                }

                _bucket.StopTimers(); // the pump's timer and its system-timer fallback (a wrapped bucket's are its owner's)
            }
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc/>
    protected override ValueTask DisposeAsyncCore()
    {
        Dispose(true);
        return ValueTask.CompletedTask;
    }

    // A queued wait allocates nothing in steady state: it is a pooled operation (QueuedAcquire, from this limiter's pool),
    // and its waiter registers on the caller's token and on the limiter's own lifetime token (no linked source per wait).
    // Before (session 14) it was an async method, whose box (a Task, 128 B) was the one allocation left; the runtime's
    // pooling builder was tried and dropped, because its pool takes a box back on any read, so a caller blocking on an
    // incomplete lease broke other callers' leases (PrematureBlockingRead_OfOneQueuedLease_DoesNotBreakAnotherCallersLease).
    // The operation takes itself back only when its result is read after completion: a read before completion blocks
    // until the lease is decided, as the BCL's Task-backed leases block, and a second read throws for the misuser alone.
    // A cancellation by the caller's token reports that token (`when (e.CancellationToken == ct)` filters match, as with
    // the BCL's limiters); one by disposal is a failed lease.
    private ValueTask<RateLimitLease> WaitAsync(int permitCount, CancellationToken cancellationToken) =>
        RentQueued().Run(permitCount, probe: false, cancellationToken);

    /// <summary>
    /// AcquireAsync(0): a probe when a permit is there; otherwise waits, FIFO like any waiter, until the bucket holds
    /// one (RateLimiter's contract: "wait until permits are replenished"), then takes nothing. Such a wait is queued
    /// whatever the QueueLimit (it holds no permits, as in the BCL's limiters); it waits for one token and gives it back.
    /// </summary>
    private ValueTask<RateLimitLease> ProbeOrWaitAsync(CancellationToken cancellationToken)
    {
        if (_bucket.AvailableTokens > 0)
        {
            Interlocked.Decrement(ref _tokensBeyondLeases); // a successful lease that took no token
            return new ValueTask<RateLimitLease>(BucketLease.Success);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<RateLimitLease>(cancellationToken);
        }

        return WaitForPermitAsync(cancellationToken);
    }

    private ValueTask<RateLimitLease> WaitForPermitAsync(CancellationToken cancellationToken) =>
        RentQueued().Run(permits: 1, probe: true, cancellationToken);

    private QueuedAcquire RentQueued() => _queuedAcquires.Rent() ?? new QueuedAcquire(this);

    /// <summary>
    /// A queued <c>AcquireAsync</c> as a pooled operation (see the comment at <see cref="WaitAsync"/>): waits in the bucket's
    /// FIFO queue, then answers the lease. With <c>probe</c> (<c>AcquireAsync(0)</c>) it waits for one token and gives it
    /// back; otherwise it keeps its permits and takes them off the queued count however it ends.
    /// </summary>
    private sealed class QueuedAcquire(LockFreeTokenBucketRateLimiter limiter) : PooledOperation<RateLimitLease>(blockingReadWaits: true)
    {
        private int _permits;
        private bool _probe;
        private CancellationToken _token;
        private ValueTask<bool> _wait; // the bucket's wait, parked on (set before the park publishes it)

        public ValueTask<RateLimitLease> Run(int permits, bool probe, CancellationToken token)
        {
            _permits = permits;
            _probe = probe;
            _token = token;
            return Start();
        }

        protected override bool Advance(bool resumed, out RateLimitLease result)
        {
            bool parked = false;
            try
            {
                if (!resumed)
                {
                    _wait = limiter._bucket.AcquireAfterRefusalAsync(_permits, _token, limiter._disposed.Token);
                    if (!_wait.IsCompleted)
                    {
                        parked = true;
                        result = null!;
                        return Park(_wait); // the rest runs as the wait's continuation: nothing here touches the operation after this
                    }
                }

                ValueTask<bool> wait = _wait;
                _wait = default;
                try
                {
                    wait.GetAwaiter().GetResult(); // recycles the bucket's waiter; a cancellation throws
                }
                catch (OperationCanceledException e) when (e.CancellationToken != _token)
                {
                    // The wait reported the lifetime token: disposal ended it. Decided by the token the wait reported, not by
                    // whether the caller's token is cancelled by now: a caller cancelling as disposal ended the wait got that
                    // exception, carrying the limiter's private token, which its `when (e.CancellationToken == ct)` filter
                    // missed (review, session 14).
                    Interlocked.Increment(ref limiter._otherFailures);
                    result = BucketLease.FailedNoHint; // disposed while waiting: no retry hint (as the BCL's limiters), never "retry now"
                    return true;
                }

                if (_probe)
                {
                    limiter._bucket.ReturnGrant(1); // the wait only had to see a permit: give it back (the admitted count falls back too) and serve the next waiter
                    Interlocked.Decrement(ref limiter._tokensBeyondLeases); // a successful lease that took no token
                }
                else
                {
                    limiter.CountExtra(_permits);
                }

                result = BucketLease.Success;
                return true;
            }
            finally
            {
                if (!parked && !_probe) // `parked` first: once parked, the operation may be another caller's already
                {
                    Interlocked.Add(ref limiter._queuedPermits, -_permits);
                }
            }
        }

        protected override void Release()
        {
            _token = default;
            _wait = default;
            limiter._queuedAcquires.Return(this);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private RateLimitLease AttemptMany(int permitCount)
    {
        TokenBucket.ValidateTokens(permitCount, _bucket.Capacity);
        if (_bucket.TryAcquire(permitCount, out TimeSpan retryAfter))
        {
            CountExtra(permitCount);
            return BucketLease.Success;
        }

        return BucketLease.Failed(BehindQueue(permitCount, retryAfter));
    }

    /// <summary>
    /// A refusal's hint while waits are queued: the bucket's hint covers the oldest waiter only (plus this request), so
    /// a client that honoured it behind several waiters was refused again for sure; this one waits for every queued
    /// permit, then this request's (as the BCL's bucket counts its queue). The bucket's own hint when nothing is queued.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TimeSpan BehindQueue(int permitCount, TimeSpan retryAfter)
    {
        long queued = Volatile.Read(ref _queuedPermits);
        if (queued <= 0)
        {
            return retryAfter;
        }

        TimeSpan all = _bucket.UntilAvailableBehind(queued, permitCount);
        return all > retryAfter ? all : retryAfter;
    }

    private RateLimitLease Probe()
    {
        if (_bucket.AvailableTokens > 0)
        {
            Interlocked.Decrement(ref _tokensBeyondLeases); // a successful lease that took no token (the BCL counts it)
            return BucketLease.Success;
        }

        Interlocked.Increment(ref _otherFailures);
        return BucketLease.Failed(BehindQueue(1, _bucket.UntilAvailable(1))); // when a permit will be there, behind the queue (the BCL's probe carries RetryAfter too)
    }

    private void CountExtra(int permitCount)
    {
        if (permitCount > 1)
        {
            Interlocked.Add(ref _tokensBeyondLeases, permitCount - 1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed()
    {
        if (_disposed.IsCancellationRequested)
        {
            ThrowDisposed();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(LockFreeTokenBucketRateLimiter));
}
