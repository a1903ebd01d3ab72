using LockFree.Internal;

namespace LockFree;

// Design: two counters (requests, accepts) over a sliding window of Buckets time buckets, lock-free and exact.
// Each bucket is one 64-bit word [epoch: 20 bits | requests: 22 bits | accepts: 22 bits], epoch = the bucket's time
// index mod 2^20, and slot = epoch mod Buckets. A record CASes its slot's word:
//   - the word's epoch is ours: add;
//   - the word's epoch is older than ours: reset the word to our epoch and count, in the same CAS;
//   - the word's epoch is NEWER than ours (this thread read the clock, was delayed past the slot's next turn, and
//     another thread already reset it): add to the newer bucket. Resetting it back to our old epoch would wipe the
//     newer counts (the planted bug the controlled-scheduler test finds); adding keeps every record, counted in a
//     bucket at most one window late.
// Epochs are compared mod 2^20, so "newer" must be bounded: a word is newer only when it is at most MaxDelayWindows
// windows ahead of ours (the longest delay between a recorder's clock read and its CAS that is still honoured);
// anything else is older, however far. (It used to be "ahead by less than 2^19", so a word untouched for 2^19 to
// 2^20 epochs - or a fresh zeroed word while the clock's epoch sat in the upper half of the range - read as newer:
// counts went into it and no sum ever saw them, a throttle blind for up to 2^19 buckets.) A count saturates at
// 2^22 − 1 per bucket. A reader sums the words whose epoch lies in the last Buckets epochs. Progress: lock-free (a CAS fails
// only because another record succeeded on the same bucket).

/// <summary>The counting window behind <see cref="ClientSideThrottle"/>, generic over the atomics seam.</summary>
internal sealed class SlidingCountWindow<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>What to add for one request.</summary>
    internal const long Request = 1L << RequestShift;

    /// <summary>What to add for one accept.</summary>
    internal const long Accept = 1;

    /// <summary>Largest count per bucket.</summary>
    internal const long CountMax = (1L << 22) - 1;

    private const int EpochShift = 44;
    private const int RequestShift = 22;
    private const long EpochMask = (1L << 20) - 1;

    /// <summary>Windows a recorder may lag (between its clock read and its CAS) and still add to a newer bucket; a
    /// word further ahead than that is a stale one whose epoch wrapped. Far beyond any real preemption or GC pause,
    /// far below the 2^19 epochs where "ahead" and "behind" become ambiguous (16 × 1024 buckets = 2^14).</summary>
    private const long MaxDelayWindows = 16;

    private readonly long[] _buckets;
    private readonly long _maxAhead;

    public SlidingCountWindow(int buckets)
    {
        _buckets = new long[buckets];
        _maxAhead = MaxDelayWindows * buckets;
    }

    /// <summary>Adds <paramref name="increment"/> (<see cref="Request"/> or <see cref="Accept"/>) to the bucket of <paramref name="epoch"/>.</summary>
    public void Record(long epoch, long increment)
    {
        long tag = epoch & EpochMask;
        long slot = epoch % _buckets.Length;
        ref long word = ref _buckets[(int)(slot < 0 ? slot + _buckets.Length : slot)]; // a negative epoch's remainder is negative
        long seen = TAtomics.LoadAcquire(ref word); // acquire: the bucket to add to
        while (true)
        {
            long next;
            long age = (tag - ((seen >>> EpochShift) & EpochMask)) & EpochMask; // how far the bucket's epoch is behind ours, mod 2^20
            if (age != 0 && EpochMask + 1 - age > _maxAhead)
            {
                next = (tag << EpochShift) + increment; // older bucket: reset it and count, in the same CAS
            }
            else
            {
                // Ours, or newer (we were delayed): add.
                long count = increment == Accept ? seen & CountMax : (seen >> RequestShift) & CountMax;
                if (count == CountMax)
                {
                    return; // saturated: the ratio is what matters
                }

                next = seen + increment;
            }

            long prior = TAtomics.CompareExchange(ref word, next, seen); // full fence: the count; fails only if another record moved this bucket
            if (prior == seen)
            {
                return;
            }

            seen = prior;
        }
    }

    /// <summary>Sums the buckets of the window that ends at <paramref name="epoch"/> (its last Buckets epochs).</summary>
    public (long Requests, long Accepts) Sum(long epoch)
    {
        long requests = 0, accepts = 0;
        long n = _buckets.Length;
        long tag = epoch & EpochMask;
        for (int i = 0; i < _buckets.Length; i++)
        {
            long word = TAtomics.LoadAcquire(ref _buckets[i]); // acquire: a snapshot of one bucket
            long age = (tag - ((word >>> EpochShift) & EpochMask)) & EpochMask;
            if (age < n)
            {
                requests += (word >> RequestShift) & CountMax;
                accepts += word & CountMax;
            }
        }

        return (requests, accepts);
    }
}
