using LockFree.Internal;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>Which bug, if any, the shutdown exit model carries.</summary>
public enum ShutdownExitBug
{
    /// <summary>The rule as WorkStealingTaskScheduler implements it (MayLeaveAtShutdown).</summary>
    None,

    /// <summary>The rule before the fix: workers leave once all are idle and nothing is visible, ignoring running LongRunning tasks.</summary>
    NoLongRunningCheck,

    /// <summary>The LongRunning count is read after the last look at the queues instead of before it.</summary>
    CountReadAfterLastLook,

    /// <summary>Idle workers do not announce their scans (and nobody checks): a task taken by a worker still counted idle is missed.</summary>
    NoScanAnnouncement,

    /// <summary>Scans are announced, but a leaving worker does not check that the others have seen the shutdown (a scan begun before it is not announced).</summary>
    NoShutdownSeenCheck,
}

// Design: a model of the workers' exit rule during WorkStealingTaskScheduler.Dispose (WorkStealingTaskScheduler.Dispose.cs,
// MayLeaveAtShutdown, and the shutdown branch of the worker loop), small enough for schedule exploration. A counter
// pair stands for the queues (published / consumed, taken with a CAS), and the words _idleState, _liveWorkers and
// _longRunningActive are modelled one to one. Worker 0 starts out running the draining task that started one
// LongRunning task (so the count starts at 1, as StartLongRunning increments it before the thread starts); the other
// workers start idle (searching). The LongRunning task queues one late task (an interlocked enqueue, as Inject's ring
// CAS) and finishes (the interlocked decrement). The late task, run by whichever worker takes it, queues one more.
// Every run must end with both tasks run and every worker gone, and no worker may leave while another holds or runs a
// task (a ghost count, no scheduling point: the holder could block on work it queues, with nobody left to run it).
// Idle workers announce each scan (Scanning, then a full fence, before the take; cleared after EndSearching) once they
// have seen the shutdown; the last worker starts as one that has not (its first scan is not announced), as a worker
// that read the flag just before Dispose set it. NoLongRunningCheck is the rule before the fix: the workers may all
// leave before the late task is queued, which then never runs (Dispose ran it on its own thread, and a task that
// blocked on another deadlocked it). CountReadAfterLastLook reads the count after the last look: the task is queued
// and the count drops between the two, and the worker leaves with the task queued. NoScanAnnouncement: a searching
// worker takes the late task while it still counts as idle, the other's last look misses it and it leaves.
// NoShutdownSeenCheck: the same through the one scan made before the taker saw the shutdown.
internal sealed class ShutdownExitProtocol<TAtomics>
    where TAtomics : struct, IAtomics
{
    private const int Published = 0;   // tasks queued (interlocked)
    private const int Consumed = 1;    // tasks taken (CAS)
    private const int SearchingWord = 2; // idle workers (interlocked; none parks during shutdown, so idle = searching)
    private const int LiveWord = 3;    // workers not yet gone (interlocked)
    private const int LongRunningWord = 4; // LongRunning tasks started and not finished (interlocked)
    private const int RanWord = 5;     // tasks run (interlocked)
    private const int PerWorker = 6;   // then per worker: ShutdownSeen, Scanning

    private readonly ShutdownExitBug _bug;
    private readonly int _workers;
    private readonly long[] _w;
    private int _inFlight; // ghost (no scheduling point): tasks taken and not yet run to the end

    public ShutdownExitProtocol(int workers, ShutdownExitBug bug)
    {
        _bug = bug;
        _workers = workers;
        _w = GC.AllocateArray<long>(PerWorker + (2 * workers), pinned: true); // one pinned array, as the store-buffer simulation requires
        _w[LiveWord] = workers;
        _w[SearchingWord] = workers - 1; // worker 0 is running the draining task
        _w[LongRunningWord] = 1;         // counted by that task before it started the LongRunning thread
        for (int i = 0; i < workers; i++)
        {
            _w[PerWorker + (2 * i)] = i == workers - 1 && workers > 1 ? 0 : 1; // the last worker has not seen the shutdown yet
        }
    }

    private ref long ShutdownSeen(int worker) => ref _w[PerWorker + (2 * worker)];

    private ref long Scanning(int worker) => ref _w[PerWorker + (2 * worker) + 1];

    /// <summary>Tasks run.</summary>
    public long Ran => _w[RanWord];

    /// <summary>Tasks queued.</summary>
    public long Queued => _w[Published];

    /// <summary>Workers not yet gone.</summary>
    public long Live => _w[LiveWord];

    public void LongRunningTask()
    {
        Enqueue(); // the late task
        TAtomics.Add(ref _w[LongRunningWord], -1); // full fence after the enqueue: pairs with MayLeave's acquire read
    }

    public void Worker(int me)
    {
        bool searching = me != 0;
        bool announce = _bug != ShutdownExitBug.NoScanAnnouncement;
        var spinner = default(SpinWait);
        while (true)
        {
            // BeginShutdownScan: once this worker has seen the shutdown, an idle scan is announced before any take.
            bool scanning = false;
            if (announce && searching && TAtomics.LoadPlain(ref ShutdownSeen(me)) != 0)
            {
                TAtomics.StoreRelease(ref Scanning(me), 1);
                TAtomics.FullFence(); // the announcement before the take; pairs with MayLeave
                scanning = true;
            }

            if (TryTake())
            {
                _inFlight++;
                if (searching)
                {
                    searching = false;
                    TAtomics.Add(ref _w[SearchingWord], -1); // EndSearching
                }

                if (scanning)
                {
                    TAtomics.StoreRelease(ref Scanning(me), 0); // EndShutdownScan, after EndSearching
                }

                if (TAtomics.Add(ref _w[RanWord], 1) == 1)
                {
                    Enqueue(); // the late task queues one more (to this worker's deque: stealable)
                }

                _inFlight--;
                continue;
            }

            TAtomics.StoreRelease(ref ShutdownSeen(me), 1); // the shutdown branch: from now on scans are announced
            if (!searching)
            {
                searching = true;
                TAtomics.Add(ref _w[SearchingWord], 1); // BeginSearching
            }

            if (scanning)
            {
                TAtomics.StoreRelease(ref Scanning(me), 0);
            }

            if (MayLeave(me))
            {
                if (_inFlight != 0)
                {
                    throw new InvalidOperationException($"worker {me} left while another held or ran a task");
                }

                TAtomics.Add(ref _w[SearchingWord], -1); // LeaveSearching, then the live count
                TAtomics.Add(ref _w[LiveWord], -1);
                return;
            }

            TAtomics.SpinOnce(ref spinner); // the Sleep(1) of the worker loop
        }
    }

    private bool MayLeave(int me)
    {
        if (!AllIdle())
        {
            return false;
        }

        switch (_bug)
        {
            case ShutdownExitBug.NoLongRunningCheck:
                return !Visible();
            case ShutdownExitBug.CountReadAfterLastLook:
                return !Visible() && TAtomics.LoadAcquire(ref _w[LongRunningWord]) == 0;
        }

        if (TAtomics.LoadAcquire(ref _w[LongRunningWord]) != 0 || Visible()) // acquire: pairs with LongRunningTask's decrement
        {
            return false;
        }

        if (_bug == ShutdownExitBug.NoScanAnnouncement)
        {
            return true; // the rule of the first fix: all idle, no LongRunning task, nothing visible
        }

        for (int i = 0; i < _workers; i++)
        {
            if (i != me
                && ((_bug != ShutdownExitBug.NoShutdownSeenCheck && TAtomics.LoadAcquire(ref ShutdownSeen(i)) == 0)
                    || TAtomics.LoadAcquire(ref Scanning(i)) != 0))
            {
                return false;
            }
        }

        return AllIdle();
    }

    private bool AllIdle() => TAtomics.LoadAcquire(ref _w[SearchingWord]) >= TAtomics.LoadAcquire(ref _w[LiveWord]);

    private bool Visible() => TAtomics.LoadAcquire(ref _w[Published]) > TAtomics.LoadAcquire(ref _w[Consumed]);

    private void Enqueue() => TAtomics.Add(ref _w[Published], 1); // interlocked, as the ring's enqueue CAS

    private bool TryTake()
    {
        while (true)
        {
            long consumed = TAtomics.LoadAcquire(ref _w[Consumed]);
            if (consumed >= TAtomics.LoadAcquire(ref _w[Published]))
            {
                return false;
            }

            if (TAtomics.CompareExchange(ref _w[Consumed], consumed + 1, consumed) == consumed)
            {
                return true;
            }
        }
    }
}
