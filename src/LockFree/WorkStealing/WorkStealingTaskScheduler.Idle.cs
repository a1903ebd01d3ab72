using LockFree.Internal;
using System.Runtime.CompilerServices;

namespace LockFree;

// Design: the searching/parked protocol (after Go's `nmspinning` and Tokio's `Idle`).
//
// _idleState packs two counts: bits 0-31 = workers searching (idle, scanning for work, unparked), bits 32-63 =
// workers parked (in _sleepers, blocked or about to block on their event). Every change is one interlocked add,
// made by the worker itself (begin/end searching, park) or, for a wake-up, by the waker under _sleepersLock
// (a parked worker moves to searching as it is popped).
//
// Producer (NotifyWork), after publishing a task with a release or interlocked store:
//   full fence (NotifyWorkAfterFence: an interlocked op after the publication already was one);
//   s = load(_idleState); if searching(s) == 0 && parked(s) > 0: wake one (under the lock, re-checked).
// Parking worker (Park), after a full scan found nothing:
//   lock { if shutting down or retiring: return; push self to _sleepers; add(parked +1, searching -1) }  (full fence)
//   re-check every queue; if anything is visible and nobody woke us: un-park self (back to searching).
//   wait for Notified.
// No lost wake-up. Take a task T published by producer P and a worker W that parks. P's fence orders its
// publication of T before its state load; W's add orders its state change before its re-check loads. In the
// single total order of the two fences, either P's load follows W's add, so P sees W parked; if P also sees no
// searcher it wakes one, and if it sees a searcher S, S is unparked and will either find T, or park itself and
// re-check (the same argument, with S in W's place), or find other work as the last searcher and wake one more
// worker (EndSearching), which then scans; a searcher that retires does the same. Or W's re-check follows
// P's fence, so W sees T and un-parks itself.
// Either way T is found by some unparked worker. A worker that is running a task (neither searching nor parked)
// scans again before it can park. So as long as a task is queued, not every worker stays parked.
// The protocol is modelled in tests/Concurrency/WorkStealing/ParkingProtocol.cs and explored under the
// controlled scheduler; the planted variant without the re-check deadlocks (a lost wake-up) and is found.
public sealed partial class WorkStealingTaskScheduler
{
    private const long OneSearching = 1;
    private const long OneParked = 1L << 32;

    private readonly object _sleepersLock = new();
    private readonly List<Worker> _sleepers = new();
    private long _idleState;
    private bool _shutdown; // written under _sleepersLock, read racily by the worker loop

    /// <summary>Workers parked now (a snapshot).</summary>
    internal int ParkedWorkers => Parked(Volatile.Read(ref _idleState));

    /// <summary>Workers searching now (a snapshot).</summary>
    internal int SearchingWorkers => Searching(Volatile.Read(ref _idleState));

    /// <summary>Dispose told the workers to exit (step 3); internal for tests.</summary>
    internal bool IsShuttingDown => Volatile.Read(ref _shutdown);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Searching(long state) => (int)(state & 0xFFFF_FFFF);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Parked(long state) => (int)(state >>> 32);

    /// <summary>Called after publishing work: wakes a parked worker only when nobody is searching. Cheap otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NotifyWork()
    {
        Interlocked.MemoryBarrier(); // full fence: the task's publication before the state load; pairs with Park's add
        NotifyWorkAfterFence();
    }

    /// <summary><see cref="NotifyWork"/> for a caller whose last step after publishing was already a full fence (an interlocked operation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NotifyWorkAfterFence()
    {
        long state = Volatile.Read(ref _idleState);
        if (Searching(state) == 0 && Parked(state) != 0)
        {
            WakeOne();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WakeOne()
    {
        Worker? woken = null;
        using (InterruptDeferral.Lock(_sleepersLock))
        {
            // Re-check under the lock: another producer may have woken one already (who is now searching).
            long state = Volatile.Read(ref _idleState);
            if (Searching(state) == 0 && _sleepers.Count > 0)
            {
                woken = _sleepers[^1];
                _sleepers.RemoveAt(_sleepers.Count - 1);
                Interlocked.Add(ref _idleState, OneSearching - OneParked); // the woken worker starts searching
                Volatile.Write(ref woken.Notified, true);
            }
        }

        if (woken is not null)
        {
            // Interrupt-safe: a plain Set threw a pending interrupt when the event's monitor was contended, after the
            // woken worker was counted as searching but before it was pulsed, and a worker loop that was waking it lost
            // the task in its hand. (Found by QueueTask_InterruptPendingWhileTheWokenWorkersEventIsContended_WakesItAndDefersTheInterrupt
            // and Bursts_WhileWorkersAreInterruptedAtRandom_EveryTaskRunsExactlyOnce, which failed intermittently.)
            InterruptDeferral.Set(woken.Event);
        }
    }

    private void BeginSearching(Worker worker)
    {
        worker.Searching = true;
        Interlocked.Add(ref _idleState, OneSearching);
    }

    /// <summary>A searcher found work (or retires). If it was the last searcher, it hands the search on (Go's wakep).</summary>
    private void EndSearching(Worker worker)
    {
        worker.Searching = false;
        long state = Interlocked.Add(ref _idleState, -OneSearching);
        if (Searching(state) == 0 && Parked(state) != 0)
        {
            WakeOne();
        }
    }

    /// <summary>A worker that exits at shutdown stops counting as a searcher (every worker is leaving; nothing to hand on).</summary>
    private void LeaveSearching(Worker worker)
    {
        if (worker.Searching)
        {
            worker.Searching = false;
            Interlocked.Add(ref _idleState, -OneSearching);
        }
    }

    /// <summary>Parks the worker until it is woken, or returns at once when it must exit or work became visible.</summary>
    private void Park(Worker worker)
    {
        using (InterruptDeferral.Lock(_sleepersLock))
        {
            if (_shutdown || worker.RetireRequested)
            {
                return; // the loop exits or retires next
            }

            _sleepers.Add(worker);
            long change = OneParked - (worker.Searching ? OneSearching : 0);
            worker.Searching = false;
            Interlocked.Add(ref _idleState, change); // full fence: pairs with NotifyWork's fence (see the design)
        }

        if (HasVisibleWork())
        {
            using (InterruptDeferral.Lock(_sleepersLock))
            {
                if (!worker.Notified && _sleepers.Remove(worker))
                {
                    Interlocked.Add(ref _idleState, OneSearching - OneParked); // un-park self
                    worker.Searching = true;
                    return;
                }
            }

            // Someone woke us meanwhile: the wait below returns at once.
        }

        // Notified is the truth; the event only blocks. A Set left over from an earlier wake-up (the waker sets the
        // event after releasing the lock) makes Wait return early: reset and re-check. A waker's Set always follows
        // its Notified write, so a Reset made before a re-check that still reads false cannot swallow it.
        while (!Volatile.Read(ref worker.Notified)) // acquire: pairs with the waker's write under the lock
        {
            try
            {
                worker.Event.Wait();
            }
            catch (ThreadInterruptedException)
            {
                // Dropped: the worker is idle, no user code runs here to receive it (see InterruptDeferral). Before,
                // it went unhandled and ended the process (Worker_InterruptedWhileParked_DropsItAndKeepsWorking).
            }

            if (!Volatile.Read(ref worker.Notified))
            {
                worker.Event.Reset();
            }
        }

        Volatile.Write(ref worker.Notified, false);
        worker.Searching = true; // the waker counted us as searching
    }

    /// <summary>The re-check after parking: anything queued anywhere (a snapshot).</summary>
    private bool HasVisibleWork()
    {
        if (!_injection.IsEmpty || !_spill.IsEmpty)
        {
            return true;
        }

        foreach (Worker? other in _workers)
        {
            if (other is not null && (!other.Deque.IsEmpty || !other.ForkDeque.IsEmpty || Volatile.Read(ref other.Slot) is not null))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Wakes a parked worker that has to retire.</summary>
    private void WakeForRetire(Worker worker)
    {
        bool woken = false;
        using (InterruptDeferral.Lock(_sleepersLock))
        {
            Volatile.Write(ref worker.RetireRequested, true);
            if (_sleepers.Remove(worker))
            {
                Interlocked.Add(ref _idleState, OneSearching - OneParked);
                Volatile.Write(ref worker.Notified, true);
                woken = true;
            }
        }

        if (woken)
        {
            InterruptDeferral.Set(worker.Event); // interrupt-safe, as in WakeOne
        }
    }

    /// <summary>Dispose, step 3: every worker exits after its next empty scan; parked ones are woken for it.</summary>
    private void BeginShutdown()
    {
        Worker[] woken;
        using (InterruptDeferral.Lock(_sleepersLock))
        {
            Volatile.Write(ref _shutdown, true);
            woken = _sleepers.ToArray();
            _sleepers.Clear();
            foreach (Worker worker in woken)
            {
                Interlocked.Add(ref _idleState, OneSearching - OneParked);
                Volatile.Write(ref worker.Notified, true);
            }
        }

        foreach (Worker worker in woken)
        {
            InterruptDeferral.Set(worker.Event); // interrupt-safe, as in WakeOne
        }
    }
}
