using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: planted bug (c), a missing full fence between a store and a later load. A one-shot Dekker entry
// protocol (E. W. Dijkstra, "Cooperating sequential processes", 1965): thread i raises flag[i], then enters the
// critical section only if flag[1 - i] is down. Under sequential consistency at most one thread enters. Under
// TSO (x86) the raised flag can sit in the store buffer while the load of the other flag runs, so both threads
// can read 0 and both enter, unless a full fence (TAtomics.FullFence) drains the buffer between the store and
// the load. Sequentially consistent exploration and happens-before race detection cannot see this (the flags
// are synchronising accesses, and no SC execution lets both in); the StoreBuffers simulation can.
// The flags live in a pinned array, as the store-buffer simulation requires.
internal sealed class FenceProtocol<TAtomics>(bool withFence)
    where TAtomics : struct, IAtomics
{
    private readonly long[] _flags = GC.AllocateArray<long>(2, pinned: true);
    private int _inside;
    private int _maxInside;

    /// <summary>The most threads that were in the critical section at once (must be at most 1).</summary>
    public int MaxInside => _maxInside;

    public void Run(int me)
    {
        TAtomics.StoreRelease(ref _flags[me], 1); // release: announces the intent to enter
        if (withFence)
        {
            TAtomics.FullFence(); // full fence: the store above is visible before the load below (store-load order)
        }

        if (TAtomics.LoadAcquire(ref _flags[1 - me]) == 0) // acquire: the other thread's flag
        {
            _inside++; // the critical section (test bookkeeping; only one logical thread runs at a time)
            _maxInside = Math.Max(_maxInside, _inside);
            _ = TAtomics.LoadAcquire(ref _flags[me]); // a scheduling point inside the critical section (not a fence: it must not drain)
            _inside--;
        }

        TAtomics.StoreRelease(ref _flags[me], 0); // release: leaves
    }
}
