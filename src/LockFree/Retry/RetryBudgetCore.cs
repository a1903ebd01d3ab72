using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree;

// Design: two lock-free buckets, after Finagle's RetryBudget (deposits per call, withdrawals per retry, plus a
// floor of retries per second). The engine of RetryBudget, generic over the atomics seam so that the controlled
// scheduler can explore its compare-and-swap loops (tests/Concurrency/Retry/RetryBudgetScheduleTests.cs); the
// public RetryBudget validates the options and wraps RetryBudgetCore<RealAtomics>.
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
// only when the ratio bucket is empty (the overload path), once per reserve attempt (before its CAS loop, whose
// retries reuse that reading), and once at construction (when there is a reserve).
//
// Wrap: tat and now are kept relative to that first reading (_origin), as differences of timestamps, which wrap with
// the clock. Before (review of 2026-11-23), they were raw timestamps compared with Math.Max: in the second in which
// the clock passed long.MaxValue, tat + interval wrapped negative, the next retry's max() picked now over it, and every
// retry in that second was granted (the reserve was unlimited). Relative time stays far from the wrap for as long as
// a budget lives (2^63 ticks: 29,000 years at 10 MHz), so Math.Max on it is exact, for a clock that starts anywhere
// (near long.MaxValue, negative).
//
// Ordering: the budget publishes no data through these words; each is a number that only its own read-modify-writes
// change (a CAS loop or an add), so every shared access is atomic and needs no acquire/release pairing with another
// word. The loads that start a CAS loop are acquire loads only so that they are atomic and fresh; the CAS that
// follows validates them. The statistics counters are independent locked adds, read with acquire loads (a counter
// read is a snapshot of that counter alone; the three are not read together atomically).
//
// Bound (the property the tests check): over any interval of length T with C calls, the granted retries are at
// most RetryRatio*C + MaxBurst + MinRetriesPerSecond*(T + 1 s).
internal struct RetryBudgetCore<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>Micro-retries per retry: the resolution of RetryRatio (1e-6 per call).</summary>
    public const long Unit = 1_000_000;

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

    /// <summary>Creates the engine from validated options (RetryBudget checks them).</summary>
    public RetryBudgetCore(double ratio, int minPerSecond, int maxBurst, TimeProvider time)
    {
        _ratio = ratio;
        _minPerSecond = minPerSecond;
        _deposit = (long)Math.Round(ratio * Unit);
        _maxCredit = maxBurst * Unit;
        _time = time;
        if (_minPerSecond > 0)
        {
            long second = _time.TimestampFrequency;
            _interval = Math.Max(1, (second + _minPerSecond - 1) / _minPerSecond); // ceiling: never more than the rate
            _tolerance = (_minPerSecond - 1) * _interval;                         // a burst of exactly the rate
            _origin = _time.GetTimestamp();
        }
    }

    /// <summary>The configured RetryRatio.</summary>
    public readonly double Ratio => _ratio;

    /// <summary>The configured MinRetriesPerSecond.</summary>
    public readonly int MinPerSecond => _minPerSecond;

    /// <summary>Calls recorded.</summary>
    public long Calls
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => TAtomics.LoadAcquire(ref _calls); // pairs with: the add in RecordCall (a snapshot of the counter)
    }

    /// <summary>Retries granted.</summary>
    public long Granted
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => TAtomics.LoadAcquire(ref _granted); // pairs with: the adds on grant in TryAcquireRetry
    }

    /// <summary>Retries refused.</summary>
    public long Refused
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => TAtomics.LoadAcquire(ref _refused); // pairs with: the add on refusal in TryAcquireRetry
    }

    /// <summary>The ratio bucket's credit in micro-retries (tests: the accounting check).</summary>
    internal long Credit => TAtomics.LoadAcquire(ref _credit); // pairs with: the CASes of RecordCall and TryAcquireRetry

    /// <summary>Records one call: deposits the ratio's micro-retries, up to the cap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecordCall()
    {
        TAtomics.Add(ref _calls, 1); // pairs with: the acquire load in Calls (a statistic, no data published)
        if (_deposit == 0)
        {
            return;
        }

        // A CAS loop that tops the credit up to the cap, never past it: an unconditional add below the cap would
        // overshoot by a whole deposit (100 retries at RetryRatio = 100), breaking the documented bound.
        long credit = TAtomics.LoadAcquire(ref _credit); // pairs with: the CASes on _credit (validated by the CAS below)
        while (credit < _maxCredit)
        {
            long seen = TAtomics.CompareExchange(ref _credit, Math.Min(credit + _deposit, _maxCredit), credit); // pairs with: the other CASes on _credit (deposits, and TryAcquireRetry's spend)
            if (seen == credit)
            {
                return;
            }

            credit = seen;
        }
    }

    /// <summary>Spends one retry if the ratio bucket or the reserve allows it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAcquireRetry()
    {
        long credit = TAtomics.LoadAcquire(ref _credit); // pairs with: the CASes on _credit (validated by the CAS below)
        while (credit >= Unit)
        {
            long seen = TAtomics.CompareExchange(ref _credit, credit - Unit, credit); // pairs with: the other CASes on _credit (spends, and RecordCall's deposit)
            if (seen == credit)
            {
                TAtomics.Add(ref _granted, 1); // pairs with: the acquire load in Granted
                return true;
            }

            credit = seen;
        }

        if (TryAcquireReserve())
        {
            TAtomics.Add(ref _granted, 1); // pairs with: the acquire load in Granted
            return true;
        }

        TAtomics.Add(ref _refused, 1); // pairs with: the acquire load in Refused
        return false;
    }

    private bool TryAcquireReserve()
    {
        if (_minPerSecond == 0)
        {
            return false;
        }

        long now = unchecked(_time.GetTimestamp() - _origin); // a difference of timestamps: wraps with the clock
        long tat = TAtomics.LoadAcquire(ref _reserveTat); // pairs with: the CAS on _reserveTat (validated by the CAS below)
        while (true)
        {
            long next = Math.Max(tat, now) + _interval;
            if (next - now > _tolerance + _interval)
            {
                return false;
            }

            long seen = TAtomics.CompareExchange(ref _reserveTat, next, tat); // pairs with: the other reserve grants' CAS on _reserveTat
            if (seen == tat)
            {
                return true;
            }

            tat = seen;
        }
    }
}
