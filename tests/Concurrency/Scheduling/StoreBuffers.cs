namespace LockFree.Tests.Concurrency.Scheduling;

// Design: a total-store-order (x86-TSO, Owens, Sarkar, Sewell, "A better x86 memory model: x86-TSO", TPHOLs 2009)
// store-buffer simulation, so sequentially consistent exploration can see a missing full fence.
//
// Each logical thread has a FIFO of pending stores. With the simulation on, StoreRelease (int and long) and
// StorePlain of int/long enter the running thread's buffer instead of memory; loads by the same thread read
// their newest buffered value for the address (store forwarding), loads by others read memory. A buffer drains
// completely at FullFence, at every read-modify-write (locked instructions drain on x86) and when its thread
// ends; at every scheduling point the strategy also decides, per thread with pending stores, whether the oldest
// one drains now. So the exploration covers the store-buffer reorderings (a store delayed past a later load).
//
// Limits: the buffered store is written later through a raw pointer, so the locations must not move: use it
// only for test protocols whose shared words live in pinned arrays (GC.AllocateArray(pinned: true)). The race
// detector still takes its happens-before edges at the time of the store, not of the drain.
internal sealed unsafe class StoreBuffers
{
    private readonly Queue<(nint Address, long Value, bool Wide)>[] _buffers;

    private readonly int _drainOdds;

    private readonly int _collections; // gen-0 collections when the buffers were made (guardMoves only), else -1

    /// <param name="threadCount">Logical threads.</param>
    /// <param name="drainOdds">A thread's oldest store drains at a scheduling point with probability 1/odds.</param>
    /// <param name="guardMoves">
    /// The locations are fields of ordinary objects held still by a no-GC region: a drain after a collection (the region
    /// broke) writes nothing, since the address may now be another object's, and sets <see cref="Moved"/>.
    /// </param>
    public StoreBuffers(int threadCount, int drainOdds = 2, bool guardMoves = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(drainOdds, 2);
        _drainOdds = drainOdds;
        _collections = guardMoves ? GC.CollectionCount(0) : -1;
        _buffers = new Queue<(nint, long, bool)>[threadCount + 1];
        for (int t = 0; t <= threadCount; t++)
        {
            _buffers[t] = new Queue<(nint, long, bool)>();
        }
    }

    public void Store(int thread, nint address, long value, bool wide) => _buffers[thread].Enqueue((address, value, wide));

    /// <summary>Whether <paramref name="thread"/> has stores waiting in its buffer.</summary>
    public bool HasPending(int thread) => _buffers[thread].Count > 0;

    public bool TryForward(int thread, nint address, out long value)
    {
        value = 0;
        bool found = false;
        foreach (var (a, v, _) in _buffers[thread])
        {
            if (a == address)
            {
                value = v;
                found = true;
            }
        }

        return found;
    }

    public void DrainAll(int thread)
    {
        while (_buffers[thread].Count > 0)
        {
            DrainOne(thread);
        }
    }

    /// <summary>Lets the strategy drain the oldest store of any thread with pending stores.</summary>
    /// <summary>Drains every thread's buffer (a process-wide barrier).</summary>
    public void DrainEveryone()
    {
        for (int t = 0; t < _buffers.Length; t++)
        {
            DrainAll(t);
        }
    }

    public void MaybeDrain(Strategy strategy, ReadOnlySpan<int> threads)
    {
        foreach (int t in threads)
        {
            if (_buffers[t].Count > 0 && strategy.PickChoice(_drainOdds) == _drainOdds - 1)
            {
                DrainOne(t);
            }
        }
    }

    /// <summary>A drain found that a collection had run (guardMoves): its store was dropped, and the schedule is void.</summary>
    public bool Moved { get; private set; }

    private void DrainOne(int thread)
    {
        var (address, value, wide) = _buffers[thread].Dequeue();
        if (_collections >= 0 && GC.CollectionCount(0) != _collections)
        {
            Moved = true; // the object may have moved: writing through the old address could corrupt the heap
            return;
        }

        if (wide)
        {
            Volatile.Write(ref *(long*)address, value);
        }
        else
        {
            Volatile.Write(ref *(int*)address, (int)value);
        }
    }
}
