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
}

// Design: a model of the workers' exit rule during WorkStealingTaskScheduler.Dispose (WorkStealingTaskScheduler.Dispose.cs,
// MayLeaveAtShutdown, and the shutdown branch of the worker loop), small enough for schedule exploration. A counter
// pair stands for the queues (published / consumed, taken with a CAS), and the words _idleState, _liveWorkers and
// _longRunningActive are modelled one to one. Worker 0 starts out running the draining task that started one
// LongRunning task (so the count starts at 1, as StartLongRunning increments it before the thread starts); the other
// workers start idle (searching). The LongRunning task queues one late task (an interlocked enqueue, as Inject's ring
// CAS) and finishes (the interlocked decrement). The late task, run by whichever worker takes it, queues one more.
// Every run must end with both tasks run and every worker gone. NoLongRunningCheck is the rule before the fix: the
// workers may all leave before the late task is queued, which then never runs (Dispose ran it on its own thread, and a
// task that blocked on another deadlocked it). CountReadAfterLastLook reads the count after the last look: the task is
// queued and the count drops between the two, and the worker leaves with the task queued.
internal sealed class ShutdownExitProtocol<TAtomics>
    where TAtomics : struct, IAtomics
{
    private const int Published = 0;   // tasks queued (interlocked)
    private const int Consumed = 1;    // tasks taken (CAS)
    private const int SearchingWord = 2; // idle workers (interlocked; none parks during shutdown, so idle = searching)
    private const int LiveWord = 3;    // workers not yet gone (interlocked)
    private const int LongRunningWord = 4; // LongRunning tasks started and not finished (interlocked)
    private const int RanWord = 5;     // tasks run (interlocked)

    private readonly ShutdownExitBug _bug;
    private readonly long[] _w;

    public ShutdownExitProtocol(int workers, ShutdownExitBug bug)
    {
        _bug = bug;
        _w = GC.AllocateArray<long>(6, pinned: true); // one pinned array, as the store-buffer simulation requires
        _w[LiveWord] = workers;
        _w[SearchingWord] = workers - 1; // worker 0 is running the draining task
        _w[LongRunningWord] = 1;         // counted by that task before it started the LongRunning thread
    }

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
        var spinner = default(SpinWait);
        while (true)
        {
            if (TryTake())
            {
                if (searching)
                {
                    searching = false;
                    TAtomics.Add(ref _w[SearchingWord], -1); // EndSearching
                }

                if (TAtomics.Add(ref _w[RanWord], 1) == 1)
                {
                    Enqueue(); // the late task queues one more (to this worker's deque: stealable)
                }

                continue;
            }

            if (!searching)
            {
                searching = true;
                TAtomics.Add(ref _w[SearchingWord], 1); // BeginSearching
            }

            if (MayLeave())
            {
                TAtomics.Add(ref _w[SearchingWord], -1); // LeaveSearching, then the live count
                TAtomics.Add(ref _w[LiveWord], -1);
                return;
            }

            TAtomics.SpinOnce(ref spinner); // the Sleep(1) of the worker loop
        }
    }

    private bool MayLeave()
    {
        bool allIdle = TAtomics.LoadAcquire(ref _w[SearchingWord]) >= TAtomics.LoadAcquire(ref _w[LiveWord]);
        if (!allIdle)
        {
            return false;
        }

        switch (_bug)
        {
            case ShutdownExitBug.NoLongRunningCheck:
                return !Visible();
            case ShutdownExitBug.CountReadAfterLastLook:
                return !Visible() && TAtomics.LoadAcquire(ref _w[LongRunningWord]) == 0;
            default:
                return TAtomics.LoadAcquire(ref _w[LongRunningWord]) == 0 // acquire: pairs with LongRunningTask's decrement
                    && !Visible();
        }
    }

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
