using System.Collections.Concurrent;
using System.Diagnostics;
using LockFree.Internal;

namespace LockFree;

// Design: a work-stealing TaskScheduler in the style of Go's and Tokio's runtimes, on the project's Chase-Lev
// deque (WorkStealingDeque<T>, Chase & Lev 2005 / Le et al. 2013).
//
// Structure. Worker i owns a deque (owner: Push/TryPop at the bottom; thieves: the shared Stealer at the top)
// and a one-task LIFO slot. Tasks queued from a worker go to its LIFO slot (the previous occupant moves to the
// deque), or to the FIFO injection queue with PreferFairness; tasks queued from any other thread go to the
// injection queue, a bounded MpmcQueue<Task>, and when that is full to an unbounded spill queue (a
// ConcurrentQueue<Task>: queuing never fails; spills are counted). LongRunning tasks get a dedicated thread.
//
// Worker loop (WorkStealingTaskScheduler.Worker.cs): every InjectionCheckInterval-th task the injection queue
// first (fairness); then the LIFO slot (at most LifoSlotRunLimit consecutive runs, after which the slot's task
// goes to the deque and the worker takes the oldest task: injection queue, then its own deque's FIFO end);
// then its own deque (LIFO); then the injection queue and spill queue (a batch: one to run, the rest to its
// deque, where others can steal them); then stealing: TryStealBatchAndPop from every other worker starting at
// a random one (per-worker xorshift), then their LIFO slots. Nothing found: bounded spin rounds, then park.
//
// Parking (WorkStealingTaskScheduler.Idle.cs): one word packs (parked << 32 | searching). A producer publishes
// its task, issues a full fence, reads the word, and wakes a parked worker only when nobody is searching and
// somebody is parked. A worker parks by moving itself from searching to parked with one interlocked add (a
// full fence) under the sleepers lock, then re-checks every queue before it sleeps. Either the producer's read
// comes after the worker's add (it sees a parked worker and no searcher, so it wakes one) or the worker's
// re-check comes after the producer's push (it sees the task and un-parks itself): the two fences forbid
// both reads missing each other (store-buffer litmus). A searcher that finds work and was the last searcher
// wakes one more worker (Go's wakep), so a burst ramps up. The argument is modelled and explored in
// tests/Concurrency/WorkStealing/ParkingProtocol.cs, with a planted variant (no re-check) that loses a wake-up.
//
// Dispose (drain; WorkStealingTaskScheduler.Dispose.cs): close the gate to outside threads, wait for in-flight outside
// enqueues, join LongRunning threads, then tell the workers to leave once a full scan finds nothing, no worker is
// running a task and no LongRunning task is running, and join them. The disposing thread runs no task. Tasks queued
// before Dispose, and tasks that they queue while draining, all run on the workers. Idempotent. After the gate closed,
// a task queued from an outside thread is not refused (an await resumption refused there is lost): it runs on the
// thread pool (LongRunning: a dedicated thread) and is counted.
//
// Progress: queuing is lock-free (the spill queue too); idle workers block (by design); the parking and scaling
// paths take locks off the hot path.

/// <summary>
/// A <see cref="TaskScheduler"/> that runs tasks on its own worker threads, each with a lock-free
/// work-stealing deque, a LIFO slot for the most recently queued task, random-victim batch stealing, and
/// spin-then-park idling with no lost wake-ups. The worker count can be changed at run time
/// (<see cref="SetWorkerCount"/>) or by a built-in rule (<see cref="WorkStealingTaskSchedulerOptions.AutoScale"/>).
/// </summary>
/// <remarks>
/// <para>
/// Fits recursive fork-join (tasks that spawn and wait for subtasks) and bursts of small tasks. Tasks queued from
/// a worker stay on that worker unless another idles and steals them, so parents and children share caches.
/// <see cref="TaskCreationOptions.LongRunning"/> tasks run on a dedicated thread;
/// <see cref="TaskCreationOptions.PreferFairness"/> tasks queued from a worker go to the FIFO injection queue, behind
/// the work already queued, instead of its LIFO slot (so <c>await Task.Yield()</c> lets older work run). Waiting on a
/// task inlines it only on this scheduler's own workers (after <see cref="Dispose"/> has finished: on any thread), and
/// never inlines a queued LongRunning task.
/// </para>
/// <para>
/// <see cref="Dispose"/> drains: it runs everything already queued (and what that work queues, LongRunning tasks
/// included) on the workers, joins the LongRunning threads and the workers, and is idempotent. Called from a task on
/// this scheduler it only starts that shutdown and returns. Dispose every instance: its worker threads (background
/// threads) keep it alive, parked, until then.
/// </para>
/// <para>
/// After <see cref="Dispose"/> began, a task queued from any other thread is not refused: it runs on the .NET thread
/// pool (a LongRunning one on a dedicated thread), still with this scheduler as <see cref="TaskScheduler.Current"/>,
/// and is counted in <see cref="WorkStealingTaskSchedulerStatistics.RedirectedAfterDispose"/>. So an <c>async</c>
/// method whose <c>await</c> resumes after Dispose still completes, and so does a <c>Task.Start</c> or
/// <c>StartNew</c> made then; Dispose does not wait for such tasks. <see cref="SetWorkerCount"/> and
/// <see cref="ForkJoin{TState, TFirst, TSecond}"/> called from outside the workers throw
/// <see cref="ObjectDisposedException"/>.
/// </para>
/// </remarks>
[DebuggerDisplay("Workers = {TargetWorkerCount}, Name = {Name}")]
public sealed partial class WorkStealingTaskScheduler : TaskScheduler, IDisposable
{
    /// <summary>The most workers a scheduler may have.</summary>
    public const int MaxWorkerCountLimit = 1024;

    [ThreadStatic]
    private static Worker? t_worker;

    [ThreadStatic]
    private static WorkStealingTaskScheduler? t_longRunningOwner;

    private readonly Worker?[] _workers;
    private readonly MpmcQueue<Task> _injection;
    private readonly ConcurrentQueue<Task> _spill = new(); // unbounded lock-free overflow of the injection ring
    private readonly object _scaleLock = new();
    private readonly List<Thread> _longRunningThreads = new();
    private readonly List<Thread> _allWorkerThreads = new();
    private readonly int _lifoSlotRunLimit;
    private readonly int _injectionCheckInterval;
    private readonly int _spinRounds;
    private readonly int _minimumWorkerCount;
    private readonly int _maximumWorkerCount;

    private long _gate;             // sign bit: closing; low bits: outside enqueues in flight
    private int _disposeStarted;
    private int _targetWorkerCount; // written under _scaleLock
    private int _liveWorkers;       // interlocked: worker threads started and not yet exited (shutdown's exit rule)
    private bool _scalingClosed;    // under _scaleLock
    private long _sharedQueued;     // interlocked: LongRunning tasks queued
    private long _handedOff;        // under _scaleLock: tasks retiring workers moved to the injection queue (not new)
    private readonly long _injectionBase; // the ring's enqueue position at construction
    private long _sharedExecuted;   // interlocked: tasks run on LongRunning threads
    private int _longRunningActive; // interlocked: LongRunning tasks started and not yet finished (shutdown's exit rule)
    private long _redirectedAfterDispose;  // interlocked: tasks queued from outside after Dispose, run on the thread pool
    private long _spilledTotal;     // interlocked: tasks that went to the spill queue
    private Counters _retired;      // under _scaleLock: counters of workers that retired
    private readonly ManualResetEventSlim _disposed = new(false);

    /// <summary>Creates a scheduler with a fixed number of workers.</summary>
    /// <param name="workerCount">Worker threads, in [1, <see cref="MaxWorkerCountLimit"/>].</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="workerCount"/> is out of range.</exception>
    public WorkStealingTaskScheduler(int workerCount)
        : this(new WorkStealingTaskSchedulerOptions { WorkerCount = workerCount })
    {
    }

    /// <summary>Creates a scheduler from options (validated here; see each option for its default and range).</summary>
    /// <param name="options">The options; read once, later changes have no effect.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public WorkStealingTaskScheduler(WorkStealingTaskSchedulerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options, out _minimumWorkerCount, out _maximumWorkerCount);
        Name = options.Name;
        _lifoSlotRunLimit = options.LifoSlotRunLimit;
        _injectionCheckInterval = options.InjectionCheckInterval;
        _spinRounds = options.SpinRounds;
        _injection = new MpmcQueue<Task>(options.InjectionQueueCapacity);
        _injectionBase = ((Queues.IQueuePositions)_injection).EnqueuedPositions;
        _workers = new Worker?[_maximumWorkerCount];
        try
        {
            using (InterruptDeferral.Lock(_scaleLock))
            {
                for (int i = 0; i < options.WorkerCount; i++)
                {
                    StartWorker(i); // may throw: no thread to be had (StartWorker takes back the one that failed)
                }

                _targetWorkerCount = options.WorkerCount;
            }

            if (options.AutoScale)
            {
                StartAutoScale(options); // calls the options' TimeProvider, which may throw
            }
        }
        catch
        {
            // The workers already started are running: without this they stayed parked for ever, unreachable and keeping
            // this half-built scheduler alive. (Found by Ctor_AutoScaleTimerCannotBeCreated_ThrowsAndLeavesNoWorkerBehind.)
            Dispose();
            throw;
        }

        if (Name is not null)
        {
            WorkStealingMetrics.Register(this);
        }
    }

    /// <summary>The name from the options (metrics tag <c>lockfree.scheduler.name</c>), or null.</summary>
    public string? Name { get; }

    /// <summary>Workers the scheduler currently aims to run (retiring workers finish their task and hand off their queue first).</summary>
    public int TargetWorkerCount => Volatile.Read(ref _targetWorkerCount);

    /// <summary>The scale-down floor.</summary>
    public int MinimumWorkerCount => _minimumWorkerCount;

    /// <summary>The scale-up ceiling.</summary>
    public int MaximumWorkerCount => _maximumWorkerCount;

    /// <summary>The most workers this scheduler runs at once: <see cref="MaximumWorkerCount"/>.</summary>
    public override int MaximumConcurrencyLevel => _maximumWorkerCount;

    /// <summary>Tasks queued from a thread of this scheduler (a worker or a LongRunning thread) are accepted while draining.</summary>
    private bool IsOwnThread => t_worker?.Owner == this || t_longRunningOwner == this;

    /// <inheritdoc/>
    protected override void QueueTask(Task task)
    {
        TaskCreationOptions creation = task.CreationOptions;
        if ((creation & TaskCreationOptions.LongRunning) != 0)
        {
            StartLongRunning(task);
            return;
        }

        Worker? worker = t_worker;
        if (worker is not null && worker.Owner == this)
        {
            if ((creation & TaskCreationOptions.PreferFairness) != 0)
            {
                // FIFO, behind what this worker already holds: its own deque is popped LIFO, so a PreferFairness task
                // there ran next, and `await Task.Yield()` (which queues with PreferFairness) spun ahead of older work
                // forever on one worker. (Found by PreferFairness_YieldLoopOnOneWorker_OlderQueuedTasksStillRun.)
                Inject(task, inside: true); // counted by the ring's enqueue position, not worker.Queued
                return;
            }

            worker.Queued++; // plain: only the owner writes its counters
            if (_lifoSlotRunLimit > 0)
            {
                // Exchange is a full fence: the slot's publication is ordered before the state read.
                Task? displaced = Interlocked.Exchange(ref worker.Slot, task);
                if (displaced is null)
                {
                    NotifyWorkAfterFence();
                    return;
                }

                task = displaced;
            }

            worker.Deque.Push(task);
            NotifyWork();
            return;
        }

        Inject(task, inside: t_longRunningOwner == this);
    }

    /// <inheritdoc/>
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued)
    {
        Worker? worker = t_worker;
        if (worker is null || worker.Owner != this)
        {
            // Inline only on our own workers; once Dispose has finished (no workers, every task queued now runs on the
            // thread pool), on any thread, as the thread pool's scheduler does (Dispose.cs).
            return _disposed.IsSet && TryInlineAfterDispose(task, taskWasPreviouslyQueued);
        }

        if (taskWasPreviouslyQueued)
        {
            if ((task.CreationOptions & TaskCreationOptions.LongRunning) != 0)
            {
                // Its dedicated thread is starting: running it here would hold this worker for the long task (as the
                // thread pool's scheduler, refuse). (Found by LongRunning_WaitedOnFromAWorker_StillRunsOnItsOwnThread.)
                return false;
            }

            if (Interlocked.CompareExchange(ref worker.Slot, null, task) != task)
            {
                RemoveFromOwnDequeBottom(worker, task);
            }
        }

        if (!TryExecuteTask(task))
        {
            return false;
        }

        worker.Executed++;
        return true;
    }

    /// <summary>
    /// Before inlining a queued task: pops it if it is at the bottom of our own deque (the common fork-join case:
    /// a parent waits for its most recent unfinished fork), dropping finished entries above it on the way, and
    /// says whether it found it. Anywhere else (deeper in a deque, another worker's deque, the injection queue) it
    /// stays queued: running it here claims it, and the stale entry is skipped later because TryExecuteTask returns
    /// false for a task that already ran.
    /// </summary>
    private static bool RemoveFromOwnDequeBottom(Worker worker, Task task)
    {
        while (worker.Deque.TryPop(out Task? bottom))
        {
            if (bottom == task)
            {
                return true;
            }

            if (!bottom.IsCompleted)
            {
                worker.Deque.Push(bottom); // someone else's work: put it back where it was
                return false;
            }

            // A finished task (it ran inline earlier): its entry is stale, drop it.
        }

        return false;
    }

    /// <inheritdoc/>
    protected override bool TryDequeue(Task task)
    {
        // Removable: a LIFO slot (one CAS). A task in a deque, the injection ring or the spill queue cannot be
        // removed from the middle; it stays and is skipped when reached if it was cancelled meanwhile.
        foreach (Worker? worker in _workers)
        {
            if (worker is not null && Interlocked.CompareExchange(ref worker.Slot, null, task) == task)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// A best-effort snapshot for debuggers: the unfinished tasks in the workers' LIFO slots and in the spill queue. Tasks in
    /// the lock-free deques and the injection ring are not enumerable without stopping the workers and are not
    /// listed.
    /// </summary>
    /// <returns>The snapshot.</returns>
    protected override IEnumerable<Task> GetScheduledTasks()
    {
        var tasks = new List<Task>();
        foreach (Worker? worker in _workers)
        {
            if (worker is not null && Volatile.Read(ref worker.Slot) is { IsCompleted: false } slot)
            {
                tasks.Add(slot);
            }
        }

        foreach (Task spilled in _spill) // a moment-in-time snapshot
        {
            // A finished task's entry is stale (it ran inline, or was cancelled and skipped): not scheduled. Before, such
            // entries were listed. (Found by GetScheduledTasks_SpilledTaskThatRanInline_IsNotListed.)
            if (!spilled.IsCompleted)
            {
                tasks.Add(spilled);
            }
        }

        return tasks;
    }

    private static void Validate(WorkStealingTaskSchedulerOptions o, out int minimum, out int maximum)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(o.WorkerCount, 1, nameof(o.WorkerCount));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.WorkerCount, MaxWorkerCountLimit, nameof(o.WorkerCount));
        minimum = o.MinimumWorkerCount == 0 ? o.WorkerCount : o.MinimumWorkerCount;
        maximum = o.MaximumWorkerCount == 0 ? o.WorkerCount : o.MaximumWorkerCount;
        ArgumentOutOfRangeException.ThrowIfLessThan(o.MinimumWorkerCount, 0, nameof(o.MinimumWorkerCount));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minimum, o.WorkerCount, nameof(o.MinimumWorkerCount));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.MaximumWorkerCount, 0, nameof(o.MaximumWorkerCount));
        ArgumentOutOfRangeException.ThrowIfLessThan(maximum, o.WorkerCount, nameof(o.MaximumWorkerCount));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maximum, MaxWorkerCountLimit, nameof(o.MaximumWorkerCount));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.InjectionQueueCapacity, 2, nameof(o.InjectionQueueCapacity));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.InjectionQueueCapacity, QueueCapacity.Max, nameof(o.InjectionQueueCapacity));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.LifoSlotRunLimit, 0, nameof(o.LifoSlotRunLimit));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.LifoSlotRunLimit, 1000, nameof(o.LifoSlotRunLimit));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.InjectionCheckInterval, 1, nameof(o.InjectionCheckInterval));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.InjectionCheckInterval, 1_000_000, nameof(o.InjectionCheckInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.SpinRounds, 0, nameof(o.SpinRounds));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.SpinRounds, 10_000, nameof(o.SpinRounds));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.ScaleSampleInterval, TimeSpan.FromMilliseconds(1), nameof(o.ScaleSampleInterval));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.ScaleSampleInterval, TimeSpan.FromHours(1), nameof(o.ScaleSampleInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.ScaleUpQueueDepth, 0, nameof(o.ScaleUpQueueDepth));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.ScaleUpQueueDepth, QueueCapacity.Max, nameof(o.ScaleUpQueueDepth));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.ScaleDownIdleTime, TimeSpan.FromMilliseconds(1), nameof(o.ScaleDownIdleTime));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(o.ScaleDownIdleTime, TimeSpan.FromDays(1), nameof(o.ScaleDownIdleTime));
        ArgumentNullException.ThrowIfNull(o.TimeProvider, nameof(o.TimeProvider));
    }

    private void Inject(Task task, bool inside)
    {
        if (!inside && Interlocked.Increment(ref _gate) < 0) // sign bit set: closing; pairs with the add in DisposeCore
        {
            Interlocked.Decrement(ref _gate);
            RunAfterDispose(task); // never refused: a refused await resumption is lost (see Dispose.cs)
            return;
        }

        try
        {
            EnqueueInjection(task); // counted by the ring's enqueue position or the spill count: no extra interlocked
        }
        finally
        {
            if (!inside)
            {
                Interlocked.Decrement(ref _gate); // also the full fence between the publication and NotifyWork's load
            }
        }

        if (inside)
        {
            NotifyWork();
        }
        else
        {
            NotifyWorkAfterFence();
        }
    }

    private void EnqueueInjection(Task task)
    {
        // The ring whenever it has room; the spill queue only when it is full. (Sending everything to the spill queue
        // while it is not empty would keep order closer to FIFO, but then a long burst mostly bypasses the ring.
        // Workers alternate between the two instead.)
        if (_injection.TryEnqueue(task))
        {
            return;
        }

        _spill.Enqueue(task);
        Interlocked.Increment(ref _spilledTotal);
    }

    /// <summary>Tests: replaces <c>thread.UnsafeStart(task)</c> for LongRunning tasks, to simulate a thread that fails to start.</summary>
    internal Action<Thread, Task>? LongRunningStartForTest { get; set; }

    private void StartLongRunning(Task task)
    {
        bool inside = IsOwnThread;
        if (!inside && Interlocked.Increment(ref _gate) < 0)
        {
            Interlocked.Decrement(ref _gate);
            RunAfterDispose(task);
            return;
        }

        try
        {
            Interlocked.Increment(ref _sharedQueued);

            // Counted before the thread starts, by the thread that starts it (a worker running a task, or a LongRunning
            // thread still running its own): during shutdown the workers stay while this is non-zero (Dispose.cs).
            Interlocked.Increment(ref _longRunningActive);
            Thread? thread = null;
            try
            {
                thread = new Thread(RunLongRunning) { IsBackground = true, Name = (Name ?? "WorkStealing") + " long-running" };
                using (InterruptDeferral.Lock(_longRunningThreads))
                {
                    _longRunningThreads.Add(thread); // before it starts, so Dispose cannot miss it (JoinLongRunning waits for the start)
                }

                if (LongRunningStartForTest is { } start)
                {
                    start(thread, task);
                }
                else
                {
                    thread.UnsafeStart(task);
                }
            }
            catch
            {
                if (thread is not null)
                {
                    using (InterruptDeferral.Lock(_longRunningThreads))
                    {
                        _longRunningThreads.Remove(thread); // never started: nothing for Dispose to join
                    }
                }

                // Never queued: Task.Start faults the task with a TaskSchedulerException. Before, Queued kept counting
                // it (Queued - Executed never returned to 0); a failed `new Thread` or list growth also kept the
                // active count raised, so a later Dispose's workers waited for a LongRunning task that never existed.
                Interlocked.Decrement(ref _longRunningActive);
                Interlocked.Decrement(ref _sharedQueued);
                throw;
            }
        }
        finally
        {
            if (!inside)
            {
                Interlocked.Decrement(ref _gate);
            }
        }
    }

    private void RunLongRunning(object? state)
    {
        t_longRunningOwner = this;
        try
        {
            if (TryExecuteTask((Task)state!))
            {
                Interlocked.Increment(ref _sharedExecuted);
            }
        }
        finally
        {
            // Full fence, after everything this task queued was published: a shutting-down worker that reads the
            // count it leaves (acquire) re-checks the queues after it and sees that work. Pairs with the worker loop.
            Interlocked.Decrement(ref _longRunningActive);
            using (InterruptDeferral.Lock(_longRunningThreads))
            {
                _longRunningThreads.Remove(Thread.CurrentThread);
            }
        }
    }
}
