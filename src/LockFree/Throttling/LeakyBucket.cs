using System.Diagnostics;
using LockFree.Backpressure;
using LockFree.Internal;

namespace LockFree;

// Design: a shaper, not a meter. Requests that arrive while the output is idle leave at once (one interval
// apart at most); the others wait in a bounded FIFO queue of pooled waiters (WaiterList: allocation-free in steady
// state) and leave one per interval, released by one reusable ITimer of the injected TimeProvider (the library's
// own pacing: there is no timer wheel to borrow ticks from yet). The release grid is kept while the timer is on
// time (no drift) and restarted from now when the timer fired more than an interval late (no catch-up burst), so
// departures are never closer than one interval. When the queue is full the overflow policy decides: Reject and
// DropIncoming refuse the newcomer (counted apart), DropOldest evicts the longest waiter (its wait answers false)
// and queues the newcomer. Wait is not offered: the queue is the wait, and waiting for room in it would make it
// unbounded. The state is guarded by one lock held for a few field updates; waiters complete on the thread pool,
// never under the lock.
//
// Exact rate: the interval between departures is TimestampFrequency / RequestsPerSecond clock ticks, rarely a whole
// number (10^7 / 3). It is kept as a fixed-point fraction Q + R/D ticks (D from the double rate's exact binary value,
// reduced), and the next departure as a whole tick plus a numerator below D; a departure is due at the first tick at
// or after its exact instant. So departures k are due at exactly ceil(k / rate) seconds on the grid (no drift, and no
// silent rounding of the rate). A rate above the clock's frequency (departures closer than one tick) is refused.
// Comparisons of timestamps are differences, so a clock that reads negative or wraps works too.

/// <summary>
/// A leaky bucket that shapes traffic: requests enter a bounded queue of <see cref="Capacity"/> and leave at a
/// constant <see cref="RequestsPerSecond"/>, paced by a timer of the injected <see cref="TimeProvider"/>.
/// Put a <see cref="TokenBucket"/> in front for bursty admission with smooth output.
/// </summary>
[DebuggerDisplay("LeakyBucket: Capacity = {Capacity}, RequestsPerSecond = {RequestsPerSecond}")]
public sealed class LeakyBucket : IDisposable
{
    private readonly object _lock = new();
    private readonly WaiterList _queue;
    private readonly TimeProvider _time;
    private readonly long _intervalWhole;    // Q: whole ticks of the interval
    private readonly long _intervalFraction; // R: the interval's fraction of a tick is R / D, 0 <= R < D
    private readonly long _denominator;      // D: at most 2^53 (a double's mantissa), so fraction sums fit a long
    private readonly double _requestsPerSecond;
    private long _nextRelease;               // the next departure's whole tick (guarded by _lock)
    private long _nextFraction;              // ... plus _nextFraction / D of a tick, 0 <= _nextFraction < D
    private ITimer? _timer;
    private ITimer? _retryTimer;             // a TimeProvider.System timer for the release's retry when the clock's timer cannot be armed (guarded by _lock)
    private bool _disposed;
    private long _released;
    private long _rejected;
    private long _dropped;
    private long _evicted;
    private long _clockFailures;             // exceptions caught in the pacing timer's callback (see ClockFailed): rare path
    private long _retryTicks;                // the release's current retry back-off in TimeSpan ticks, 0 after one that succeeded (guarded by _lock)

    /// <summary>Creates an empty leaky bucket.</summary>
    /// <param name="capacity">Requests that may wait at once; at least 1.</param>
    /// <param name="requestsPerSecond">The output rate; positive and finite, fractions allowed.</param>
    /// <param name="overflowPolicy">What happens to a request that finds the queue full: <see cref="OverflowPolicy.Reject"/>, <see cref="OverflowPolicy.DropIncoming"/> or <see cref="OverflowPolicy.DropOldest"/>.</param>
    /// <param name="timeProvider">The clock and its timers; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A capacity below 1, a rate that is not positive and finite, above the clock's
    /// <see cref="TimeProvider.TimestampFrequency"/> (departures closer than one tick) or so low that one interval overflows the clock,
    /// or <see cref="OverflowPolicy.Wait"/> or an undefined policy.</exception>
    public LeakyBucket(int capacity, double requestsPerSecond, OverflowPolicy overflowPolicy = OverflowPolicy.Reject, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        if (!double.IsFinite(requestsPerSecond) || requestsPerSecond <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(requestsPerSecond), requestsPerSecond, "The rate must be a positive, finite number of requests per second.");
        }

        if (overflowPolicy is not (OverflowPolicy.Reject or OverflowPolicy.DropIncoming or OverflowPolicy.DropOldest))
        {
            throw new ArgumentOutOfRangeException(nameof(overflowPolicy), overflowPolicy, "A leaky bucket's queue is its wait: use Reject, DropIncoming or DropOldest.");
        }

        _time = timeProvider ?? TimeProvider.System;
        (_intervalWhole, _intervalFraction, _denominator) = ExactInterval(_time.TimestampFrequency, requestsPerSecond);
        _requestsPerSecond = requestsPerSecond;
        Capacity = capacity;
        OverflowPolicy = overflowPolicy;
        _nextRelease = _time.GetTimestamp();

        // Its waits arm no timer today (no timeouts: cancellation only), so this never runs; wired to the clock's failure
        // report all the same, so a timed wait added later cannot lose a timer's failure (see WaiterList.TimerFailed).
        _queue = new WaiterList(error => FailureReport.Raise(ref _clockFailures, ClockFailed, this, error));
    }

    /// <summary>Requests that may wait at once.</summary>
    public int Capacity { get; }

    /// <summary>The output rate.</summary>
    public double RequestsPerSecond => _requestsPerSecond;

    /// <summary>What happens when the queue is full.</summary>
    public OverflowPolicy OverflowPolicy { get; }

    /// <summary>Requests waiting now (a snapshot).</summary>
    public int QueuedCount => _queue.Count;

    /// <summary>Requests let through so far.</summary>
    public long Released => Volatile.Read(ref _released);

    /// <summary>Requests refused on a full queue under <see cref="OverflowPolicy.Reject"/>.</summary>
    public long Rejected => Volatile.Read(ref _rejected);

    /// <summary>Requests refused on a full queue under <see cref="OverflowPolicy.DropIncoming"/>.</summary>
    public long DroppedIncoming => Volatile.Read(ref _dropped);

    /// <summary>Waiting requests evicted under <see cref="OverflowPolicy.DropOldest"/>.</summary>
    public long Evicted => Volatile.Read(ref _evicted);

    /// <summary>
    /// Exceptions of the <see cref="System.TimeProvider"/> (a clock reading, or arming the pacing timer) caught on the pacing
    /// timer's thread, where nothing may escape (a snapshot). The queue is not stalled by one: the release is retried
    /// after a back-off (1 ms, doubling to 1 s), so queued requests leave once the clock works again. When the clock
    /// cannot arm the pacing timer, the retry runs on a <see cref="System.TimeProvider.System"/> timer (real time, same
    /// back-off): it needs no other caller.
    /// </summary>
    public long ClockFailureCount => Interlocked.Read(ref _clockFailures);

    /// <summary>Raised, on the timer's thread, for each failure counted in <see cref="ClockFailureCount"/>; the handler's own exceptions are swallowed.</summary>
    public event EventHandler<Exception>? ClockFailed;

    /// <summary>Passes at once if the output is idle and nobody waits; never queues.</summary>
    /// <exception cref="ObjectDisposedException">The bucket was disposed.</exception>
    public bool TryEnter()
    {
        using (InterruptDeferral.Lock(_lock))
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return TryPassLocked(_time.GetTimestamp());
        }
    }

    /// <summary>
    /// Enters the bucket and completes when this request's turn to leave comes (true), or when it is refused on a
    /// full queue or evicted by a newer one (false), per <see cref="OverflowPolicy"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first; the request left the queue.</exception>
    /// <exception cref="ObjectDisposedException">The bucket was disposed (a queued request answers false instead).</exception>
    public ValueTask<bool> EnterAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        Waiter waiter;
        short version;
        using (InterruptDeferral.Lock(_lock))
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long now = _time.GetTimestamp();
            if (TryPassLocked(now))
            {
                return new ValueTask<bool>(true);
            }

            if (_queue.Count >= Capacity)
            {
                switch (OverflowPolicy)
                {
                    case OverflowPolicy.Reject:
                        _rejected++;
                        return new ValueTask<bool>(false);
                    case OverflowPolicy.DropIncoming:
                        _dropped++;
                        return new ValueTask<bool>(false);
                    default:
                        // Armed before the eviction as well as before the link: a timer that cannot be created or armed
                        // throws with the queue untouched. Before (review of 2026-11-23), the oldest request was evicted
                        // first and the newcomer then threw without entering: a queued request dropped for nothing.
                        ArmLocked(now);
                        if (_queue.FinishOldest(WaitStatus.TimedOut))
                        {
                            _evicted++;
                        }

                        break;
                }
            }

            ArmLocked(now); // before linking: a clock whose timer cannot be created or armed throws with nothing queued (before, the request stayed queued, unawaited, and spent a departure slot)
            waiter = _queue.RentAndLink(synchronous: false);
            version = waiter.Version;
        }

        waiter.Arm(Timeout.InfiniteTimeSpan, cancellationToken, _time);
        return new ValueTask<bool>(waiter, version);
    }

    /// <summary>Ends every queued wait with false and stops the pacing timer.</summary>
    public void Dispose()
    {
        using (InterruptDeferral.Lock(_lock))
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _timer?.Dispose();
            _retryTimer?.Dispose();
            _queue.FinishAll(WaitStatus.Completed);
        }
    }

    /// <summary>
    /// The interval, frequency / rate ticks, as Q + R/D exactly: the double rate is mantissa × 2^exponent, so the
    /// interval is frequency × 2^-exponent / mantissa, reduced. Refuses a rate above the frequency (Q = 0: departures
    /// closer than a tick cannot be spaced) and one whose interval overflows the clock.
    /// </summary>
    internal static (long Whole, long Fraction, long Denominator) ExactInterval(long frequency, double requestsPerSecond)
    {
        long bits = BitConverter.DoubleToInt64Bits(requestsPerSecond);
        int biased = (int)((bits >> 52) & 0x7FF);
        long mantissa = bits & ((1L << 52) - 1);
        int exponent = biased == 0 ? -1074 : biased - 1075;
        mantissa |= biased == 0 ? 0 : 1L << 52;
        System.Numerics.BigInteger numerator = frequency, denominator = mantissa;
        if (exponent < 0)
        {
            numerator <<= -exponent;
        }
        else
        {
            denominator <<= exponent;
        }

        System.Numerics.BigInteger gcd = System.Numerics.BigInteger.GreatestCommonDivisor(numerator, denominator);
        numerator /= gcd;
        denominator /= gcd;
        System.Numerics.BigInteger whole = System.Numerics.BigInteger.DivRem(numerator, denominator, out System.Numerics.BigInteger fraction);
        if (whole.IsZero)
        {
            throw new ArgumentOutOfRangeException(nameof(requestsPerSecond), requestsPerSecond,
                $"The rate is above the clock's frequency ({frequency} ticks per second): departures closer than one tick cannot be spaced.");
        }

        if (whole > long.MaxValue / 4 || denominator > long.MaxValue / 4)
        {
            throw new ArgumentOutOfRangeException(nameof(requestsPerSecond), requestsPerSecond, "The rate is too low for the clock: one interval overflows it.");
        }

        return ((long)whole, (long)fraction, (long)denominator);
    }

    /// <summary>Whether the next departure's slot has come: its tick is past, or it is this tick and the slot starts on it.</summary>
    private bool IsDueLocked(long now)
    {
        long ahead = unchecked(_nextRelease - now); // a difference: wraps with the clock
        return ahead < 0 || (ahead == 0 && _nextFraction == 0);
    }

    /// <summary>Sets the next departure one exact interval after <paramref name="whole"/> + <paramref name="fraction"/>/D.</summary>
    private void ScheduleAfterLocked(long whole, long fraction)
    {
        fraction += _intervalFraction; // < 2D <= 2^54: no overflow
        whole = unchecked(whole + _intervalWhole);
        if (fraction >= _denominator)
        {
            fraction -= _denominator;
            whole = unchecked(whole + 1);
        }

        _nextRelease = whole;
        _nextFraction = fraction;
    }

    private bool TryPassLocked(long now)
    {
        if (_queue.Count != 0 || !IsDueLocked(now))
        {
            return false;
        }

        long slotTick = _nextFraction == 0 ? _nextRelease : unchecked(_nextRelease + 1);
        if (slotTick == now)
        {
            ScheduleAfterLocked(_nextRelease, _nextFraction); // in the tick its slot falls in: on time, so the grid is kept (exact rate)
        }
        else
        {
            ScheduleAfterLocked(now, 0); // the output was idle past its slot: restart from now
        }

        _released++;
        return true;
    }

    private void ArmLocked(long now)
    {
        _timer ??= UnflowedTimer.Create(_time, static state => ((LeakyBucket)state!).Release(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); // not the first waiter's context: kept for the bucket's life
        long ahead = unchecked(_nextRelease - now); // a difference: wraps with the clock
        long due = ahead < 0 ? 0 : ahead + (_nextFraction != 0 ? 1 : 0); // the first tick at or after the exact instant
        TimeSpan dueIn = TimeSpan.FromTicks((long)Math.Min(Math.Ceiling(due * ((double)TimeSpan.TicksPerSecond / _time.TimestampFrequency)), Timers.Wakeups.MaxDelay.Ticks));
        _timer.Change(dueIn, Timeout.InfiniteTimeSpan); // capped at the longest a timer takes: a slot further away wakes early and re-arms
    }

    /// <summary>
    /// The pacing timer's callback: never throws (an exception would end the process on the timer's thread, and the
    /// queue would wait for a re-arm that never came). A failure is counted, reported and retried after a back-off.
    /// </summary>
    private void Release()
    {
        try
        {
            ReleaseCore();
        }
        catch (Exception ex)
        {
            ReleaseFailed(ex);
        }
    }

    /// <summary>
    /// Counts and reports a release's failure, then arms the timer to try again after the back-off. When the clock cannot
    /// arm its timer either, the retry is armed on a <see cref="TimeProvider.System"/> timer instead (real time, the same
    /// back-off), so the queue keeps retrying by itself until the clock works, the queue empties or the bucket is
    /// disposed. Before (review of 2026-11-23), a second failure gave up: the queued requests sat until the next
    /// <see cref="EnterAsync"/> armed the timer again (and with none, for good).
    /// </summary>
    private void ReleaseFailed(Exception ex)
    {
        FailureReport.Raise(ref _clockFailures, ClockFailed, this, ex); // outside the lock: the handler is user code
        TimeSpan retry;
        Exception? again = null;
        using (InterruptDeferral.Lock(_lock))
        {
            if (_disposed || _queue.Count == 0)
            {
                return;
            }

            retry = FailureReport.NextRetry(ref _retryTicks);
            try
            {
                _timer!.Change(retry, Timeout.InfiniteTimeSpan); // the callback runs only on a created timer
            }
            catch (Exception e)
            {
                again = e;
            }
        }

        if (again is not null)
        {
            // The timer cannot be armed either: reported (outside the lock), and the retry goes on a system timer.
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, again);
            ArmFallbackRetry(retry);
        }
    }

    /// <summary>
    /// Arms the release's retry on <see cref="TimeProvider.System"/> (created on the first need, disposed with the
    /// bucket; a spurious release from it is harmless: it re-checks the due time). A failure here (the runtime's own
    /// timer: out of memory) is swallowed: the next <see cref="EnterAsync"/> arms the clock's timer again, as before.
    /// </summary>
    private void ArmFallbackRetry(TimeSpan retry)
    {
        try
        {
            using (InterruptDeferral.Lock(_lock))
            {
                if (!_disposed)
                {
                    UnflowedTimer.ArmSystemFallback(ref _retryTimer, static state => ((LeakyBucket)state!).Release(), this, retry);
                }
            }
        }
        catch (Exception)
        {
            // Nothing left to schedule with; not reported again (the clock's failure just was).
        }
    }

    /// <summary>Lets the oldest waiter go if its slot has come, then re-arms for the next slot.</summary>
    private void ReleaseCore()
    {
        using (InterruptDeferral.Lock(_lock))
        {
            if (_disposed)
            {
                return;
            }

            long now = _time.GetTimestamp(); // first: a throwing clock changes nothing
            if (IsDueLocked(now) && _queue.FinishOldest(WaitStatus.Signaled))
            {
                _released++;
                ScheduleAfterLocked(_nextRelease, _nextFraction);
                if (IsDueLocked(now))
                {
                    ScheduleAfterLocked(now, 0); // a whole slot was missed: restart the grid from now (no catch-up burst)
                }
            }

            if (_queue.Count > 0)
            {
                ArmLocked(now);
            }

            _retryTicks = 0; // only a release that read the clock and armed the timer ends the back-off: one whose arming keeps failing backs off to 1 s
        }
    }
}
