using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>Which bug, if any, the parking model carries.</summary>
public enum ParkingBug
{
    /// <summary>The protocol as WorkStealingTaskScheduler implements it.</summary>
    None,

    /// <summary>A parking worker does not re-check the queues after announcing itself parked.</summary>
    NoRecheckAfterPark,

    /// <summary>A retiring searcher leaves without handing the search on (the bug the stress test found in development).</summary>
    NoHandOffOnRetire,
}

// Design: a model of WorkStealingTaskScheduler's searching/parked protocol (WorkStealingTaskScheduler.Idle.cs), small
// enough for schedule exploration: an item counter stands for the queues, a CAS spin lock for _sleepersLock, and a
// ControlledEventCount per worker for its ManualResetEventSlim. Step for step it mirrors NotifyWork, WakeOne,
// BeginSearching/EndSearching, Park (announce parked under the lock with one add, re-check, un-park self or wait on
// Notified), retirement of a searcher (TryRetire) and BeginShutdown; the last consumer plays Dispose and shuts down,
// so a correct run always terminates.
// The planted NoRecheckAfterPark variant loses a wake-up: a producer that read the state before the worker's park
// saw a searcher and woke nobody, and the worker sleeps with an item queued; nothing shuts down and the controlled
// scheduler reports a deadlock. NoHandOffOnRetire: a producer saw the retiring worker searching and woke nobody,
// and the retiree left without waking the parked one. The correct model also runs with the TSO store-buffer simulation (the producer's
// publication is a release store, so only its full fence orders it before the state load). A planted "no producer
// fence" variant needs the buffered store to survive about eleven scheduling points, each draining it with
// probability 1/2, so it is not found within the CI budget; the fence is argued in the scheduler's design comment.
internal sealed class ParkingProtocol<TAtomics>
    where TAtomics : struct, IAtomics
{
    private const long OneSearching = 1;
    private const long OneParked = 1L << 32;

    // Every shared word lives in one pinned array, as the store-buffer simulation requires.
    private const int Published = 0; // items the producer made visible (release store: the deque push / ring publish)
    private const int Consumed = 1;  // items taken (CAS)
    private const int StateWord = 2; // searching | parked << 32
    private const int LockWord = 3;  // the sleepers lock
    private const int TakenWord = 4; // consumption count for the shutdown decision
    private const int DoneWord = 5;  // shutdown flag (under the lock)
    private const int PerWorker = 6; // then per worker: in-sleepers, notified

    private readonly int _items;
    private readonly int _workers;
    private readonly ParkingBug _bug;
    private readonly bool _retireLast;
    private readonly long[] _w;
    private readonly ControlledEventCount[] _events;

    // retireLast: the last worker starts as a searcher (as a worker woken to retire is counted) and retires at once.
    public ParkingProtocol(int workers, int items, ParkingBug bug, bool retireLast = false)
    {
        _items = items;
        _workers = workers;
        _bug = bug;
        _retireLast = retireLast;
        _w = GC.AllocateArray<long>(PerWorker + (2 * workers), pinned: true);
        if (retireLast)
        {
            _w[StateWord] = OneSearching;
        }

        _events = new ControlledEventCount[workers];
        for (int i = 0; i < workers; i++)
        {
            _events[i] = new ControlledEventCount();
        }
    }

    public long Taken => _w[TakenWord];

    public long State => _w[StateWord];

    private ref long _queue => ref _w[Published];

    private ref long _state => ref _w[StateWord];

    private ref long _lock => ref _w[LockWord];

    private ref long _taken => ref _w[TakenWord];

    private ref long _done => ref _w[DoneWord];

    private ref long InSleepers(int worker) => ref _w[PerWorker + (2 * worker)];

    private ref long Notified(int worker) => ref _w[PerWorker + (2 * worker) + 1];

    public void Producer()
    {
        for (int k = 0; k < _items; k++)
        {
            TAtomics.StoreRelease(ref _queue, k + 1); // release: publishes the item (a deque push is a release store, not a fence)
            NotifyWork();
        }

        // The producer goes on with other work (scheduling points, no fence), so its store buffer does not drain at
        // thread end right after its last state load.
        for (int i = 0; i < 4; i++)
        {
            _ = TAtomics.LoadAcquire(ref _w[TakenWord]);
        }
    }

    public void Worker(int me)
    {
        bool retiring = _retireLast && me == _workers - 1;
        bool searching = retiring;
        while (true)
        {
            if (retiring)
            {
                // TryRetire: a retiring searcher hands the search on if it was the last one (EndSearching).
                long s = TAtomics.Add(ref _state, -OneSearching);
                if (_bug != ParkingBug.NoHandOffOnRetire && Searching(s) == 0 && Parked(s) != 0)
                {
                    WakeOne();
                }

                return;
            }

            if (TryTake())
            {
                if (searching)
                {
                    searching = false;
                    long s = TAtomics.Add(ref _state, -OneSearching);
                    if (Searching(s) == 0 && Parked(s) != 0)
                    {
                        WakeOne(); // hand the search on
                    }
                }

                if (TAtomics.Add(ref _taken, 1) == _items)
                {
                    Shutdown();
                }

                continue;
            }

            if (TAtomics.LoadAcquire(ref _done) != 0)
            {
                if (searching)
                {
                    TAtomics.Add(ref _state, -OneSearching);
                }

                return;
            }

            if (!searching)
            {
                searching = true; // one search round as a searcher before parking
                TAtomics.Add(ref _state, OneSearching);
                continue;
            }

            // Park.
            Lock();
            if (TAtomics.LoadAcquire(ref _done) != 0)
            {
                Unlock();
                continue;
            }

            TAtomics.StorePlain(ref InSleepers(me), 1L); // plain: under the lock
            TAtomics.Add(ref _state, OneParked - OneSearching); // full fence: pairs with NotifyWork's fence
            searching = false;
            Unlock();

            if (_bug != ParkingBug.NoRecheckAfterPark && TAtomics.LoadAcquire(ref _queue) > TAtomics.LoadAcquire(ref _w[Consumed]))
            {
                Lock();
                if (TAtomics.LoadAcquire(ref Notified(me)) == 0 && TAtomics.LoadPlain(ref InSleepers(me)) == 1)
                {
                    TAtomics.StorePlain(ref InSleepers(me), 0L);
                    TAtomics.Add(ref _state, OneSearching - OneParked); // un-park self
                    searching = true;
                    Unlock();
                    continue;
                }

                Unlock();
            }

            while (true)
            {
                long ticket = _events[me].PrepareWait();
                if (TAtomics.LoadAcquire(ref Notified(me)) != 0) // acquire: pairs with the waker's release
                {
                    break;
                }

                _events[me].CommitWait(ticket);
            }

            TAtomics.StoreRelease(ref Notified(me), 0);
            searching = true; // the waker counted us as searching
        }
    }

    private static int Searching(long state) => (int)(state & 0xFFFF_FFFF);

    private static int Parked(long state) => (int)(state >>> 32);

    private void NotifyWork()
    {
        TAtomics.FullFence(); // the publication before the state load (the store-load edge of the argument)

        long s = TAtomics.LoadAcquire(ref _state);
        if (Searching(s) == 0 && Parked(s) != 0)
        {
            WakeOne();
        }
    }

    private void WakeOne()
    {
        int woken = -1;
        Lock();
        long s = TAtomics.LoadAcquire(ref _state);
        if (Searching(s) == 0)
        {
            for (int i = 0; i < _workers; i++)
            {
                if (TAtomics.LoadPlain(ref InSleepers(i)) == 1)
                {
                    TAtomics.StorePlain(ref InSleepers(i), 0L);
                    TAtomics.Add(ref _state, OneSearching - OneParked);
                    TAtomics.StoreRelease(ref Notified(i), 1);
                    woken = i;
                    break;
                }
            }
        }

        Unlock();
        if (woken >= 0)
        {
            _events[woken].NotifyAll();
        }
    }

    private void Shutdown()
    {
        var woken = new List<int>();
        Lock();
        TAtomics.StoreRelease(ref _done, 1);
        for (int i = 0; i < _workers; i++)
        {
            if (TAtomics.LoadPlain(ref InSleepers(i)) == 1)
            {
                TAtomics.StorePlain(ref InSleepers(i), 0L);
                TAtomics.Add(ref _state, OneSearching - OneParked);
                TAtomics.StoreRelease(ref Notified(i), 1);
                woken.Add(i);
            }
        }

        Unlock();
        foreach (int i in woken)
        {
            _events[i].NotifyAll();
        }
    }

    private bool TryTake()
    {
        while (true)
        {
            long consumed = TAtomics.LoadAcquire(ref _w[Consumed]);
            if (consumed >= TAtomics.LoadAcquire(ref _queue)) // acquire: pairs with the producer's release
            {
                return false;
            }

            if (TAtomics.CompareExchange(ref _w[Consumed], consumed + 1, consumed) == consumed)
            {
                return true;
            }
        }
    }

    private void Lock()
    {
        var spinner = default(SpinWait);
        while (TAtomics.CompareExchange(ref _lock, 1, 0) != 0) // acquire (full fence)
        {
            TAtomics.SpinOnce(ref spinner);
        }
    }

    private void Unlock() => TAtomics.Add(ref _lock, -1); // release (an interlocked op, as Monitor.Exit's is): the critical section's writes
}
