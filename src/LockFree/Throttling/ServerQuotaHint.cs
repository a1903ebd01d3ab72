using System.Diagnostics;
using LockFree.Internal;

namespace LockFree;

// Design: honours what a server says about its quota (e.g. the IETF RateLimit-Remaining / RateLimit-Reset or
// X-RateLimit-* headers, or gRPC retry pushback). State: the remaining quota as last reported and decremented
// locally per admitted request (so a burst between two responses cannot overshoot), the reset instant, and the
// earliest instant the next paced request may go. All three are longs updated with CAS / release stores:
// TryAdmit is lock-free. A hint and the admissions racing with it may interleave (a request admitted under the
// old hint is charged to the new remaining): the next response corrects it. After the reset instant the hint no
// longer restricts anything until a new one arrives. "No hint yet" is a reset instant of long.MinValue, before
// every timestamp: a TimeProvider's timestamps may be negative (only differences mean anything), and 0 was in the
// future of such a clock (the absent hint was in force and the first real one paced from timestamp 0).
//
// Wrap: every instant is kept relative to the clock's reading at construction (_origin), a difference of timestamps
// that wraps with the clock, so relative time starts at 0 and stays far from long.MaxValue for the tracker's life.
// Before (review of 2026-11-23), instants were raw timestamps: on a clock within a reset period of long.MaxValue the
// reset instant saturated to "never", and once the clock wrapped (negative) the hint stayed in force for good.

/// <summary>
/// Honours server quota hints: after <see cref="Update(long, TimeSpan)"/> reports the remaining quota and the
/// time until it resets, <see cref="TryAdmit"/> refuses locally until the reset when the quota is used up, and
/// paces requests evenly over the time left when it runs low (at most <see cref="ServerQuotaHintOptions.PaceBelow"/>).
/// </summary>
[DebuggerDisplay("Remaining = {Remaining}")]
public sealed class ServerQuotaHint
{
    private readonly TimeProvider _time;
    private readonly long _paceBelow;
    private readonly long _origin; // the clock's reading at construction: instants below are differences from it (see the design note)
    private long _remaining = long.MaxValue;
    private long _resetAt = long.MinValue; // "no hint yet": before every timestamp (0 was in the future of a clock reading negative)
    private long _nextPaced;
    private long _refused;

    /// <summary>Creates a hint tracker with no hint yet (everything is admitted).</summary>
    /// <param name="options">Options; null for the defaults.</param>
    /// <exception cref="ArgumentNullException">The time provider is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public ServerQuotaHint(ServerQuotaHintOptions? options = null)
    {
        options ??= new ServerQuotaHintOptions();
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        ArgumentOutOfRangeException.ThrowIfNegative(options.PaceBelow, "options.PaceBelow");
        _time = options.TimeProvider;
        _paceBelow = options.PaceBelow;
        _origin = _time.GetTimestamp();
    }

    /// <summary>The remaining quota as last reported, less the requests admitted since; <see cref="long.MaxValue"/> when no hint is in force.</summary>
    public long Remaining => IsInForce(Now()) ? RealAtomics.LoadAcquire(ref _remaining) : long.MaxValue; // acquire: a snapshot

    /// <summary>Requests refused locally since creation.</summary>
    public long Refused => RealAtomics.LoadAcquire(ref _refused); // acquire: a snapshot

    /// <summary>How long until <see cref="TryAdmit"/> can next succeed: zero when it can now.</summary>
    public TimeSpan RetryAfter
    {
        get
        {
            long now = Now();
            if (!IsInForce(now))
            {
                return TimeSpan.Zero;
            }

            long remaining = RealAtomics.LoadAcquire(ref _remaining); // acquire: a snapshot
            long until = remaining <= 0 ? RealAtomics.LoadAcquire(ref _resetAt) : remaining <= _paceBelow ? RealAtomics.LoadAcquire(ref _nextPaced) : now; // acquire: snapshots
            return until <= now ? TimeSpan.Zero : _time.GetElapsedTime(now, until);
        }
    }

    /// <summary>Records a server hint: <paramref name="remaining"/> requests are left until the quota resets in <paramref name="resetAfter"/>.</summary>
    /// <param name="remaining">Requests left in the current quota period, at least 0.</param>
    /// <param name="resetAfter">Time until the quota resets, at least zero.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is negative.</exception>
    public void Update(long remaining, TimeSpan resetAfter)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(remaining);
        ArgumentOutOfRangeException.ThrowIfLessThan(resetAfter, TimeSpan.Zero);
        long now = Now();
        double after = Math.Ceiling(resetAfter.TotalSeconds * _time.TimestampFrequency);
        long resetAt = after >= long.MaxValue - (double)Math.Max(now, 0) ? long.MaxValue : now + (long)after; // saturates: a reset beyond the clock's range is "never", not a wrapped instant in the past
        long previousReset = RealAtomics.LoadAcquire(ref _resetAt); // acquire: the period the last hint described
        long previousRemaining = RealAtomics.LoadAcquire(ref _remaining); // acquire: as above
        RealAtomics.StoreRelease(ref _remaining, remaining); // release: the new quota
        if (now >= previousReset || remaining > previousRemaining)
        {
            // A new period (the old one has reset, or the quota grew): pacing starts afresh. Within a period the paced
            // schedule is kept, so a hint on every response does not let the next request go at once.
            RealAtomics.StoreRelease(ref _nextPaced, now); // release: pacing restarts
        }

        RealAtomics.StoreRelease(ref _resetAt, resetAt); // release: last, so a reader that sees the new reset sees the quota it belongs to
    }

    /// <summary>Records a server hint with an absolute reset instant (as in <c>X-RateLimit-Reset</c> epoch seconds).</summary>
    /// <param name="remaining">Requests left in the current quota period, at least 0.</param>
    /// <param name="resetAt">When the quota resets; an instant in the past means "now".</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="remaining"/> is negative.</exception>
    public void Update(long remaining, DateTimeOffset resetAt)
    {
        TimeSpan after = resetAt - _time.GetUtcNow();
        Update(remaining, after < TimeSpan.Zero ? TimeSpan.Zero : after);
    }

    /// <summary>Decides whether a request may be sent now under the last hint, and charges it to the remaining quota.</summary>
    /// <returns>True to send; false to refuse locally (see <see cref="RetryAfter"/>).</returns>
    public bool TryAdmit()
    {
        long now = Now();
        if (!IsInForce(now))
        {
            return true;
        }

        long remaining = RealAtomics.LoadAcquire(ref _remaining); // acquire: the quota to charge
        bool paced = false;
        while (true)
        {
            if (remaining <= 0)
            {
                return Refuse();
            }

            if (remaining <= _paceBelow && !paced)
            {
                if (!TryTakePacedSlot(now, remaining))
                {
                    return Refuse();
                }

                paced = true; // the slot is ours; a failed charge below retries the charge only
            }

            long prior = RealAtomics.CompareExchange(ref _remaining, remaining - 1, remaining); // full fence: charge one request
            if (prior == remaining)
            {
                return true;
            }

            remaining = prior;
        }
    }

    /// <summary>Now, in timestamps since construction (a difference: wraps with the clock, so it never does itself).</summary>
    private long Now() => unchecked(_time.GetTimestamp() - _origin);

    private bool IsInForce(long now) => now < RealAtomics.LoadAcquire(ref _resetAt); // acquire: pairs with Update's release

    // Pacing: the remaining requests spread evenly over the time left; a request may go when the paced slot is due.
    private bool TryTakePacedSlot(long now, long remaining)
    {
        long resetAt = RealAtomics.LoadAcquire(ref _resetAt); // acquire: the period end
        long spacing = (resetAt - now) / remaining;
        long next = RealAtomics.LoadAcquire(ref _nextPaced); // acquire: the due instant
        while (next <= now)
        {
            long prior = RealAtomics.CompareExchange(ref _nextPaced, now + spacing, next); // full fence: take the slot
            if (prior == next)
            {
                return true;
            }

            next = prior;
        }

        return false;
    }

    private bool Refuse()
    {
        RealAtomics.Add(ref _refused, 1); // statistics only
        return false;
    }
}
