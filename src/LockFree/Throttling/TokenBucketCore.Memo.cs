using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Throttling;

// The refusal memos of TokenBucketCore (see the design note in TokenBucketCore.cs): written and cleared by the owner,
// read by refusals that need no ownership.
internal partial struct TokenBucketCore<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>
    /// The right shift that fits a century of units in the fine memo's 44 bits (its good-until time is rounded down
    /// to 2^shift units, 180–360 µs whatever the clock: rounding down only makes the memo answer less often).
    /// </summary>
    private static int ChooseFineShift(double unitsPerSecond)
    {
        const double Century = 100 * 365.25 * 86400;
        int shift = 0;
        while (Century * unitsPerSecond / Math.Pow(2, shift) >= (double)(1L << (64 - MemoTokenBits)))
        {
            shift++;
        }

        return shift;
    }

    /// <summary>
    /// The refusal memos, written by the owner after a refusal: until the bucket will hold one more token than it
    /// does now, any request of at least that many tokens is refused without ownership. The fine memo holds that
    /// instant in the bucket's own units (rounded down) and is checked against the precise clock, for any provider;
    /// the coarse memo (system clock only) holds it in milliseconds of Environment.TickCount64 (about 4 ns to read),
    /// less a margin for that clock's coarseness, and is skipped for waits shorter than the margin. Admissions only
    /// lower the bucket, so they leave both true; a refund or a retire clears both.
    /// </summary>
    private void RememberShortage(long tick, long now, long debt)
    {
        long shortOf = ((_burst - debt) / _interval) + 1; // one more than the bucket holds now
        if (shortOf > MemoTokenMask)
        {
            return;
        }

        long units = debt + (shortOf * _interval) - _burst; // > 0: until the bucket holds shortOf
        long fineUntil = (now + units) >> _fineShift; // rounded down: errs early
        if (fineUntil < 1L << (64 - MemoTokenBits - 1))
        {
            TAtomics.StoreRelease(ref _fineMemo, (fineUntil << MemoTokenBits) | shortOf); // release: a hint only; the owner's state is published by the word
        }

        if (!_coarse)
        {
            return;
        }

        double ms = Math.Floor(units / _unitsPerSecond * 1000);
        if (ms <= CoarseMarginMs)
        {
            return;
        }

        long goodUntil = tick + (long)Math.Min(ms, MaxMemoMs) - CoarseMarginMs; // > tick: ms > the margin
        TAtomics.StoreRelease(ref _memo, (goodUntil << MemoTokenBits) | shortOf); // release: a hint only; the owner's state is published by the word
    }

    /// <summary>
    /// Clears both memos (owner only): an admission keeps a memo's refusal true but makes the instant it names, and
    /// so its retry hint, early. While a memo lives no batch is open (a refusal publishes none, and any admission,
    /// the one that opens a batch included, clears the memos), so its hint stays exact.
    /// </summary>
    private void ForgetShortage()
    {
        if (TAtomics.LoadPlain(ref _memo) != 0) // plain: only the owner writes the memos
        {
            TAtomics.StoreRelease(ref _memo, 0); // release: readers that still see the memo are ordered before this admission
        }

        if (TAtomics.LoadPlain(ref _fineMemo) != 0) // plain: as above
        {
            TAtomics.StoreRelease(ref _fineMemo, 0); // release: as above
        }
    }

    /// <summary>
    /// A refusal on the fine memo, counted: true when it covers <paramref name="tokens"/> and the precise clock is
    /// still before its good-until time; <paramref name="waitUnits"/> is then the time to it (a hint that errs early).
    /// Costs one precise clock read and no ownership (no CAS, no store to the shared word). On the system clock a
    /// wait long enough for a coarse memo is left to the owner: the coarse memo did not answer, so it has expired,
    /// and only the owner renews it (else every refusal would stay on the precise clock once the first coarse memo ran out).
    /// </summary>
    private bool TryFineRefusal(long tokens, out long waitUnits)
    {
        long memo = TAtomics.LoadAcquire(ref _fineMemo); // acquire: pairs with RememberShortage
        if (memo != 0 && tokens >= (memo & MemoTokenMask))
        {
            long rounded = (long)((ulong)memo >> MemoTokenBits);
            long now = Now(); // after the memo load: a clock reading no earlier than the memo's
            if (now < rounded << _fineShift
                && (!_coarse || (rounded << _fineShift) - now <= _coarseMinUnits)) // a coarse memo would answer this: it has expired, so let the owner renew it
            {
                // The hint never errs early: the memo's instant was rounded down by less than 2^shift units, and a
                // request above the memo's count waits one interval more per token.
                waitUnits = ((rounded + 1) << _fineShift) - now + ((tokens - (memo & MemoTokenMask)) * _interval);
                CountMemoRefusal();
                return true;
            }
        }

        waitUnits = 0;
        return false;
    }

    /// <summary>
    /// The memo refusal checked before the success path (system clock only). Same answers as checking it after the
    /// success path failed: a memo is written by the owner after it ended the cache epoch (so no thread cache holds live
    /// tokens while a memo lives) and cleared before the owner publishes a new batch (so no batch is open either);
    /// a live memo therefore means the success path would fail. It saves a refusal the thread-cache and batch-word reads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryMemoRefusalFirst(long tokens, out long leftMs)
    {
        // acquire: pairs with RememberShortage; 0 on every success stream. A request above the capacity goes on to the
        // slow path, which throws (uncounted).
        if (_coarse && TAtomics.LoadAcquire(ref _memo) != 0 && tokens <= Capacity)
        {
            return TryMemoRefusal(tokens, out leftMs);
        }

        leftMs = 0;
        return false;
    }

    /// <summary>
    /// A refusal on the memo, counted: true when a memo covers <paramref name="tokens"/> and the coarse clock is
    /// still before its good-until time; <paramref name="leftMs"/> is then the time to it (a hint that errs early).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryMemoRefusal(long tokens, out long leftMs)
    {
        long memo = TAtomics.LoadAcquire(ref _memo); // acquire: pairs with RememberShortage
        long shortOf = memo & MemoTokenMask;
        if (memo != 0 && tokens >= shortOf)
        {
            leftMs = (memo >> MemoTokenBits) - (Environment.TickCount64 - _originTick);
            if (leftMs > 0)
            {
                CountMemoRefusal();
                leftMs += tokens > shortOf ? CoarseMarginMs + ExtraMs(tokens - shortOf) : CoarseMarginMs; // back to the computed instant (within the coarse clock's lag); for a memo capped at MaxMemoMs, its end
                return true;
            }
        }

        leftMs = 0;
        return false;
    }

    /// <summary>Milliseconds for <paramref name="tokens"/> more tokens to refill, rounded up (out of line: the common refusal asks for the memo's own count).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private readonly long ExtraMs(long tokens) => (long)Math.Ceiling(tokens * _interval / _unitsPerMs);

    /// <summary>
    /// Counts a refusal made on a memo, exactly: on a per-thread slot of a ThreadOwnedCounter (no locked instruction),
    /// or, for the buckets of a keyed table (many buckets, each refused by any thread: a slot per bucket and thread
    /// would hold kilobytes per key), with one locked add on a field of the bucket.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountMemoRefusal()
    {
        if (_leanRefusalCount)
        {
            TAtomics.Add(ref _memoRefusedLean, 1); // full fence (only the count matters): exact, 8 bytes per bucket
            return;
        }

        (_memoRefused ?? CreateMemoCounter()).Increment(); // exact, no locked instruction: see ThreadOwnedCounter
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ThreadOwnedCounter CreateMemoCounter()
    {
        Interlocked.CompareExchange(ref _memoRefused, new ThreadOwnedCounter(), null); // publishes one counter; a loser's is dropped (it counted nothing)
        return _memoRefused!;
    }
}
