using LockFree.Internal;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>The variants of <see cref="WheelSleepProtocol{TAtomics}"/>: the real one and a planted bug.</summary>
public enum WheelSleepVariant
{
    /// <summary>As the wheel's driver: raise Stale, process-wide barrier (through the seam), rescan the lanes.</summary>
    Correct,

    /// <summary>Planted: the driver goes to sleep without rescanning the lanes (found under sequential consistency).</summary>
    NoRescan,
}

// Design: a model of the timer wheel's sleep handshake (TimerWheelEngine.Driver.cs DriverLoop, Lanes.cs), small
// enough to explore exhaustively, the shared words in a pinned array (the store-buffer simulation needs pinned
// locations), each access through the atomics seam with the engine's orderings:
//   Scheduler: the lane slot (plain), the lane tail (release store), then Flags (acquire load, NO fence: the lane
//              push is not a locked instruction); Stale seen: lower PlannedWake by CAS and wake the driver.
//   Driver:    its scan found the lane empty; PlannedWake = 10 (release), Stale by CAS, ProcessWideBarrier, rescan
//              the lane tail; empty: sleep until 10.
// Safety (checked after both finish): the timer due at 5 is taken in by the driver (a scan saw it) or the
// scheduler woke the driver. Otherwise the driver sleeps until 10: a lost wake-up. Under store buffers the
// scheduler's tail store may still sit in its buffer when its Flags load runs (x86 lets a load pass an earlier
// store); the driver's barrier drains it, so the rescan sees the timer. The barrier's planted twin is
// PlantedBug.DroppedProcessWideBarrier (TestAtomics): invisible without store buffers, found with them.
internal sealed class WheelSleepProtocol<TAtomics>(WheelSleepVariant variant)
    where TAtomics : struct, IAtomics
{
    private const int Slot = 0;        // the lane's one slot: the timer's due tick
    private const int Tail = 1;        // the lane's published tail
    private const int Flags = 2;       // 1: Stale
    private const int PlannedWake = 3; // the tick the driver sleeps until
    private const int Sleeping = 4;    // the driver parked (a word to touch while parked)
    private const long Due = 5;

    private readonly long[] _shared = GC.AllocateArray<long>(5, pinned: true);
    private bool _takenIn;
    private bool _slept;

    public WheelSleepProtocol()
        : this(WheelSleepVariant.Correct)
    {
    }

    public bool Woken { get; private set; }

    public void Setup() => _shared[PlannedWake] = long.MaxValue;

    public void Scheduler()
    {
        TAtomics.StorePlain(ref _shared[Slot], Due);  // the slot
        TAtomics.StoreRelease(ref _shared[Tail], 1);  // release: the lane push (no fence)
        if ((TAtomics.LoadAcquire(ref _shared[Flags]) & 1) != 0) // acquire: the Dekker load, after the push
        {
            while (true)
            {
                long planned = TAtomics.LoadAcquire(ref _shared[PlannedWake]);
                if (Due >= planned)
                {
                    return;
                }

                if (TAtomics.CompareExchange(ref _shared[PlannedWake], Due, planned) == planned)
                {
                    Woken = true; // the thread that lowers the planned wake-up signals the driver
                    return;
                }
            }
        }

        // The scheduler goes on with other work (scheduling points that drain nothing): its thread's end would
        // drain its store buffer, and a real scheduler's stores may stay buffered that long.
        for (int i = 0; i < 4; i++)
        {
            _ = TAtomics.LoadAcquire(ref _shared[Sleeping]);
        }
    }

    public void Driver()
    {
        Scan();
        if (_takenIn)
        {
            return; // the pass took the timer in: it re-plans with it
        }

        TAtomics.StoreRelease(ref _shared[PlannedWake], 10);
        long flags = TAtomics.LoadAcquire(ref _shared[Flags]);
        TAtomics.CompareExchange(ref _shared[Flags], flags | 1, flags); // raise Stale (a locked instruction)
        if (variant == WheelSleepVariant.Correct)
        {
            TAtomics.ProcessWideBarrier(); // every thread's pending stores become visible before the rescan
            Scan();
            if (_takenIn)
            {
                return;
            }
        }

        _slept = true;
        _ = TAtomics.LoadAcquire(ref _shared[Sleeping]); // parked: a scheduling point that drains nothing
    }

    public void Check()
    {
        if (!_takenIn && !Woken)
        {
            throw new InvalidOperationException($"lost wake-up: the timer due at {Due} is in the lane but the driver sleeps until 10 (slept {_slept})");
        }
    }

    private void Scan()
    {
        if (TAtomics.LoadAcquire(ref _shared[Tail]) != 0)
        {
            _ = TAtomics.LoadPlain(ref _shared[Slot]);
            _takenIn = true;
        }
    }
}
