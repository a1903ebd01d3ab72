using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using LockFree.Internal;

namespace LockFree;

// Design: Dispose drains, then joins; after it, tasks are never refused.
//
// Drain (DisposeCore): 1. close the gate (outside threads' tasks stop entering our queues; those already past the
// check finish their enqueue); 2. join the LongRunning threads known now (the workers keep running and parking as
// usual); 3. tell the workers to leave; 4. join them. A worker leaves when a full scan found nothing, every live worker
// is idle, no LongRunning task is running, and a last look at the queues still finds nothing. So every task queued by
// our own threads while draining runs on a worker: the disposing thread runs no task itself.
//
// Why the LongRunning count. Before, workers left as soon as they were all idle, and work queued afterwards by a
// LongRunning task that draining work had started ("stragglers") was run by the disposing thread itself. Any such
// task that blocked on another queued task deadlocked Dispose: the disposing thread was the only one left to run
// queued work, and while it joined a LongRunning thread that waited for a task it had queued, nobody ran anything.
// (Found by Dispose_LateLongRunningTaskWaitsOnWorkItQueues_FinishesAndRunsItOnce and
// Dispose_LateTaskWaitsOnAnotherQueuedTask_FinishesAndRunsBothOnce.) Keeping the workers while a LongRunning task
// runs removes the stragglers: a late task is an ordinary task, run by workers that can also inline it when waited on.
// Ordering: a LongRunning thread is counted (interlocked) by the thread that starts it, which is itself running a task
// (a worker, so not idle, or a counted LongRunning thread), so the count cannot be seen at zero while a chain of them
// goes on. A LongRunning thread's decrement (a full fence) follows every enqueue its task made; a worker reads the count
// (acquire), then re-checks the queues, so a zero it reads comes with that work visible.
//
// Announced scans. A searching worker takes a task before EndSearching, so a leaving worker could see it idle, miss
// the task it had just taken, and leave it alone with a task that may block on work it queues. During shutdown an
// idle worker announces each scan (Scanning, then a full fence, before any take; cleared after EndSearching or
// BeginSearching), and a leaving worker checks after its last look that no other worker scans and that each has seen
// the shutdown, then that all are still idle. A last look that missed a taken task reads after the take, so it sees
// the flag (set before the take, fenced) or, once cleared, the EndSearching that preceded the clearing.
// The rule is modelled in tests/Concurrency/WorkStealing/ShutdownExitProtocol.cs, with four planted variants.
//
// After the gate closed, a task queued from an outside thread runs elsewhere instead of being refused: on the .NET
// thread pool (a dedicated thread for LongRunning), executed with TryExecuteTask (so TaskScheduler.Current is still this
// scheduler and what it queues follows the same rule), and counted in Statistics.RedirectedAfterDispose. Refusing it lost
// work: the runtime queues an await's resumption to the awaiting method's TaskScheduler and swallows the
// TaskSchedulerException when QueueTask throws, so the async method never completed. (Found by
// AsyncMethod_AwaitResumesFromAnOutsideThreadAfterDispose_CompletesOnTheThreadPoolAndIsCounted.) The runtime gives a
// scheduler no public way to tell such a resumption from an explicit Task.Start, so both run. Once Dispose has
// finished, waiting on a task inlines it on any thread (TryInlineAfterDispose), as the thread pool's scheduler does.
public sealed partial class WorkStealingTaskScheduler
{
    /// <summary>
    /// Disposes: see the remarks on <see cref="WorkStealingTaskScheduler"/> (drain, then join; idempotent). A call made
    /// while another is draining waits for it to finish (unless made from one of this scheduler's own threads). When
    /// disposing the <see cref="WorkStealingTaskSchedulerOptions.AutoScale"/> timer throws (a custom
    /// <see cref="TimeProvider"/>), the shutdown still completes and that exception is rethrown at the end (dropped when
    /// the call came from one of this scheduler's own threads, whose shutdown runs on a helper thread).
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) != 0)
        {
            if (!IsOwnThread)
            {
                _disposed.Wait(); // another call is draining: return when it has finished, as the first call does
            }

            return;
        }

        if (IsOwnThread)
        {
            // Joining our own thread would deadlock: shut down from a helper thread and return. (A timer failure has no
            // caller to go to there: the shutdown still completes, and the exception is dropped rather than ending the
            // process on the helper thread.)
            try
            {
                var helper = new Thread(static s => ((WorkStealingTaskScheduler)s!).DisposeCore()) { IsBackground = true, Name = "WorkStealing dispose" };
                if (DisposeHelperStartForTest is { } start)
                {
                    start(helper, this);
                }
                else
                {
                    helper.UnsafeStart(this);
                }
            }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
            {
                // No thread to be had: shut down on the thread pool instead. Before, the exception left Dispose with the
                // shutdown claimed but never run, so every later Dispose waited for ever. (Found by
                // Dispose_FromATaskWhenTheHelperThreadCannotStart_ShutsDownOnThePoolAndASecondDisposeReturns.)
                ThreadPool.UnsafeQueueUserWorkItem(static s => s.DisposeCore(), this, preferLocal: false);
            }

            return;
        }

        if (DisposeCore() is { } timerError)
        {
            ExceptionDispatchInfo.Throw(timerError); // after the complete shutdown
        }
    }

    /// <summary>Tests: replaces <c>helper.UnsafeStart(this)</c> for Dispose's helper thread, to simulate a thread that fails to start.</summary>
    internal Action<Thread, object>? DisposeHelperStartForTest { get; set; }

    /// <summary>Waits until a shutdown started by <see cref="Dispose"/> has finished (used when Dispose ran on one of our own threads).</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>True when the workers have exited.</returns>
    internal bool WaitForDisposal(TimeSpan timeout) => _disposed.Wait(timeout);

    /// <summary>
    /// The worker loop's shutdown exit rule, after a full scan found nothing and the worker counts as searching. In order:
    /// every live worker idle (none parks during shutdown, so idle = searching): a running task may queue more and
    /// block on it. No LongRunning task running: it may do the same. A last look at the queues, after the acquire read
    /// of that count: what a LongRunning task queued before it finished is visible now. No other worker in an
    /// announced scan, and every other worker has seen the shutdown (its idle scans are announced): a searching worker
    /// takes a task before it stops counting as idle, and without this check the last look missed that task while the
    /// count still said idle, the other worker left, and the taker was alone with a task that might block on work it
    /// queues. Then every live worker still idle: a scan that ended (its flag cleared after EndSearching) shows here.
    /// </summary>
    private bool MayLeaveAtShutdown(Worker me)
    {
        if (SearchingWorkers < Volatile.Read(ref _liveWorkers)
            || Volatile.Read(ref _longRunningActive) != 0 // acquire: pairs with the decrement in RunLongRunning
            || HasVisibleWork())
        {
            return false;
        }

        foreach (Worker? other in _workers)
        {
            if (other is not null && other != me
                && (!Volatile.Read(ref other.ShutdownSeen) || Volatile.Read(ref other.Scanning))) // acquire: pairs with BeginShutdownScan / EndShutdownScan
            {
                return false;
            }
        }

        return SearchingWorkers >= Volatile.Read(ref _liveWorkers);
    }

    /// <summary>An idle (searching) worker's scan during shutdown is announced before it can take anything; returns true.</summary>
    private static bool BeginShutdownScan(Worker worker)
    {
        if (!worker.ShutdownSeen)
        {
            Volatile.Write(ref worker.ShutdownSeen, true); // release: whatever this worker ran before is over
        }

        Volatile.Write(ref worker.Scanning, true);
        Interlocked.MemoryBarrier(); // full fence: the announcement before the scan's loads and takes; pairs with MayLeaveAtShutdown
        return true;
    }

    /// <summary>Ends an announced scan: after EndSearching when it found work, after BeginSearching when not.</summary>
    private static void EndShutdownScan(Worker worker) => Volatile.Write(ref worker.Scanning, false); // release: pairs with MayLeaveAtShutdown's acquire

    /// <summary>The shutdown; always runs to the end. Returns what disposing the auto-scale timer threw, or null.</summary>
    private Exception? DisposeCore()
    {
        Exception? timerError = StopAutoScale();

        // 1. Close the gate: later outside QueueTask calls run their task elsewhere; wait for those already past the check.
        Interlocked.Add(ref _gate, long.MinValue); // full fence; pairs with the increment in Inject
        var spinner = new SpinWait();
        while ((Volatile.Read(ref _gate) & long.MaxValue) != 0)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        // 2. LongRunning tasks may still queue work (accepted: they are our threads); wait for those running now while
        // the workers run and park as usual.
        JoinLongRunning();

        // 3. No more scaling; tell the workers to leave (MayLeaveAtShutdown), and wake the parked ones.
        Thread[] workerThreads;
        using (InterruptDeferral.Lock(_scaleLock))
        {
            _scalingClosed = true;
            workerThreads = _allWorkerThreads.ToArray();
        }

        BeginShutdown();

        // 4. Join the workers: they stayed while any LongRunning task ran, so everything queued has run.
        foreach (Thread thread in workerThreads)
        {
            InterruptDeferral.Join(thread);
        }

        // 5. LongRunning threads started while draining have finished their tasks; wait for them to exit.
        JoinLongRunning();
        RunLeftovers();

        if (Name is not null)
        {
            WorkStealingMetrics.Unregister(this);
        }

        foreach (Worker? worker in _workers)
        {
            worker?.Event.Dispose(); // every worker has exited and nobody is left to wake one
        }

        InterruptDeferral.Set(_disposed); // interrupt-safe: a second Dispose may be waiting on it
        return timerError;
    }

    private void JoinLongRunning()
    {
        var spinner = new SpinWait();
        while (true)
        {
            Thread? thread;
            using (InterruptDeferral.Lock(_longRunningThreads))
            {
                thread = _longRunningThreads.Count > 0 ? _longRunningThreads[0] : null;
            }

            if (thread is null)
            {
                return;
            }

            if ((thread.ThreadState & System.Threading.ThreadState.Unstarted) != 0)
            {
                // Registered by StartLongRunning, which is about to start it (or to remove it if that fails). Joining it
                // now threw ThreadStateException out of Dispose, half-way. (Found by
                // Dispose_WhileDrainingWorkStartsLongRunningTasks_FinishesAndRunsThemAll.)
                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            InterruptDeferral.Join(thread);
            using (InterruptDeferral.Lock(_longRunningThreads))
            {
                _longRunningThreads.Remove(thread); // normally removed by the thread itself
            }
        }
    }

    /// <summary>
    /// A safety net after the workers and LongRunning threads are joined: the exit rule leaves nothing queued, so this
    /// finds nothing (DEBUG builds assert it). Should a task be left after all, it is not lost: it runs on the thread
    /// pool (counted in <see cref="WorkStealingTaskSchedulerStatistics.Executed"/>, as it was queued here). Never run
    /// on this thread: a task that blocks on another would block Dispose.
    /// </summary>
    private void RunLeftovers()
    {
        // Plain owner-side access to the deques is safe: every owner has exited and was joined (join = acquire).
        foreach (Worker? worker in _workers)
        {
            if (worker is null)
            {
                continue;
            }

            if (Interlocked.Exchange(ref worker.Slot, null) is { } slot)
            {
                RunLeftover(slot);
            }

            while (worker.Deque.TryPop(out Task? task))
            {
                RunLeftover(task);
            }
        }

        while (_injection.TryDequeue(out Task? task) || _spill.TryDequeue(out task))
        {
            RunLeftover(task);
        }
    }

    private void RunLeftover(Task task)
    {
        if (task.IsCompleted)
        {
            return; // a stale entry: it ran inline, or was cancelled
        }

        Debug.Fail("Dispose found a task still queued after the workers left.");
        ThreadPool.UnsafeQueueUserWorkItem(
            static s =>
            {
                if (s.Scheduler.TryExecuteTask(s.Task))
                {
                    Interlocked.Increment(ref s.Scheduler._sharedExecuted);
                }
            },
            (Scheduler: this, Task: task),
            preferLocal: false);
    }

    /// <summary>
    /// Inlining after Dispose finished, on any thread: a thread-pool thread that waits for a task it queued (now handed to
    /// the pool too) runs it instead of waiting for another pool thread to pick it up. Not a queued LongRunning task (its
    /// thread is starting). A task run here without having been queued (RunSynchronously) is counted as redirected.
    /// </summary>
    private bool TryInlineAfterDispose(Task task, bool taskWasPreviouslyQueued)
    {
        if (taskWasPreviouslyQueued && (task.CreationOptions & TaskCreationOptions.LongRunning) != 0)
        {
            return false;
        }

        if (!TryExecuteTask(task))
        {
            return false;
        }

        if (!taskWasPreviouslyQueued)
        {
            Interlocked.Increment(ref _redirectedAfterDispose);
        }

        return true;
    }

    /// <summary>
    /// A task queued from an outside thread after Dispose closed the gate: not refused (see the design above) but run on
    /// the thread pool, or on a dedicated thread when LongRunning, and counted. Outside the drain: Dispose does not wait
    /// for it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RunAfterDispose(Task task)
    {
        if ((task.CreationOptions & TaskCreationOptions.LongRunning) != 0)
        {
            // Not one of our LongRunning threads (t_longRunningOwner stays unset): what it queues goes elsewhere too.
            var thread = new Thread(static s =>
            {
                var (scheduler, longRunning) = ((WorkStealingTaskScheduler, Task))s!;
                scheduler.TryExecuteTask(longRunning);
            })
            {
                IsBackground = true,
                Name = (Name ?? "WorkStealing") + " long-running (after dispose)",
            };
            thread.UnsafeStart((this, task));
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Scheduler.TryExecuteTask(s.Task), (Scheduler: this, Task: task), preferLocal: false);
        }

        Interlocked.Increment(ref _redirectedAfterDispose); // after the hand-off: a start that threw is reported to the caller instead
    }
}
