using LockFree.Internal;
using System.Runtime.CompilerServices;

namespace LockFree;

public sealed partial class WorkStealingTaskScheduler
{
    /// <summary>Most tasks one grab from the injection queue or spill queue takes (one runs, the rest go to the deque).</summary>
    private const int InjectionBatch = 32;

    /// <summary>Tests: replaces <c>thread.UnsafeStart(worker)</c> for worker threads, to simulate a thread that fails to start.</summary>
    internal Action<Thread, object>? WorkerStartForTest { get; set; }

    private void StartWorker(int index)
    {
        // Under _scaleLock.
        _allWorkerThreads.RemoveAll(t => !t.IsAlive);
        var worker = new Worker(this, index);
        var thread = new Thread(RunWorker) { IsBackground = true, Name = $"{Name ?? "WorkStealing"} worker {index}" };
        worker.Thread = thread;
        _allWorkerThreads.Add(thread); // an unstarted thread here is never seen: Dispose takes its snapshot under _scaleLock
        Interlocked.Increment(ref _liveWorkers);
        Volatile.Write(ref _workers[index], worker); // release: thieves see a constructed worker
        try
        {
            if (WorkerStartForTest is { } start)
            {
                start(thread, worker);
            }
            else
            {
                thread.UnsafeStart(worker);
            }
        }
        catch
        {
            // Not started (OutOfMemoryException: no thread to be had): take back everything that counted it. Before, it
            // stayed live and published, so Dispose's exit rule waited for it for ever, and Dispose then joined an
            // unstarted thread. Nothing was queued to it: only its own thread pushes to its slot and deque. (Found by
            // SetWorkerCount_WorkerThreadFailsToStart_ThrowsKeepsTheStartedOnesAndDisposeStillFinishes.)
            Volatile.Write(ref _workers[index], null);
            Interlocked.Decrement(ref _liveWorkers);
            _allWorkerThreads.Remove(thread);
            throw;
        }
    }

    private void RunWorker(object? state)
    {
        var worker = (Worker)state!;
        t_worker = worker;
        ExecutionContext clean = ExecutionContext.Capture()!; // the default context: the thread was started without flow
        while (true)
        {
            try
            {
                RunWorkerLoop(worker, clean);
                return;
            }
            catch (ThreadInterruptedException)
            {
                // A Thread.Interrupt left pending by a task broke an idle step (a spin's Sleep(0), the shutdown wait's
                // Sleep(1)); tasks capture their own exceptions, the scheduler's locks and joins defer interrupts, and
                // Park drops them. Dropped here too (see InterruptDeferral): no user code runs here to receive it.
            }
        }
    }

    /// <summary>The worker loop; returns when the worker exits (shutdown) or retires.</summary>
    private void RunWorkerLoop(Worker worker, ExecutionContext clean)
    {
        int idleRounds = 0;
        var spinner = new SpinWait();
        while (true)
        {
            if (Volatile.Read(ref worker.RetireRequested) && TryRetire(worker))
            {
                return;
            }

            // During Dispose an idle worker announces each scan before it takes anything, so another worker deciding to
            // leave cannot miss a task taken while the taker still counts as idle (MayLeaveAtShutdown, Dispose.cs). A
            // busy worker counts as not idle anyway: the busy path reads nothing more.
            bool scanning = worker.Searching && IsShuttingDown && BeginShutdownScan(worker);
            Task? task = FindWork(worker);
            if (task is not null)
            {
                if (worker.Searching)
                {
                    EndSearching(worker);
                }

                if (scanning)
                {
                    EndShutdownScan(worker); // after EndSearching: a reader that sees the scan over sees this worker busy
                }

                idleRounds = 0;
                spinner.Reset();
                if (TryExecuteTask(task))
                {
                    worker.Executed++; // plain: only the owner writes its counters
                }

                ResetThreadContext(clean);
                continue;
            }

            if (TryStealFork(worker) is { } fork)
            {
                if (worker.Searching)
                {
                    EndSearching(worker);
                }

                if (scanning)
                {
                    EndShutdownScan(worker);
                }

                idleRounds = 0;
                spinner.Reset();
                fork.RunStolen();
                ResetThreadContext(clean);
                continue;
            }

            if (IsShuttingDown)
            {
                // A full scan found nothing after Dispose closed the gate. Outside threads' tasks no longer come here,
                // so only a worker still running a task or a LongRunning task can queue more. Leave only when neither
                // runs (MayLeaveAtShutdown, Dispose.cs); otherwise stay to help: the running task may block on work it
                // queues next, and the disposing thread runs none of it.
                if (!worker.ShutdownSeen)
                {
                    Volatile.Write(ref worker.ShutdownSeen, true); // the scan just made was not announced, but found nothing
                }

                if (!worker.Searching)
                {
                    BeginSearching(worker);
                }

                if (scanning)
                {
                    EndShutdownScan(worker); // idle and holding nothing
                }

                if (MayLeaveAtShutdown(worker))
                {
                    LeaveSearching(worker); // searching first, then live: a reader in between sees "not all idle"
                    Interlocked.Decrement(ref _liveWorkers);
                    return;
                }

                if (idleRounds++ < _spinRounds)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                }
                else
                {
                    Thread.Sleep(1); // a long task (maybe a LongRunning one) is still running: wait without burning a core
                }

                continue;
            }

            if (!worker.Searching)
            {
                BeginSearching(worker);
            }

            if (idleRounds++ < _spinRounds)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            idleRounds = 0;
            spinner.Reset();
            Park(worker);
        }
    }

    /// <summary>
    /// After each task or stolen fork the worker loop runs, puts the thread back in the default execution context with
    /// no SynchronizationContext, as the thread pool's dispatch loop does. Work that captured no context (queued or
    /// forked with flow suppressed) runs in the thread's own, so AsyncLocal values it set (or a SynchronizationContext
    /// it installed) would otherwise stay on the worker and be seen by later such work. (Found by
    /// Worker_FlowSuppressedTaskLeavesContextBehind_TheNextTaskOnThatWorkerDoesNotSeeIt and
    /// ForkJoin_StolenSecondSetsAnAsyncLocal_TheThiefsLaterWorkDoesNotSeeIt(true).) Two thread-static reads
    /// when nothing was left behind.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ResetThreadContext(ExecutionContext clean) => RestoreContexts(clean, sync: null);

    /// <summary>One scan in the documented order; null when every queue looked empty.</summary>
    private Task? FindWork(Worker worker)
    {
        Task? task;
        if (--worker.UntilInjectionCheck <= 0)
        {
            worker.UntilInjectionCheck = _injectionCheckInterval;
            if (TryTakeInjected(worker, out task))
            {
                worker.LifoRuns = 0;
                return task;
            }
        }

        if (Volatile.Read(ref worker.Slot) is not null)
        {
            if (worker.LifoRuns < _lifoSlotRunLimit)
            {
                task = Interlocked.Exchange(ref worker.Slot, null); // a thief or TryDequeue may have taken it
                if (task is not null)
                {
                    worker.LifoRuns++;
                    return task;
                }
            }
            else
            {
                // Starvation cap: the slot's task joins the deque and the oldest queued work runs first.
                worker.LifoRuns = 0;
                task = Interlocked.Exchange(ref worker.Slot, null);
                if (task is not null)
                {
                    worker.Deque.Push(task);
                }

                if (TryTakeInjected(worker, out task))
                {
                    return task;
                }

                StealResult own;
                do
                {
                    own = worker.Deque.Stealer.TrySteal(out task);
                }
                while (own == StealResult.Retry);
                if (own == StealResult.Success)
                {
                    return task;
                }
            }
        }

        worker.LifoRuns = 0;
        if (worker.Deque.TryPop(out task))
        {
            return task;
        }

        if (TryTakeInjected(worker, out task))
        {
            return task;
        }

        return TrySteal(worker);
    }

    /// <summary>Takes a batch from the injection queue (or the spill queue): returns one, pushes the rest to the deque.</summary>
    private bool TryTakeInjected(Worker worker, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Task? task)
    {
        Task?[] buffer = worker.Buffer;
        int taken = 0;

        // Ring and spill queue in turn while both hold work, so neither starves the other.
        bool spillFirst = !_spill.IsEmpty && (worker.SpillTurn = !worker.SpillTurn);
        if (spillFirst)
        {
            taken = TakeSpilled(buffer);
        }

        if (taken == 0 && !_injection.IsEmpty)
        {
            int share = (_injection.Count / Math.Max(1, TargetWorkerCount)) + 1;
            taken = _injection.TryDequeueMany(buffer.AsSpan(0, Math.Min(InjectionBatch, share))!);
        }

        if (taken == 0 && !spillFirst && !_spill.IsEmpty)
        {
            taken = TakeSpilled(buffer);
        }

        if (taken == 0)
        {
            task = null;
            return false;
        }

        task = buffer[0]!;
        buffer[0] = null;
        if (taken > 1)
        {
            // Pushed newest-first so the owner pops them in queue order; others may steal them meanwhile.
            for (int i = taken - 1; i >= 1; i--)
            {
                worker.Deque.Push(buffer[i]!);
                buffer[i] = null;
            }

            NotifyWork();
        }

        return true;
    }

    private int TakeSpilled(Task?[] buffer)
    {
        int taken = 0;
        int share = Math.Min(InjectionBatch, (_spill.Count / Math.Max(1, TargetWorkerCount)) + 1);
        while (taken < share && _spill.TryDequeue(out Task? spilled))
        {
            buffer[taken++] = spilled;
        }

        return taken;
    }

    /// <summary>Random-victim batch stealing over every other worker's deque, then their LIFO slots.</summary>
    private Task? TrySteal(Worker thief) => ScanVictims<Task, TaskSteal>(thief);

    /// <summary>
    /// The victim scan every steal shares: from a random start, each other worker once; then the source's second pass;
    /// again (up to four rounds) while some victim answered Retry (it had work but another taker won the race).
    /// </summary>
    private TItem? ScanVictims<TItem, TSource>(Worker thief)
        where TItem : class
        where TSource : struct, IStealSource<TItem>
    {
        Worker?[] workers = _workers;
        int n = workers.Length;
        if (n <= 1)
        {
            return null;
        }

        bool retry;
        int attempts = 0;
        do
        {
            retry = false;
            int start = (int)(thief.NextRandom() % (uint)n);
            for (int i = 0; i < n; i++)
            {
                Worker? victim = Volatile.Read(ref workers[(start + i) % n]); // acquire: pairs with StartWorker's release
                if (victim is null || victim == thief)
                {
                    continue;
                }

                StealResult result = TSource.TryTake(this, thief, victim, out TItem? item);
                if (result == StealResult.Success)
                {
                    return item;
                }

                retry |= result == StealResult.Retry;
            }

            if (TSource.SecondPass(workers, start, thief) is { } second)
            {
                return second;
            }
        }
        while (retry && ++attempts < 4);

        return null;
    }

    /// <summary>One kind of steal for <see cref="ScanVictims{TItem, TSource}"/> (static members: no delegate, no virtual call).</summary>
    private interface IStealSource<TItem>
        where TItem : class
    {
        /// <summary>Tries one victim (and counts the attempt and a success on the thief).</summary>
        static abstract StealResult TryTake(WorkStealingTaskScheduler scheduler, Worker thief, Worker victim, out TItem? item);

        /// <summary>After a pass over the victims found nothing: a second look elsewhere, or null.</summary>
        static abstract TItem? SecondPass(Worker?[] workers, int start, Worker thief);
    }

    /// <summary>Tasks: a batch steal from the victim's deque; the second pass takes LIFO slots.</summary>
    private readonly struct TaskSteal : IStealSource<Task>
    {
        public static StealResult TryTake(WorkStealingTaskScheduler scheduler, Worker thief, Worker victim, out Task? task)
        {
            thief.StealAttempts++;
            StealResult result = victim.Deque.Stealer.TryStealBatchAndPop(thief.Deque, out task);
            if (result == StealResult.Success)
            {
                thief.Stolen++;
                if (!thief.Deque.IsEmpty)
                {
                    scheduler.NotifyWork(); // the batch we took is stealable work for others
                }
            }

            return result;
        }

        /// <summary>LIFO slots, so a task parked in the slot of a worker that blocks is never stranded.</summary>
        public static Task? SecondPass(Worker?[] workers, int start, Worker thief)
        {
            int n = workers.Length;
            for (int i = 0; i < n; i++)
            {
                Worker? victim = Volatile.Read(ref workers[(start + i) % n]);
                if (victim is null || victim == thief || Volatile.Read(ref victim.Slot) is null)
                {
                    continue;
                }

                thief.StealAttempts++;
                Task? task = Interlocked.Exchange(ref victim.Slot, null);
                if (task is not null)
                {
                    thief.Stolen++;
                    return task;
                }
            }

            return null;
        }
    }

    /// <summary>Retires a worker whose retirement is still requested: hands off its slot and deque, then leaves.</summary>
    private bool TryRetire(Worker worker)
    {
        using (InterruptDeferral.Lock(_scaleLock))
        {
            if (!worker.RetireRequested)
            {
                return false; // SetWorkerCount grew again before we got here
            }

            int handedOff = 0;
            if (Interlocked.Exchange(ref worker.Slot, null) is { } slot)
            {
                EnqueueInjection(slot);
                handedOff++;
            }

            while (worker.Deque.TryPop(out Task? task))
            {
                if (!task.IsCompleted)
                {
                    EnqueueInjection(task);
                    handedOff++;
                }
            }

            _handedOff += handedOff;
            _retired.Add(worker);
            worker.Exited = true;
            Volatile.Write(ref _workers[worker.Index], null);

            // A retiring searcher may be the one a producer counted on (it saw a searcher and woke nobody): like a
            // searcher that found work, it hands the search on if it was the last one. (Found by
            // SetWorkerCount_ShrinkWhileWorkersHoldQueuedTasks_HandsThemOff: without this the tasks sat in the
            // injection queue with the only remaining worker parked.)
            if (worker.Searching)
            {
                EndSearching(worker);
            }

            Interlocked.Decrement(ref _liveWorkers);
            if (handedOff > 0)
            {
                NotifyWork();
            }
        }

        t_worker = null; // its event is not disposed: a waker that popped it may still be about to Set it
        return true;
    }

    /// <summary>Counters of one worker or a sum of them.</summary>
    private struct Counters
    {
        public long Queued;
        public long Executed;
        public long Stolen;
        public long StealAttempts;
        public long Helped;
        public long Forked;
        public long ForksStolen;

        public void Add(Worker w)
        {
            Queued += Volatile.Read(ref w.Queued);
            Executed += Volatile.Read(ref w.Executed);
            Stolen += Volatile.Read(ref w.Stolen);
            StealAttempts += Volatile.Read(ref w.StealAttempts);
            Helped += Volatile.Read(ref w.Helped);
            Forked += Volatile.Read(ref w.Forked);
            ForksStolen += Volatile.Read(ref w.ForksStolen);
        }
    }

    /// <summary>One worker: its deque, LIFO slot, parking event and counters.</summary>
    private sealed class Worker(WorkStealingTaskScheduler owner, int index)
    {
        public readonly WorkStealingTaskScheduler Owner = owner;
        public readonly int Index = index;
        public readonly WorkStealingDeque<Task> Deque = new(64);
        public readonly Task?[] Buffer = new Task?[InjectionBatch];
        public readonly ManualResetEventSlim Event = new(false, spinCount: 1);

        // ForkJoin's jobs (owner pushes and pops, thieves take single items) and the event its owner waits on for a
        // stolen job (ForkJoin.cs). Empty whenever the owner is not inside a ForkJoin call.
        public readonly WorkStealingDeque<ForkJob> ForkDeque = new(16);
        public readonly ManualResetEventSlim JoinEvent = new(false, spinCount: 1);
        public readonly ForkJob?[] ForkJobs = new ForkJob?[MaxCachedForkDepth]; // owner only: a reusable job per nesting depth
        public Thread? Thread;

        // Shared: the LIFO slot, accessed only with Interlocked (owner, thieves, TryDequeue, inlining).
        public Task? Slot;

        // Written under the sleepers lock (Notified also read by the parked owner) or by _scaleLock holders.
        public bool Notified;
        public bool RetireRequested;
        public bool Exited;

        // Dispose only: written by the owner, read by workers deciding to leave (Dispose.cs, MayLeaveAtShutdown).
        public bool ShutdownSeen; // the owner has seen the shutdown flag: its later idle scans are announced
        public bool Scanning;     // an announced scan (or the task it found) is in progress

        // Owner-only state.
        public bool Searching;
        public int LifoRuns;
        public int JoinDepth;
        public int ForkDepth;
        public int UntilInjectionCheck;
        public bool SpillTurn;
        private uint _random = (uint)(index * 0x9E3779B9) | 1;

        // Owner-written counters, read racily (whole 64-bit reads) by Statistics.
        public long Queued;
        public long Executed;
        public long Stolen;
        public long StealAttempts;
        public long Helped;
        public long Forked;
        public long ForksStolen;

        /// <summary>xorshift32 (Marsaglia): a cheap per-worker victim picker.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public uint NextRandom()
        {
            uint x = _random;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            _random = x;
            return x;
        }
    }
}
