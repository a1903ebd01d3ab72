using System.Diagnostics;
using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Throttling;

namespace LockFree;

// Design: the public face of TokenBucketCore<RealAtomics> (the lock-free GCRA engine, see its design note) plus
// FIFO asynchronous waiting.
//
// Waiting: a waiter links itself into a WaiterList (pooled IValueTaskSource waiters, allocation-free in steady
// state) and sets the engine's Waiting flag, so every later TryAcquire takes the slow path and is refused while
// anyone waits: nobody barges past a waiter. A pump, serialised by _pumpLock, grants the oldest waiter its
// tokens (taken exactly, charged at that instant), unlinks it and completes it; when the head cannot be served
// it re-arms one reusable ITimer for the instant the bucket will hold the head's tokens. A waiter cancelled or
// timed out meanwhile is unlinked by its own callback (which re-runs the pump); a grant that loses the race with
// a cancellation is refunded, so cancellation leaves no trace and loses no tokens. When the list empties the
// pump clears the Waiting flag. The pump never runs user code: completions hop to the thread pool.

/// <summary>
/// A lock-free token bucket: holds up to <see cref="Capacity"/> tokens, refilled continuously at
/// <see cref="TokensPerSecond"/> (fractional rates allowed), lazily from the <see cref="TimeProvider"/>'s
/// timestamps. A successful <see cref="TryAcquire(int)"/> reads no clock and is at most one compare-and-swap; on a
/// bucket whose <see cref="FastPathBatch"/> is 128 or more, most successes take a token from the calling thread's own
/// cache with no locked instruction at all. A refusal allocates nothing and throws nothing.
/// </summary>
/// <remarks>
/// <para>
/// Accuracy: over any window of length <c>elapsed</c>, the tokens admitted never exceed
/// <c>Capacity + TokensPerSecond * elapsed</c>, with any number of concurrent callers. The rate is rounded down
/// to the clock's resolution (<see cref="EffectiveTokensPerSecond"/>, within 1/4096 for ordinary rates).
/// </para>
/// <para>
/// Exactness: tokens are pre-credited to a lock-free batch of up to <see cref="FastPathBatch"/> tokens and charged
/// when the batch settles, so the bucket may refuse while an exact bucket would still hold up to
/// <c>FastPathBatch - 1</c> tokens (it never admits more than an exact one). <c>FastPathBatch = 1</c> is exact and
/// reads the clock on every call. The default is <c>Capacity / 16</c>, between 1 and 1024.
/// </para>
/// <para>
/// Thread caches (a batch of 128 or more): a thread takes <c>FastPathBatch / 64</c> tokens (at most 16) from the batch
/// at once and spends them without a locked instruction. Each refill of the bucket ends every cache: the tokens left
/// in other threads' caches are charged but never admitted, so under contention a refusal may come while an exact
/// bucket would hold up to about <c>(threads - 1) x 15</c> tokens more than the batch slack above. Never more is admitted.
/// </para>
/// <para>
/// Fairness: <see cref="AcquireAsync(int, CancellationToken)"/> waits in arrival order. While anyone waits,
/// <see cref="TryAcquire(int)"/> refuses (it does not barge past the queue).
/// </para>
/// </remarks>
[DebuggerDisplay("TokenBucket: Capacity = {Capacity}, TokensPerSecond = {TokensPerSecond}")]
public sealed class TokenBucket : ITokenBucketMetricsSource
{
    /// <summary>The largest default fast-path batch (amortises the clock read to a few hundredths of a nanosecond).</summary>
    public const int MaxDefaultBatch = 1024;

    private TokenBucketCore<RealAtomics> _core; // mutable struct: never copy
    private readonly double _tokensPerSecond;
    private readonly WaiterList _waiters;
    private readonly object _pumpLock = new();
    private readonly string? _name;
    private ITimer? _timer;
    private long _tokensBeyondLeases; // adapter statistics only (keyed adapter): admitted tokens that are not leases of their own
    private long _headDueUnits; // engine units: when the pump's timer is due to serve the oldest waiter (a hint for refusals behind it)
    private long _refundOwed; // tokens granted to nobody and not yet given back (guarded by _pumpLock): a refund whose clock read threw is retried by the next pump
    private long _clockFailures; // exceptions caught in the pump (see ClockFailed): rare path
    private long _pumpRetryTicks; // the pump's current retry back-off in TimeSpan ticks, 0 after a pump that succeeded (guarded by _pumpLock)
    private ITimer? _retryTimer; // a TimeProvider.System timer for the pump's retry when the clock's own timer cannot be created or armed (guarded by _pumpLock)
    private bool _timersStopped; // StopTimers ran (the owner disposed, or the keyed table retired the bucket): a failure retry is armed only for a queued waiter (guarded by _pumpLock)

    /// <summary>Creates a full bucket of <paramref name="capacity"/> tokens refilled at <paramref name="tokensPerSecond"/>, with the default fast-path batch.</summary>
    /// <param name="capacity">Tokens the bucket holds when full (the largest burst); 1 to 2^40 - 1.</param>
    /// <param name="tokensPerSecond">Refill rate; positive and finite, fractions allowed.</param>
    /// <param name="timeProvider">The only source of time; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A non-positive or non-finite rate, or a capacity out of range.</exception>
    public TokenBucket(long capacity, double tokensPerSecond, TimeProvider? timeProvider = null)
        : this(capacity, tokensPerSecond, DefaultBatch(capacity), timeProvider)
    {
    }

    /// <summary>As <see cref="TokenBucket(long, double, TimeProvider?)"/>, with an explicit fast-path batch (1 = exact, clock read per call).</summary>
    /// <param name="capacity">Tokens the bucket holds when full (the largest burst); 1 to 2^40 - 1.</param>
    /// <param name="tokensPerSecond">Refill rate; positive and finite, fractions allowed.</param>
    /// <param name="fastPathBatch">Tokens pre-credited per refill; 1 to <paramref name="capacity"/>.</param>
    /// <param name="timeProvider">The only source of time; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A non-positive or non-finite rate, a capacity out of range, or a batch outside 1..capacity.</exception>
    public TokenBucket(long capacity, double tokensPerSecond, int fastPathBatch, TimeProvider? timeProvider = null)
        : this(capacity, tokensPerSecond, fastPathBatch, timeProvider, threadCache: -1)
    {
    }

    /// <summary>
    /// As the public constructors; <paramref name="threadCache"/> tokens per thread cache (0: none; -1: the default for
    /// the batch); <paramref name="leanRefusalCount"/> counts memo refusals with a locked add on the bucket instead of
    /// per-thread slots (keyed tables: many buckets).
    /// </summary>
    internal TokenBucket(long capacity, double tokensPerSecond, int fastPathBatch, TimeProvider? timeProvider, long threadCache, bool leanRefusalCount = false)
    {
        _core = new TokenBucketCore<RealAtomics>(capacity, tokensPerSecond, fastPathBatch, timeProvider ?? TimeProvider.System,
            threadCache < 0 ? TokenBucketCore<RealAtomics>.DefaultThreadCache(fastPathBatch) : threadCache, leanRefusalCount);
        _tokensPerSecond = tokensPerSecond;
        _waiters = new WaiterList(error => FailureReport.Raise(ref _clockFailures, ClockFailed, this, error)); // a timed wait's timer (Waiter.Detach)
        _waiters.Unlinked = Pump;
    }

    /// <summary>The default fast-path batch for <paramref name="capacity"/>: <c>Capacity / 16</c>, between 1 and <see cref="MaxDefaultBatch"/>.</summary>
    public static int DefaultBatch(long capacity) => (int)Math.Clamp(capacity / 16, 1, MaxDefaultBatch);

    /// <summary>Tokens the bucket holds when full.</summary>
    public long Capacity => _core.Capacity;

    /// <summary>The configured refill rate.</summary>
    public double TokensPerSecond => _tokensPerSecond;

    /// <summary>The rate actually enforced: the configured one rounded down to the clock's resolution.</summary>
    public double EffectiveTokensPerSecond => _core.EffectiveTokensPerSecond;

    /// <summary>Tokens pre-credited per refill of the lock-free fast path (1 = exact).</summary>
    public int FastPathBatch => (int)_core.Batch;

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider => _core.Time;

    /// <summary>An optional name; a named bucket reports through the <c>LockFree</c> meter (see <see cref="TokenBucketMetrics"/>).</summary>
    public string? Name
    {
        get => _name;
        init
        {
            _name = value;
            if (value is not null)
            {
                TokenBucketMetrics.Register(this);
            }
        }
    }

    /// <summary>Tokens available now (a snapshot that reads the clock; 0 while waiters are served first).</summary>
    public long AvailableTokens => _waiters.Count > 0 ? 0 : _core.Available();

    /// <summary>Asynchronous waiters queued now (a snapshot).</summary>
    public int QueuedWaiters => _waiters.Count;

    /// <summary>
    /// Tokens admitted so far (a snapshot; tokens of the open fast-path batch are counted when it settles, and tokens
    /// left in a thread cache when a settlement ended it count until that thread's next acquire reports them).
    /// </summary>
    public long AdmittedTokens => _core.SettledTokens;

    /// <summary>Refused acquires so far (a snapshot).</summary>
    public long RefusedCount => _core.RefusedCount;

    long ITokenBucketMetricsSource.Limit => Capacity;

    /// <summary>
    /// Exceptions of the <see cref="System.TimeProvider"/> (a clock reading, or creating or arming the pump's timer) caught
    /// while serving the wait queue, and exceptions a timed <c>AcquireAsync</c>'s timer threw from its Dispose when the wait
    /// was released (its outcome stands) (a snapshot). The queue is not stalled by one: the pump retries after a back-off
    /// (1 ms, doubling to 1 s), so queued waiters are served once the clock works again, and no token is lost or minted.
    /// When the clock cannot create or arm the pump's timer, the retry runs on a <see cref="System.TimeProvider.System"/>
    /// timer (real time, same back-off): it needs no other caller.
    /// </summary>
    public long ClockFailureCount => Interlocked.Read(ref _clockFailures);

    /// <summary>
    /// Raised for each failure counted in <see cref="ClockFailureCount"/>, on the thread that met it (often the pump's
    /// timer thread, where nothing may escape); the handler's own exceptions are swallowed.
    /// </summary>
    public event EventHandler<Exception>? ClockFailed;

    /// <summary>Takes <paramref name="tokens"/> if the bucket holds them and nobody waits; otherwise takes nothing.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above <see cref="Capacity"/>.</exception>
    /// <exception cref="InvalidOperationException">The bucket came from <see cref="KeyedTokenBucket{TKey}.TryGetBucket"/> and was evicted since (look the key up again).</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAcquire(int tokens = 1)
    {
        if (tokens < 1) // folds away for a constant cost; the capacity check waits for the slow path (see below)
        {
            ThrowTokensOutOfRange(tokens);
        }

        if (_core.TryMemoRefusalFirst(tokens, out _))
        {
            return false;
        }

        return _core.TryTake(tokens) || TryAcquireSlow(tokens, out _);
    }

    /// <summary>
    /// As <see cref="TryAcquire(int)"/>; on refusal, <paramref name="retryAfter"/> is when the bucket alone will
    /// hold the tokens, and with waiters queued at least until the oldest is served plus this request's tokens (a hint:
    /// the waiters behind the oldest are served first too).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above <see cref="Capacity"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAcquire(int tokens, out TimeSpan retryAfter)
    {
        if (tokens < 1) // folds away for a constant cost; the capacity check waits for the slow path (see below)
        {
            ThrowTokensOutOfRange(tokens);
        }

        if (_core.TryMemoRefusalFirst(tokens, out long leftMs))
        {
            retryAfter = new TimeSpan(leftMs * TimeSpan.TicksPerMillisecond); // as the slow path's memo refusal
            return false;
        }

        if (_core.TryTake(tokens))
        {
            retryAfter = default; // not TimeSpan.Zero: a static read the JIT guards with a class-init check
            return true;
        }

        return TryAcquireSlow(tokens, out retryAfter);
    }

    /// <summary>
    /// After the fast path failed. A request above the capacity can never pass the fast path (the batch holds at
    /// most the capacity, and any flag makes the range check fail), so checking it here, not on every call, loses nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryAcquireSlow(int tokens, out TimeSpan retryAfter)
    {
        if (tokens > _core.Capacity)
        {
            ThrowTokensOutOfRange(tokens);
        }

        AcquireStatus status = _core.AcquireSlow(tokens, out retryAfter);
        if (status == AcquireStatus.Acquired)
        {
            return true;
        }

        if (status == AcquireStatus.Retired)
        {
            ThrowRetired();
        }

        if (_waiters.Count > 0)
        {
            retryAfter = BehindWaitersHint(tokens, retryAfter);
        }

        return false;
    }

    /// <summary>
    /// A refusal while waiters are queued: the bucket alone may already hold the tokens (a hint of zero, "retry now",
    /// which is refused for sure), so the hint is at least until the oldest waiter is served, plus this request's tokens.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TimeSpan BehindWaitersHint(int tokens, TimeSpan bucketHint)
    {
        long untilHead = Math.Max(Volatile.Read(ref _headDueUnits) - _core.Now(), 0); // acquire: the pump's last arming (a hint)
        TimeSpan behind = _core.ToTimeSpan(untilHead + (tokens * _core.Interval));
        return behind > bucketHint ? behind : bucketHint;
    }

    /// <summary>
    /// Waits, in arrival order, until <paramref name="tokens"/> are taken. Completes synchronously when they are
    /// available and nobody waits; allocation-free in steady state otherwise.
    /// </summary>
    /// <returns>True (the tokens were taken).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above <see cref="Capacity"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first; no tokens were taken.</exception>
    public ValueTask<bool> AcquireAsync(int tokens = 1, CancellationToken cancellationToken = default) =>
        AcquireAsync(tokens, Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>
    /// As <see cref="AcquireAsync(int, CancellationToken)"/>, giving up after <paramref name="timeout"/>
    /// (a finite timeout on <see cref="System.TimeProvider.System"/> is a timer of the library's shared timer wheel: nothing allocated; on another
    /// clock it allocates one timer of that clock for the wait).
    /// </summary>
    /// <returns>True when the tokens were taken; false when the timeout passed first (nothing was taken).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above <see cref="Capacity"/>, or <paramref name="timeout"/> is negative (other than infinite) or above about 49.7 days (the longest a timer can be armed for; checked before anything is queued).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first; no tokens were taken.</exception>
    /// <exception cref="InvalidOperationException">The bucket came from <see cref="KeyedTokenBucket{TKey}.TryGetBucket"/> and was evicted since (look the key up again); a wait already queued fails with it too.</exception>
    public ValueTask<bool> AcquireAsync(int tokens, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if ((ulong)(tokens - 1L) >= (ulong)_core.Capacity)
        {
            ThrowTokensOutOfRange(tokens);
        }

        if ((timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan) || timeout > Timers.Wakeups.MaxDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be infinite or between 0 and about 49.7 days (the longest a timer can be armed for).");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        AcquireStatus status = _core.TryAcquire(tokens, out _);
        if (status == AcquireStatus.Acquired)
        {
            return new ValueTask<bool>(true);
        }

        if (status == AcquireStatus.Retired)
        {
            ThrowRetired();
        }

        if (timeout == TimeSpan.Zero)
        {
            return new ValueTask<bool>(false);
        }

        return Enqueue(tokens, timeout, cancellationToken);
    }

    /// <summary>Joins the wait queue without first trying (the caller's own attempt was just refused).</summary>
    internal ValueTask<bool> AcquireAfterRefusalAsync(int tokens, CancellationToken cancellationToken, CancellationToken alsoCancelledBy = default) =>
        cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<bool>(cancellationToken)
        : alsoCancelledBy.IsCancellationRequested ? ValueTask.FromCanceled<bool>(alsoCancelledBy)
        : Enqueue(tokens, Timeout.InfiniteTimeSpan, cancellationToken, alsoCancelledBy);

    private ValueTask<bool> Enqueue(int tokens, TimeSpan timeout, CancellationToken cancellationToken, CancellationToken alsoCancelledBy = default)
    {
        Waiter waiter;
        short version;
        using (InterruptDeferral.Lock(_pumpLock))
        {
            waiter = _waiters.RentAndLink(synchronous: false, tag: tokens);
            version = waiter.Version;
            if (!_core.HasWaitingFlag)
            {
                _core.SetWaiting(true); // from now on TryAcquire refuses: no barging past the queue
            }
        }

        try
        {
            waiter.Arm(timeout, cancellationToken, alsoCancelledBy, _core.Time); // two registrations (the adapter's lifetime token): no linked source
        }
        catch
        {
            TakeBack(waiter, tokens);
            throw;
        }

        Pump();
        return new ValueTask<bool>(waiter, version);
    }

    /// <summary>
    /// Takes back a queued waiter whose arming threw (a user's clock failed to create its timeout timer), so the
    /// exception leaves nothing behind: unlinked, or when the pump granted it first, its tokens refunded; then the pump
    /// serves the rest or clears the Waiting flag its link set. Before, the waiter stayed queued and never awaited: a
    /// later grant went to it (tokens lost), and as the only waiter it kept the flag up, so the bucket refused everyone.
    /// </summary>
    private void TakeBack(Waiter waiter, int tokens)
    {
        if (waiter.TryFinishQuietly())
        {
            _waiters.Unlink(waiter);
            _waiters.Return(waiter);
        }
        else if (waiter.Status == WaitStatus.Signaled)
        {
            OweRefund(tokens); // granted before the throw: the grant never reached anyone (the pump below gives it back)
        }

        Pump();
    }

    /// <summary>
    /// Serves the queue in order as far as the bucket allows, then re-arms the timer or clears the Waiting flag. Never
    /// throws: it runs on the timer's thread (where an exception would end the process) and after a waiter was linked
    /// (where throwing would strand it). A failure of the clock is counted, reported (<see cref="ClockFailed"/>) and
    /// retried after a back-off; the engine takes or charges nothing on a failed reading, and a refund owed is kept.
    /// </summary>
    private void Pump()
    {
        try
        {
            PumpCore();
        }
        catch (Exception ex)
        {
            PumpFailed(ex);
        }
    }

    /// <summary>
    /// Counts and reports a pump's failure, then arms the timer to pump again after the back-off. When the clock cannot
    /// create or arm that timer either, the retry is armed on a timer of <see cref="TimeProvider.System"/> instead (real
    /// time, the same back-off), so the queue keeps retrying by itself, at least once a second, until the clock works or
    /// the queue empties. Before (review of 2026-11-23), a second failure gave up: a queued waiter sat until some other
    /// caller's acquire, cancellation or refund ran the pump again.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PumpFailed(Exception ex)
    {
        FailureReport.Raise(ref _clockFailures, ClockFailed, this, ex); // outside the pump lock: the handler is user code
        TimeSpan retry;
        Exception? again = null;
        using (InterruptDeferral.Lock(_pumpLock))
        {
            if (!RetryNeeded())
            {
                return; // nothing to retry for, or timers stopped for good (s12: before, this created the pump's timer after the stop)
            }

            retry = FailureReport.NextRetry(ref _pumpRetryTicks);
            try
            {
                _timer ??= CreatePumpTimer();
                _timer.Change(retry, Timeout.InfiniteTimeSpan);
            }
            catch (Exception e)
            {
                again = e;
            }
        }

        if (again is not null)
        {
            // The clock's timer cannot be created or armed either: reported (outside the lock), and the retry goes on a system timer.
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, again);
            ArmFallbackRetry(retry);
        }
    }

    /// <summary>
    /// Arms the pump's retry on <see cref="TimeProvider.System"/> (created once, on the first need, kept for the bucket's
    /// life; a spurious pump from it later is harmless). A failure here (the runtime's own timer: out of memory) is
    /// swallowed: the next acquire, cancellation or refund pumps again, as before.
    /// </summary>
    private void ArmFallbackRetry(TimeSpan retry)
    {
        try
        {
            using (InterruptDeferral.Lock(_pumpLock))
            {
                // Nothing to retry for: arm nothing (RetryNeeded). A waiter linked later runs the pump itself. This also
                // keeps a pump that failed while its owner was disposed, or after an eviction (StopTimers), from creating
                // a fresh fallback afterwards.
                if (RetryNeeded())
                {
                    UnflowedTimer.ArmSystemFallback(ref _retryTimer, static state => ((TokenBucket)state!).Pump(), this, retry);
                }
            }
        }
        catch (Exception)
        {
            // Nothing left to schedule with; not reported again (the clock's failure just was).
        }
    }

    /// <summary>
    /// Whether a failed pump must be retried on a timer (under <see cref="_pumpLock"/>): a waiter is queued (or the
    /// Waiting flag is still up), or a refund is owed, on a bucket that is not retired and whose timers were not
    /// stopped. A retired bucket admits nothing again (its waiters fail without a clock reading, a refund to it is void)
    /// and a stopped one (<see cref="StopTimers"/>: the owner disposed, or evicted) leaves an owed refund to the next
    /// pump (a later wait or refund on the bucket itself), so neither creates a timer after the stop: before (s12) a
    /// refund whose clock failed there created the pump's timer, or a <see cref="TimeProvider.System"/> fallback, which
    /// then kept the bucket alive and fired again and again while the clock failed.
    /// </summary>
    private bool RetryNeeded()
    {
        if (_core.IsRetired)
        {
            return false;
        }

        return _waiters.Count > 0 || _core.HasWaitingFlag || (_refundOwed != 0 && !_timersStopped);
    }

    /// <summary>
    /// For the bucket's owner when it is disposed (a <see cref="LockFreeTokenBucketRateLimiter"/> built from options; the
    /// bucket itself has no Dispose: a bare bucket's timers are armed only while waiters queue, and an unarmed one holds
    /// nothing): disposes the pump's timer and its <see cref="TimeProvider.System"/> fallback, so neither fires again. The
    /// owner ends its waits first, so a pump running later (a fallback already firing, a cancelled waiter's unlink) finds
    /// nobody to time; a wait queued later on the bucket itself (through <see cref="LockFreeTokenBucketRateLimiter.Bucket"/>)
    /// creates a fresh timer. A pump that fails afterwards with nobody waiting (a refund whose clock throws) creates
    /// none: the refund stays owed to the next pump (<see cref="RetryNeeded"/>; s12). Before (session 11) neither was ever disposed: the fallback could fire after the owner's
    /// Dispose, and the pump's timer stayed registered with a user's <see cref="TimeProvider"/> that tracks its timers.
    /// </summary>
    internal void StopTimers()
    {
        ITimer? timer;
        using (InterruptDeferral.Lock(_pumpLock))
        {
            _timersStopped = true; // from now on a failure retry is armed only for a waiter queued on the bucket itself (RetryNeeded)
            _retryTimer?.Dispose(); // a system timer: never throws
            _retryTimer = null;
            timer = _timer;
            _timer = null;
        }

        timer?.Dispose(); // the clock's timer (user code): outside the lock
    }

    /// <summary>
    /// For a keyed table that has just retired this bucket (an eviction; s11-rev): disposes its timers, as
    /// <see cref="StopTimers"/>. Safe by the eviction contract: a retired bucket admits nothing, and a wait queued on it
    /// later (by a thread that looked it up before the eviction) fails at once, its pump answering Retired before any
    /// clock reading, so nothing arms a timer again. A timer whose Dispose throws (user code: the clock's timer) is
    /// counted and raised through <see cref="ClockFailed"/>, never thrown into the sweeping caller (an acquire of
    /// another key). Before, an evicted bucket kept its pump's timer for good.
    /// </summary>
    internal void StopTimersAfterRetire()
    {
        try
        {
            StopTimers();
        }
        catch (Exception ex)
        {
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, ex);
        }
    }

    /// <summary>The pump's system-timer fallback, once created (tests: <see cref="StopTimers"/> disposes it).</summary>
    internal ITimer? FallbackTimer
    {
        get
        {
            using (InterruptDeferral.Lock(_pumpLock))
            {
                return _retryTimer;
            }
        }
    }

    private ITimer CreatePumpTimer() =>
        UnflowedTimer.Create(_core.Time, static state => ((TokenBucket)state!).Pump(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); // not the first waiter's context: kept for the bucket's life

    /// <summary>Records tokens granted to nobody; the next pump gives them back (a refund whose clock read throws stays owed).</summary>
    private void OweRefund(long tokens)
    {
        using (InterruptDeferral.Lock(_pumpLock))
        {
            _refundOwed += tokens;
        }
    }

    private void PumpCore()
    {
        using (InterruptDeferral.Lock(_pumpLock))
        {
            if (_refundOwed != 0)
            {
                if (!_core.IsRetired)
                {
                    _core.Refund(_refundOwed); // throws before charging anything when the clock fails: still owed
                }

                _refundOwed = 0; // paid, or void on a retired bucket (it admits nothing again): no clock reading, so its waiters fail below
            }

            while (_waiters.TryPeek(out Waiter? head, out int generation))
            {
                long tokens = head.Tag;
                AcquireStatus status = _core.TryAcquireForWaiter(tokens, out long wait);
                if (status == AcquireStatus.Retired)
                {
                    // Evicted from its keyed table (a waiter linked after the retire): the bucket never admits again, so
                    // every waiter fails with the error TryAcquire throws instead of waiting (and re-arming) forever.
                    _waiters.CompletionError = new InvalidOperationException(RetiredMessage);
                    _waiters.FinishAll(WaitStatus.Completed);
                    continue;
                }

                if (status == AcquireStatus.Acquired)
                {
                    if (!_waiters.TryPopIfHead(head, generation) || !head.TryFinish(WaitStatus.Signaled, generation))
                    {
                        _refundOwed += tokens; // cancelled or timed out meanwhile: the grant never happened
                        _core.Refund(_refundOwed); // throws before charging anything when the clock fails: still owed
                        _refundOwed = 0;
                    }

                    continue;
                }

                _timer ??= CreatePumpTimer();
                Volatile.Write(ref _headDueUnits, _core.Now() + wait); // release: a hint for refusals behind the queue
                TimeSpan due = wait == 0 ? TimeSpan.FromMilliseconds(1) : _core.ToTimeSpan(wait);
                _timer.Change(due > Timers.Wakeups.MaxDelay ? Timers.Wakeups.MaxDelay : due, Timeout.InfiniteTimeSpan); // a longer wait than a timer takes: wake early, pump again, re-arm
                _pumpRetryTicks = 0; // a pump that got this far succeeded: the next failure starts the back-off afresh
                return;
            }

            if (_core.HasWaitingFlag)
            {
                _core.SetWaiting(false);
            }

            _pumpRetryTicks = 0;
        }
    }

    /// <summary>
    /// How long until <paramref name="tokens"/> could be taken behind <paramref name="queuedTokens"/> tokens of queued
    /// waiters, all served first: until the bucket has produced all of them (saturates at <see cref="TimeSpan.MaxValue"/>).
    /// </summary>
    internal TimeSpan UntilAvailableBehind(long queuedTokens, int tokens)
    {
        double units = _core.WaitHint(tokens) + ((double)queuedTokens * _core.Interval); // double: no overflow on very slow buckets
        return units >= long.MaxValue ? TimeSpan.MaxValue : _core.ToTimeSpan((long)units);
    }

    /// <summary>
    /// For <see cref="LockFreeKeyedRateLimiter{TResource, TKey}"/>'s per-key statistics: admitted tokens that are not
    /// successful leases of their own (the extra permits of multi-permit leases, less zero-permit probes that found permits).
    /// </summary>
    internal long TokensBeyondLeases => Volatile.Read(ref _tokensBeyondLeases);

    /// <summary>Adds to <see cref="TokensBeyondLeases"/> (rare paths only: multi-permit leases and probes).</summary>
    internal void AddTokensBeyondLeases(long delta) => Interlocked.Add(ref _tokensBeyondLeases, delta);

    /// <summary>
    /// How long until <paramref name="tokens"/> could be taken, without taking anything (the retry hint of a zero-permit
    /// probe that found nothing): the bucket's own wait, and behind queued waiters at least until the oldest is served.
    /// </summary>
    internal TimeSpan UntilAvailable(int tokens)
    {
        TimeSpan hint = _core.ToTimeSpan(_core.WaitHint(tokens));
        return _waiters.Count > 0 ? BehindWaitersHint(tokens, hint) : hint;
    }

    /// <summary>
    /// Gives back tokens a waiter was granted and did not keep (the adapter's zero-permit wait, which only had to see
    /// one), then serves the queue: the pump re-armed for the next waiter before the tokens came back.
    /// </summary>
    internal void ReturnGrant(int tokens)
    {
        OweRefund(tokens);
        Pump(); // gives the tokens back (kept owed and retried if the clock throws), then serves the queue
    }

    /// <summary>The engine's acquire with its three-way answer (keyed tables react to Retired).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal AcquireStatus TryAcquireCore(int tokens, out long waitUnits) => _core.TryAcquire(tokens, out waitUnits);

    /// <summary>How long the bucket has been full with nobody waiting; null when it is in use.</summary>
    internal TimeSpan? IdleDuration
    {
        get
        {
            long units = _waiters.Count > 0 ? -1 : _core.IdleUnits();
            return units < 0 ? null : _core.ToTimeSpan(units);
        }
    }

    /// <summary>
    /// Takes <paramref name="tokens"/> from every bucket of <paramref name="levels"/>, or from none: the levels are
    /// tried in order, and when one refuses, those before it get their tokens back. List the most specific level
    /// first (operation, then key, then global), so the common refusal touches no shared level at all.
    /// </summary>
    /// <remarks>
    /// A level given its tokens back while <see cref="AcquireAsync(int, CancellationToken)"/> waiters are queued on it
    /// serves them at once, oldest first (the tokens do not wait for the bucket's next timer tick).
    /// </remarks>
    /// <param name="levels">The buckets a request must pass, most specific first.</param>
    /// <param name="tokens">The cost, at least 1 and at most every level's capacity.</param>
    /// <param name="retryAfter">On refusal, the refusing level's hint.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above a level's capacity (checked before anything is taken).</exception>
    /// <exception cref="ArgumentNullException">A level is null.</exception>
    public static bool TryAcquireAll(ReadOnlySpan<TokenBucket> levels, int tokens, out TimeSpan retryAfter)
    {
        foreach (TokenBucket level in levels)
        {
            ArgumentNullException.ThrowIfNull(level, nameof(levels));
            ValidateTokens(tokens, level.Capacity);
        }

        for (int i = 0; i < levels.Length; i++)
        {
            bool acquired;
            try
            {
                acquired = levels[i].TryAcquire(tokens, out retryAfter);
            }
            catch
            {
                RefundBefore(levels, i, tokens); // a retired level (evicted from a keyed table) throws: all or nothing still
                throw;
            }

            if (!acquired)
            {
                RefundBefore(levels, i, tokens);
                return false;
            }
        }

        retryAfter = TimeSpan.Zero;
        return true;
    }

    private static void RefundBefore(ReadOnlySpan<TokenBucket> levels, int i, int tokens)
    {
        for (int j = i - 1; j >= 0; j--)
        {
            levels[j].RefundOrOwe(tokens); // never throws: a level whose clock fails still gets its tokens back
        }
    }

    /// <summary>
    /// Gives <paramref name="tokens"/> back; when the clock reading the refund needs throws, the tokens are owed
    /// instead (the failure counted and raised through <see cref="ClockFailed"/>) and the pump, which retries with its
    /// back-off, pays them. Before, <see cref="TryAcquireAll"/> let that exception out between two refunds: the level
    /// whose clock failed and every level before it kept the tokens taken for a request that was refused.
    /// </summary>
    /// <remarks>
    /// A refund into a bucket with queued waiters runs the pump at once, so the oldest waiter takes the tokens now, in
    /// order (the pump serves strictly from the head, and the Waiting flag keeps <see cref="TryAcquire(int)"/> out).
    /// Before (review of 2026-11-23), the tokens sat in the bucket until the pump's timer fired for the time the head would
    /// have waited without them. No waiter is missed: the refund ends with a release store of the engine's word after
    /// owning it with a locked CAS, and the waiter count is read after that; a waiter linked later runs the pump itself after
    /// linking, and its pump owns the same word after the refund's CAS (the CASes are totally ordered), so it sees the tokens.
    /// </remarks>
    internal void RefundOrOwe(int tokens)
    {
        try
        {
            _core.Refund(tokens);
        }
        catch (Exception error)
        {
            OweRefund(tokens); // the failed refund charged nothing (the engine reopens its word before the exception leaves)
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, error);
            Pump(); // pays what is owed, or arms its retry
            return;
        }

        if (_waiters.Count > 0)
        {
            Pump(); // serve the queue with the tokens now, not at the pump timer's next tick (never throws; no user code under its lock)
        }
    }

    /// <summary>Refusals made by the refill owner rather than on a refusal memo (tests check the memos renew).</summary>
    internal long OwnerRefusedCount => _core.OwnerRefusedCount;

    /// <summary>Tokens a thread takes into its own cache at once (0: no thread caches; see the engine's design note).</summary>
    internal long ThreadCache => _core.ThreadCache;

    /// <summary>Whether refusals made on a memo were counted on per-thread slots (tests: keyed buckets never are).</summary>
    internal bool HasPerThreadRefusalSlots => _core.HasPerThreadRefusalSlots;

    /// <summary>Threads holding a cache slot on this bucket (tests).</summary>
    internal int CachedThreads => _core.CachedThreads;

    /// <summary>Units of time per token (the engine's rounded interval; tests build exact models from it).</summary>
    internal long IntervalUnits => _core.Interval;

    /// <summary>Provider ticks are shifted left by this many bits to make the engine's time units.</summary>
    internal int UnitShift => _core.Shift;

    /// <summary>Converts the engine's wait units to time.</summary>
    internal TimeSpan ToTimeSpan(long units) => _core.ToTimeSpan(units);

    /// <summary>Retires the bucket if it is full and nobody waits (keyed-table eviction).</summary>
    internal bool TryRetireIfFull() => TryRetireIfIdle(out _);

    /// <summary>As <see cref="TryRetireIfFull"/>; on false, <paramref name="fullInUnits"/> is the earliest it could read full (engine units; 0 with waiters).</summary>
    internal bool TryRetireIfIdle(out long fullInUnits)
    {
        if (_waiters.Count != 0)
        {
            fullInUnits = 0;
            return false;
        }

        return _core.TryRetireIfIdle(out fullInUnits);
    }

    /// <summary>Validates a capacity and rate as the constructor would, naming them as the constructor does.</summary>
    internal static void ValidateOptions(long capacity, double tokensPerSecond)
    {
        TokenBucketCore<RealAtomics>.ValidateCapacity(capacity);
        TokenBucketCore<RealAtomics>.ValidateRate(tokensPerSecond);
    }

    internal static void ValidateTokens(int tokens, long capacity)
    {
        if ((ulong)(tokens - 1L) >= (ulong)capacity)
        {
            ThrowTokensOutOfRange(tokens, capacity);
        }
    }

    private const string RetiredMessage = "This bucket was evicted from its KeyedTokenBucket (it had refilled completely and sat idle): it admits nothing more. Look the key up again.";

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowRetired() => throw new InvalidOperationException(RetiredMessage);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowTokensOutOfRange(int tokens) => ThrowTokensOutOfRange(tokens, _core.Capacity);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTokensOutOfRange(int tokens, long capacity) =>
        throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"Tokens must be between 1 and the capacity ({capacity}).");
}
