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

    public StoreBuffers(int threadCount, int drainOdds = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(drainOdds, 2);
        _drainOdds = drainOdds;
        _buffers = new Queue<(nint, long, bool)>[threadCount + 1];
        for (int t = 0; t <= threadCount; t++)
        {
            _buffers[t] = new Queue<(nint, long, bool)>();
        }
    }

    public void Store(int thread, nint address, long value, bool wide) => _buffers[thread].Enqueue((address, value, wide));

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

    private void DrainOne(int thread)
    {
        var (address, value, wide) = _buffers[thread].Dequeue();
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
