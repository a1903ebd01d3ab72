using System.Diagnostics;

namespace LockFree;

// Design: two lock-free buckets, after Finagle's RetryBudget (deposits per call, withdrawals per retry, plus a
// floor of retries per second).
//
// Ratio bucket: _credit in micro-retries, in [0, MaxBurst*10^6] (at most 10^12). RecordCall adds RetryRatio*10^6 (the
// ratio kept to six decimals; a positive ratio below 10^-6 is refused, not rounded to 0) with a CAS loop
// that stops at the cap (exact: a deposit that would pass it is cut to it, and none is made at the cap, where the
// loop is one read). TryAcquire spends 10^6 with a CAS loop that never takes it below zero.
//
// Reserve: a generic cell rate algorithm (GCRA) over one long, _reserveTat (theoretical arrival time, in
// timestamps): a retry is allowed when max(tat, now) + interval - now <= MinRetriesPerSecond intervals, and moves
// tat by one interval (1 / MinRetriesPerSecond, rounded UP to whole timestamps: rounded down, a clock whose
// frequency is no multiple of the rate granted more than the rate, e.g. 1,000/s for 600/s on a 1 kHz clock, which
// broke the bound below). So the burst is exactly MinRetriesPerSecond and the sustained rate at most that. One
// CAS, no separate refill timestamp, so there is no torn update. It starts with a full burst. The clock is read
// only when the ratio bucket is empty (the overload path), and once at construction (when there is a reserve).
//
// Wrap: tat and now are kept relative to that first reading (_origin), as differences of timestamps, which wrap with
// the clock. Before (review of 2026-11-23), they were raw timestamps compared with Math.Max: in the second in which
// the clock passed long.MaxValue, tat + interval wrapped negative, the next retry's max() picked now over it, and every
// retry in that second was granted (the reserve was unlimited). Relative time stays far from the wrap for as long as
// a budget lives (2^63 ticks: 29,000 years at 10 MHz), so Math.Max on it is exact, for a clock that starts anywhere
// (near long.MaxValue, negative).
//
// Bound (the property the tests check): over any interval of length T with C calls, the granted retries are at
// most RetryRatio*C + MaxBurst + MinRetriesPerSecond*(T + 1 s).

/// <summary>
/// Limits retries to a fraction of calls, so retries cannot amplify an overload: when most calls fail, each caller
/// retries at most <see cref="RetryBudgetOptions.RetryRatio"/> times per call on average, plus a small reserve per
/// second. Thread-safe and lock-free; share one budget across the policies that call the same dependency.
/// </summary>
[DebuggerDisplay("Ratio = {_ratio}, MinPerSecond = {_minPerSecond}")]
public sealed class RetryBudget
{
    private const long Unit = 1_000_000; // micro-retries per retry: the resolution of RetryRatio (1e-6 per call)
    private const double MinPositiveRatio = 1.0 / Unit;

    private readonly double _ratio;
    private readonly int _minPerSecond;
    private readonly long _deposit;
    private readonly long _maxCredit;
    private readonly long _interval;  // timestamps between reserve retries
    private readonly long _tolerance; // timestamps of burst the reserve allows (MinRetriesPerSecond - 1 intervals: about a second)
    private readonly TimeProvider _time;
    private readonly long _origin;    // the clock's reading at construction: the reserve's times are differences from it (see the design note)

    private long _credit;
    private long _reserveTat = long.MinValue; // relative to _origin: long.MinValue = never used (a full burst)
    private long _calls;
    private long _granted;
    private long _refused;

    /// <summary>Creates a budget with the given options (null for the defaults).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of its documented range.</exception>
    /// <exception cref="ArgumentNullException">The options' <see cref="RetryBudgetOptions.TimeProvider"/> is null.</exception>
    public RetryBudget(RetryBudgetOptions? options = null)
    {
        options ??= new RetryBudgetOptions();
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        if (!(options.RetryRatio >= 0 && options.RetryRatio <= 100) || (options.RetryRatio > 0 && options.RetryRatio < MinPositiveRatio))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.RetryRatio, "RetryRatio must be 0 or in [0.000001, 100].");
        }

        if (options.MinRetriesPerSecond is < 0 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MinRetriesPerSecond, "MinRetriesPerSecond must be in [0, 1000000].");
        }

        if (options.MaxBurst is < 0 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxBurst, "MaxBurst must be in [0, 1000000].");
        }

        _ratio = options.RetryRatio;
        _minPerSecond = options.MinRetriesPerSecond;
        _deposit = (long)Math.Round(options.RetryRatio * Unit);
        _maxCredit = options.MaxBurst * Unit;
        _time = options.TimeProvider;
        if (_minPerSecond > 0)
        {
            long second = _time.TimestampFrequency;
            _interval = Math.Max(1, (second + _minPerSecond - 1) / _minPerSecond); // ceiling: never more than the rate
            _tolerance = (_minPerSecond - 1) * _interval;                         // a burst of exactly the rate
            _origin = _time.GetTimestamp();
        }
    }

    /// <summary>Calls recorded.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Retries granted.</summary>
    public long RetriesGranted => Interlocked.Read(ref _granted);

    /// <summary>Retries refused because the budget was spent.</summary>
    public long RetriesRefused => Interlocked.Read(ref _refused);

    /// <summary>Records one call (a first attempt): deposits <see cref="RetryBudgetOptions.RetryRatio"/> of a retry.</summary>
    public void RecordCall()
    {
        Interlocked.Increment(ref _calls);
        if (_deposit == 0)
        {
            return;
        }

        // A CAS loop that tops the credit up to the cap, never past it: an unconditional add below the cap would
        // overshoot by a whole deposit (100 retries at RetryRatio = 100), breaking the documented bound.
        long credit = Volatile.Read(ref _credit);
        while (credit < _maxCredit)
        {
            long seen = Interlocked.CompareExchange(ref _credit, Math.Min(credit + _deposit, _maxCredit), credit);
            if (seen == credit)
            {
                return;
            }

            credit = seen;
        }
    }

    /// <summary>Spends one retry if the budget allows it; false when it is spent (do not retry).</summary>
    public bool TryAcquireRetry()
    {
        long credit = Volatile.Read(ref _credit);
        while (credit >= Unit)
        {
            long seen = Interlocked.CompareExchange(ref _credit, credit - Unit, credit);
            if (seen == credit)
            {
                Interlocked.Increment(ref _granted);
                return true;
            }

            credit = seen;
        }

        if (TryAcquireReserve())
        {
            Interlocked.Increment(ref _granted);
            return true;
        }

        Interlocked.Increment(ref _refused);
        return false;
    }

    private bool TryAcquireReserve()
    {
        if (_minPerSecond == 0)
        {
            return false;
        }

        long now = unchecked(_time.GetTimestamp() - _origin); // a difference of timestamps: wraps with the clock
        long tat = Volatile.Read(ref _reserveTat);
        while (true)
        {
            long next = Math.Max(tat, now) + _interval;
            if (next - now > _tolerance + _interval)
            {
                return false;
            }

            long seen = Interlocked.CompareExchange(ref _reserveTat, next, tat);
            if (seen == tat)
            {
                return true;
            }

            tat = seen;
        }
    }
}
