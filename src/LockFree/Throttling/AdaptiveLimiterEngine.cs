using System.Diagnostics;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree;

// Design: a counting semaphore without waiting whose bound moves.
// - Admission (TryAcquire): read the limit, then CAS the in-flight count from c to c + 1 while c < limit. The
//   CAS (not load-check-add) is what keeps in-flight ≤ limit: two acquirers that both saw c = limit − 1 cannot
//   both succeed. Lock-free: a CAS fails only because another acquire or completion succeeded.
// - Completion: atomically decrement in-flight, then add the sample to the open window with one interlocked
//   add on a packed word (count in the low 24 bits, latency sum in microseconds in the 39 bits above: 6.3 days of
//   summed latency; a sample is capped at 2^31 µs ≈ 36 min). A window closes as soon as it is MinWindow old and
//   holds MinSamples, so its sum is near limit × MinWindow, which a long window at a high limit can take past the
//   cap (limit 1000 at 6 s a request over 10 minutes). So the completion whose add takes the count past 2^23 or
//   the sum past 2^38 (half of either field) spills: under the updater claim it moves the word into two plain
//   longs (SpilledCount, SpilledSum) that the window close adds back; half of each field is left as headroom for
//   the completions that land while the claim is busy. Drops go to their own counter.
// - Window close: a completion that sees the window older than MinWindow tries to claim the updater flag with
//   a CAS; the one winner reads the accumulators, subtracts what it read (samples that land meanwhile stay for
//   the next window: every sample counts exactly once), runs the algorithm, publishes the new limit with a
//   release store and opens the next window. Losers return at once. No lock anywhere; the algorithm never runs
//   on an acquirer's path and never on two threads at once (the claim's CAS and releasing store order its state).
// - A lowered limit does not evict: in-flight may exceed a freshly lowered limit until completions drain it;
//   no acquire succeeds meanwhile. Invariant: every successful acquire saw in-flight < limit at its CAS.
// - Sampling: with SampleEvery = 2^k, only requests whose admission number (the Acquired counter's new value,
//   which TryAcquire increments anyway) is a multiple of 2^k read the clock; the others carry NotSampled and their
//   completion reads no clock: it releases the slot and counts a drop. Windows close on measured completions.
// Thread roles: any thread may acquire and complete; the updater is whichever completion wins the claim.
// Progress: TryAcquire and Complete are lock-free; the window close is wait-free for the losers.

/// <summary>The algorithm behind <see cref="AdaptiveConcurrencyLimiter"/>, generic over the atomics seam.</summary>
internal struct AdaptiveLimiterEngine<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>Bits of the packed accumulator that hold the sample count.</summary>
    internal const int CountBits = 24;

    /// <summary>Mask of the count in the packed accumulator.</summary>
    internal const long CountMask = (1L << CountBits) - 1;

    /// <summary>Largest latency recorded, in microseconds (≈ 36 minutes).</summary>
    internal const long MaxLatencyUnits = (1L << 31) - 1;

    /// <summary>A packed accumulator at or above this holds a latency sum of at least 2^38 µs (half the field): spill it.</summary>
    internal const long SpillSumAt = 1L << 62;

    /// <summary>A packed accumulator whose count reaches this (half the field) is spilled.</summary>
    internal const long SpillCountAt = 1L << (CountBits - 1);

    /// <summary>The start timestamp of a request whose latency is not measured (see SampleEvery).</summary>
    internal const long NotSampled = long.MinValue;

    private readonly AdaptiveLimit _algorithm;
    private readonly TimeProvider _time;
    private readonly bool _systemTime;
    private readonly double _unitsPerTick;
    private readonly double _ticksPerTimestamp;
    private readonly long _windowTicks;
    private readonly long _minSamples;
    private readonly long _createdAt;
    private readonly long _sampleMask;

    private AdmissionCounters _admission;
    private SampleCounters _samples;

    public AdaptiveLimiterEngine(AdaptiveLimit algorithm, TimeProvider time, TimeSpan minWindow, int minSamples, int sampleEvery = 1)
    {
        _sampleMask = sampleEvery - 1;
        _algorithm = algorithm;
        _time = time;
        _systemTime = ReferenceEquals(time, TimeProvider.System);
        _ticksPerTimestamp = (double)TimeSpan.TicksPerSecond / time.TimestampFrequency;
        _unitsPerTick = 1_000_000.0 / time.TimestampFrequency;
        _windowTicks = Math.Max(1, (long)(minWindow.Ticks / _ticksPerTimestamp));
        _minSamples = minSamples;
        _createdAt = Now();
        _admission.Limit = algorithm.InitialLimit;
        _samples.WindowStart = _createdAt;
    }

    public readonly AdaptiveLimit Algorithm => _algorithm;

    public readonly TimeProvider Time => _time;

    public long Limit => TAtomics.LoadAcquire(ref _admission.Limit); // acquire: pairs with the updater's release

    public long InFlight => TAtomics.LoadAcquire(ref _admission.InFlight); // acquire: a snapshot

    public long Acquired => TAtomics.LoadAcquire(ref _admission.Acquired); // acquire: a snapshot

    public long Rejected => TAtomics.LoadAcquire(ref _admission.Rejected); // acquire: a snapshot

    /// <summary>Admits one request if in-flight is below the limit; on success <paramref name="start"/> is its start timestamp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAcquire(out long start)
    {
        long limit = TAtomics.LoadAcquire(ref _admission.Limit); // acquire: pairs with the updater's release store of a new limit
        long current = TAtomics.LoadAcquire(ref _admission.InFlight); // acquire: the count the CAS below starts from
        while (current < limit)
        {
            long seen = TAtomics.CompareExchange(ref _admission.InFlight, current + 1, current); // full fence: the admission; fails only if another acquire/complete moved the count
            if (seen == current)
            {
                long admitted = TAtomics.Add(ref _admission.Acquired, 1); // statistics, and the sampling decision
                start = (admitted & _sampleMask) == 0 ? Now() : NotSampled;
                return true;
            }

            current = seen;
        }

        TAtomics.Add(ref _admission.Rejected, 1); // statistics only
        start = 0;
        return false;
    }

    /// <summary>Ends a request admitted at <paramref name="start"/>: releases its slot and records its sample.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Complete(long start, AdaptiveOutcome outcome)
    {
        long before = TAtomics.Add(ref _admission.InFlight, -1) + 1; // full fence: releases the slot; pairs with the acquirers' CAS
        if (before <= 0)
        {
            Overcompleted();
        }

        if (outcome == AdaptiveOutcome.Ignore)
        {
            return;
        }

        if (before > TAtomics.LoadAcquire(ref _samples.MaxInFlight)) // acquire: a high-water mark; rarely raised
        {
            RaiseMaxInFlight(before);
        }

        if (start == NotSampled)
        {
            if (outcome == AdaptiveOutcome.Dropped)
            {
                TAtomics.Add(ref _samples.Dropped, 1); // full fence: an overload signal counts even unmeasured
            }

            return; // no clock read; windows close on measured completions
        }

        long now = Now();
        if (outcome == AdaptiveOutcome.Success)
        {
            long units = Math.Clamp((long)((now - start) * _unitsPerTick), 0, MaxLatencyUnits);
            long packed = TAtomics.Add(ref _samples.Accumulator, (units << CountBits) + 1); // full fence: the sample joins the open window; the updater subtracts what it read
            if (packed >= SpillSumAt || (packed & CountMask) >= SpillCountAt)
            {
                Spill();
            }
        }
        else
        {
            TAtomics.Add(ref _samples.Dropped, 1); // full fence: as above, for drops
        }

        if (now - TAtomics.LoadAcquire(ref _samples.WindowStart) >= _windowTicks) // acquire: pairs with the updater's release of the new window
        {
            TryCloseWindow(now);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RaiseMaxInFlight(long value)
    {
        long seen = TAtomics.LoadAcquire(ref _samples.MaxInFlight); // acquire: the mark to raise
        while (value > seen)
        {
            long prior = TAtomics.CompareExchange(ref _samples.MaxInFlight, value, seen); // full fence: raise only
            if (prior == seen)
            {
                return;
            }

            seen = prior;
        }
    }

    /// <summary>Moves the open window's packed samples into the wide spill counters before the word can overflow.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Spill()
    {
        if (TAtomics.CompareExchange(ref _samples.Updating, 1, 0) != 0) // full fence: the updater claim (spill counters are the claim holder's)
        {
            return; // the updater (or another spill) holds it: a later completion spills; half of each field is headroom
        }

        try
        {
            long packed = TAtomics.LoadAcquire(ref _samples.Accumulator); // acquire: what to move
            TAtomics.Add(ref _samples.Accumulator, -packed); // full fence: take exactly what was read; later samples stay
            TAtomics.StorePlain(ref _samples.SpilledCount, TAtomics.LoadPlain(ref _samples.SpilledCount) + (packed & CountMask)); // plain: claim holder only
            TAtomics.StorePlain(ref _samples.SpilledSum, TAtomics.LoadPlain(ref _samples.SpilledSum) + (packed >> CountBits)); // plain: claim holder only
        }
        finally
        {
            TAtomics.StoreRelease(ref _samples.Updating, 0); // release: hands the spill counters to the next claim holder
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TryCloseWindow(long now)
    {
        if (TAtomics.CompareExchange(ref _samples.Updating, 1, 0) != 0) // full fence: the single-updater claim; its winner sees the previous updater's algorithm state
        {
            return;
        }

        try
        {
            long windowStart = TAtomics.LoadAcquire(ref _samples.WindowStart); // acquire: another updater may have just closed it
            if (now - windowStart < _windowTicks)
            {
                return;
            }

            long packed = TAtomics.LoadAcquire(ref _samples.Accumulator); // acquire: what this window holds so far
            long dropped = TAtomics.LoadAcquire(ref _samples.Dropped); // acquire: as above
            long spilledCount = TAtomics.LoadPlain(ref _samples.SpilledCount); // plain: claim holder only
            long spilledSum = TAtomics.LoadPlain(ref _samples.SpilledSum); // plain: claim holder only
            long count = (packed & CountMask) + spilledCount;
            if (count + dropped < _minSamples)
            {
                return; // too few samples to judge: the window stays open
            }

            TAtomics.Add(ref _samples.Accumulator, -packed); // full fence: take exactly what was read; later samples stay
            TAtomics.Add(ref _samples.Dropped, -dropped); // full fence: as above
            TAtomics.StorePlain(ref _samples.SpilledCount, 0L); // plain: claim holder only
            TAtomics.StorePlain(ref _samples.SpilledSum, 0L); // plain: claim holder only
            long maxInFlight = TAtomics.LoadAcquire(ref _samples.MaxInFlight); // acquire: the window's high-water mark
            TAtomics.StoreRelease(ref _samples.MaxInFlight, TAtomics.LoadAcquire(ref _admission.InFlight)); // release: the next window starts from the current level (a racing raise may be lost: a statistic)

            int limit = (int)TAtomics.LoadAcquire(ref _admission.Limit); // acquire: only this updater writes it
            long sumUnits = (packed >> CountBits) + spilledSum;
            var window = new AdaptiveWindow(
                limit,
                count,
                dropped,
                count == 0 ? TimeSpan.Zero : TimeSpan.FromTicks(((sumUnits / count) * TimeSpan.TicksPerMicrosecond) + ((sumUnits % count) * TimeSpan.TicksPerMicrosecond / count)),
                maxInFlight,
                TimeSpan.FromTicks((long)((now - windowStart) * _ticksPerTimestamp)),
                TimeSpan.FromTicks((long)((now - _createdAt) * _ticksPerTimestamp)));
            int next = Math.Clamp(_algorithm.Update(window), _algorithm.MinLimit, _algorithm.MaxLimit);
            TAtomics.StoreRelease(ref _admission.Limit, next); // release: publishes the new limit to acquirers
            TAtomics.StoreRelease(ref _samples.WindowStart, now); // release: opens the next window
        }
        finally
        {
            TAtomics.StoreRelease(ref _samples.Updating, 0); // release: hands the algorithm state to the next updater
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Overcompleted()
    {
        TAtomics.Add(ref _admission.InFlight, 1); // full fence: undo, so the limiter stays usable
        ThrowHelper.ThrowInvalidOperation("A lease was completed more times than leases were acquired (a lease completed twice, or a default lease).");
    }

    /// <summary>Byte offsets of the hot fields from the engine's start, for the layout unit test.</summary>
    internal (nint InFlight, nint Limit, nint Accumulator, nint WindowStart, nint Algorithm, nint WindowTicks) FieldOffsets()
    {
        ref byte start = ref Unsafe.As<AdaptiveLimiterEngine<TAtomics>, byte>(ref this);
        return (
            FieldLayout.Offset(ref start, ref _admission.InFlight),
            FieldLayout.Offset(ref start, ref _admission.Limit),
            FieldLayout.Offset(ref start, ref _samples.Accumulator),
            FieldLayout.Offset(ref start, ref _samples.WindowStart),
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _algorithm)),
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _windowTicks)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly long Now() => _systemTime ? Stopwatch.GetTimestamp() : _time.GetTimestamp();
}
