using LockFree.Internal;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace LockFree;

// Design: ForkJoin, a task-free fork-join primitive (Cilk's spawn/sync and Rayon's `join`, for this scheduler).
//
// Why: a Task costs about 70-170 ns to create, queue and run (measured: docs/work-stealing.md, "the task floor"), and
// allocates. In fine-grained divide and conquer that floor, not the scheduling, bounds the speed-up of any scheduler
// that runs Tasks. ForkJoin(state, first, second) forks `second` as a cached job (no Task, no allocation in steady
// state), runs `first` on the calling worker, and joins.
//
// Each worker owns a second Chase-Lev deque, ForkDeque, of jobs (separate from the Task deque, so every Task path and
// the deque's Task contract are untouched). Owner side, in ForkJoin:
//   take the worker's cached job for this nesting depth (or create one); fill it; push it on ForkDeque (release store of bottom); NotifyWork (full
//   fence, then wake a parked worker if nobody is searching: the scheduler's no-lost-wake-up protocol);
//   run first(state) here;
//   pop ForkDeque: our job is at the bottom unless a thief took it (every ForkJoin nested in `first` popped or waited
//   for its own job before returning, so nothing else can be below ours): run it here too (the common case, no
//   other thread involved); or the deque is empty: a thief has it, so help (run other work) until it is done.
// Thief side (an idle worker's scan, or a helper): a single-item steal (the top: the oldest, so the largest, job of a
// fork-join tree) and run the job at once, never moved into the thief's deques. So outside any ForkJoin call a
// worker's ForkDeque is empty, and retiring, disposal and GetScheduledTasks have nothing to hand off.
//
// Completion of a stolen job, without a lost wake-up (Dekker over two full fences):
//   thief:  write result or exception; Exchange(done, 1); if Volatile.Read(waiting) != 0: owner's JoinEvent.Set()
//   owner:  JoinEvent.Reset(); Exchange(waiting, 1); if Volatile.Read(done) == 0: JoinEvent.Wait(1 ms); repeat
// In the total order of the two exchanges either the owner's read sees done, or the thief's read sees waiting and
// its Set follows the owner's Reset. The owner blocks in 1 ms slices so that it looks for work to help with between
// them (a blocked owner is neither searching nor parked, so nobody wakes it for new work). The thief touches nothing
// of the job after its exchange of `done` except reading `waiting` (the owner may already be reusing the job: a stale
// read only causes a spurious Set, which every waiter tolerates by re-checking its own job); the event reference is
// read before the exchange.
//
// Context: each job captures the ExecutionContext when forked and runs in it wherever it runs (switching to it only
// when the running thread's context differs, e.g. `first` changed it), as a Task would; what the job does to the
// context is undone when it returns (a Restore when it ran without a switch), so nothing leaks into the owner after
// the join or into a thief's later work. Exceptions: both halves always run to completion; one
// exception is rethrown as it was (ExceptionDispatchInfo), two are thrown together in an AggregateException.
// Off this scheduler's workers, the fork is queued as a Task (one allocation); the join takes it back and runs it on
// the caller when no worker has started it yet, and otherwise blocks until it finished.
public sealed partial class WorkStealingTaskScheduler
{
    /// <summary>Nesting depths of ForkJoin per worker with a cached job (deeper forks allocate their job).</summary>
    private const int MaxCachedForkDepth = 64;

    /// <summary>
    /// Runs <paramref name="first"/> and <paramref name="second"/>, potentially in parallel, and returns both results:
    /// the fork-join primitive of Cilk and Rayon. <paramref name="first"/> runs on the calling thread;
    /// <paramref name="second"/> is offered to this scheduler's other workers and runs on the caller too when none
    /// took it by the time <paramref name="first"/> returns. Called on one of this scheduler's workers, the fork is a
    /// pooled job, not a <see cref="Task"/>: steady-state calls allocate nothing (with static lambdas and the inputs
    /// passed in <paramref name="state"/>), and the overhead is a few nanoseconds when the fork is not stolen.
    /// </summary>
    /// <typeparam name="TState">The state passed to both functions (a value tuple avoids a closure).</typeparam>
    /// <typeparam name="TFirst">The first function's result type.</typeparam>
    /// <typeparam name="TSecond">The second function's result type.</typeparam>
    /// <param name="state">The state passed to both functions.</param>
    /// <param name="first">The half run on the calling thread.</param>
    /// <param name="second">The half forked for other workers to take.</param>
    /// <returns>Both results.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="first"/> or <paramref name="second"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">Called after <see cref="Dispose"/> began from a thread that is not one of this scheduler's (its workers, its LongRunning tasks' threads).</exception>
    /// <exception cref="AggregateException">Both functions threw: the two exceptions, first's first. When only one throws, its exception is rethrown unwrapped, after the other half finished.</exception>
    /// <remarks>
    /// <para>
    /// While a forked half runs on another worker, the caller does not block: it runs other queued work of this
    /// scheduler (its own queued tasks, then forks and tasks stolen from other workers), spins briefly, and then
    /// waits in 1 ms slices, looking for work between them. As with <see cref="Join(Task)"/>, this suits fork-join
    /// code, where work only waits for work it forked. Called from any other thread (including workers of another
    /// scheduler), the second half is queued to this scheduler as a <see cref="Task"/>; when <paramref name="first"/>
    /// returns, the caller runs it itself if no worker has started it yet, and otherwise blocks until it finished.
    /// </para>
    /// <para>
    /// Each half runs in the <see cref="ExecutionContext"/> current when <see cref="ForkJoin{TState, TFirst, TSecond}"/>
    /// was called (AsyncLocal values flow as they do into a Task). As with a Task, AsyncLocal values that
    /// <paramref name="second"/> sets do not flow back to the caller; <paramref name="first"/> runs as an ordinary
    /// call on the calling thread, so its changes remain in effect. Both halves always run to completion.
    /// </para>
    /// <para>
    /// The halves are not tasks: inside them <see cref="TaskScheduler.Current"/>, <see cref="Task.CurrentId"/> and the
    /// parent of an <see cref="TaskCreationOptions.AttachedToParent"/> task are those of whatever the running thread
    /// executes, and depend on who ran the half (a half stolen by an idle worker sees
    /// <see cref="TaskScheduler.Default"/>). Name this scheduler explicitly when a half queues tasks or continuations.
    /// </para>
    /// </remarks>
    public (TFirst First, TSecond Second) ForkJoin<TState, TFirst, TSecond>(TState state, Func<TState, TFirst> first, Func<TState, TSecond> second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        Worker? worker = t_worker;
        if (worker is null || worker.Owner != this)
        {
            return ForkJoinOffWorker(state, first, second);
        }

        int depth = worker.ForkDepth++;
        ForkJob<TState, TSecond> job = ForkJob<TState, TSecond>.Rent(worker, depth);
        job.Init(state, second, worker);
        worker.Forked++; // plain: only the owner writes its counters
        worker.ForkDeque.Push(job);
        TFirst firstResult;
        Exception? firstError;
        try
        {
            NotifyWork();
            firstResult = RunFirst(first, state, out firstError); // never throws: first's exception is kept
            JoinFork(worker, job);
        }
        catch
        {
            // Only a Thread.Interrupt of this worker gets here, from the wait for a stolen fork (the wake-up's lock defers
            // interrupts: InterruptDeferral). Without abandoning the fork, the job stayed cached at its depth while the
            // thief still held it, or (when the wake-up still threw) queued below the caller's frame with its
            // exception kept, and the next fork at that depth rethrew it. (Found by
            // ForkJoin_InterruptedWhileWakingAWorker_LeavesNoStaleJobBehind, before the deferral.)
            AbandonFork(worker, job, depth);
            throw;
        }

        worker.ForkDepth = depth;
        TSecond secondResult = job.Result;
        ExceptionDispatchInfo? secondError = job.Error;
        job.Reset();
        ThrowIfFailed(firstError, secondError);
        return (firstResult, secondResult);
    }

    /// <summary>
    /// Runs <paramref name="first"/> and <paramref name="second"/>, potentially in parallel, as
    /// <see cref="ForkJoin{TState, TFirst, TSecond}"/> does, for halves without results.
    /// </summary>
    /// <typeparam name="TState">The state passed to both actions.</typeparam>
    /// <param name="state">The state passed to both actions.</param>
    /// <param name="first">The half run on the calling thread.</param>
    /// <param name="second">The half forked for other workers to take.</param>
    /// <exception cref="ArgumentNullException"><paramref name="first"/> or <paramref name="second"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">Called after <see cref="Dispose"/> began from a thread that is not one of this scheduler's (its workers, its LongRunning tasks' threads).</exception>
    /// <exception cref="AggregateException">Both actions threw (when only one throws, its exception is rethrown unwrapped).</exception>
    public void ForkJoin<TState>(TState state, Action<TState> first, Action<TState> second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        ForkJoin(
            (State: state, First: first, Second: second),
            static s =>
            {
                s.First(s.State);
                return false;
            },
            static s =>
            {
                s.Second(s.State);
                return false;
            });
    }

    /// <summary>
    /// Runs <paramref name="first"/> and <paramref name="second"/>, potentially in parallel, as
    /// <see cref="ForkJoin{TState, TFirst, TSecond}"/> does. Convenient with capturing lambdas, which allocate their
    /// closures; the state-passing overloads allocate nothing.
    /// </summary>
    /// <param name="first">The half run on the calling thread.</param>
    /// <param name="second">The half forked for other workers to take.</param>
    /// <exception cref="ArgumentNullException"><paramref name="first"/> or <paramref name="second"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">Called after <see cref="Dispose"/> began from a thread that is not one of this scheduler's (its workers, its LongRunning tasks' threads).</exception>
    /// <exception cref="AggregateException">Both actions threw (when only one throws, its exception is rethrown unwrapped).</exception>
    public void ForkJoin(Action first, Action second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        ForkJoin((First: first, Second: second), static s => s.First(), static s => s.Second());
    }

    /// <summary>
    /// A ForkJoin left by an exception (only a Thread.Interrupt of this worker causes one, in the wait for a stolen fork):
    /// restores the depth, takes the job back when it is still queued (then it never runs), and drops it from the
    /// depth cache, since a thief may still hold it or it may still hold an exception: it is never handed out again.
    /// Any job nested inside was already taken back or waited for by its own call, so ours is the bottom one if queued.
    /// </summary>
    private static void AbandonFork(Worker worker, ForkJob job, int depth)
    {
        worker.ForkDepth = depth;
        if ((uint)depth < (uint)worker.ForkJobs.Length && worker.ForkJobs[depth] == job)
        {
            worker.ForkJobs[depth] = null;
        }

        if (worker.ForkDeque.TryPop(out ForkJob? bottom) && bottom != job)
        {
            Debug.Fail("ForkJoin found another job below its own.");
            worker.ForkDeque.Push(bottom); // not ours: leave it where it was
        }
    }

    /// <summary>Takes the job back and runs it here, or helps until the thief that took it has finished it.</summary>
    private void JoinFork(Worker worker, ForkJob job)
    {
        while (worker.ForkDeque.TryPop(out ForkJob? bottom))
        {
            if (bottom == job)
            {
                job.RunByOwner();
                return;
            }

            // Not expected (every nested ForkJoin takes its own job back before returning), but a job is a job: run it.
            Debug.Fail("ForkJoin found another job below its own.");
            bottom.RunStolen();
        }

        HelpUntil(worker, new ForkTarget(job));
    }

    /// <summary>A single-item steal from another worker's fork deque (random start); null when none had a job.</summary>
    private ForkJob? TryStealFork(Worker thief) => ScanVictims<ForkJob, ForkSteal>(thief);

    /// <summary>Forked jobs: a single-item steal (the oldest job, run at once by the thief); an empty deque costs no attempt.</summary>
    private readonly struct ForkSteal : IStealSource<ForkJob>
    {
        public static StealResult TryTake(WorkStealingTaskScheduler scheduler, Worker thief, Worker victim, out ForkJob? job)
        {
            if (victim.ForkDeque.IsEmpty)
            {
                job = null;
                return StealResult.Empty;
            }

            thief.StealAttempts++;
            StealResult result = victim.ForkDeque.Stealer.TrySteal(out job);
            if (result == StealResult.Success)
            {
                thief.Stolen++;
                thief.ForksStolen++;
            }

            return result;
        }

        public static ForkJob? SecondPass(Worker?[] workers, int start, Worker thief) => null;
    }

    private (TFirst First, TSecond Second) ForkJoinOffWorker<TState, TFirst, TSecond>(TState state, Func<TState, TFirst> first, Func<TState, TSecond> second)
    {
        // Our own threads (LongRunning tasks) may queue work while Dispose drains, as QueueTask accepts from them; so
        // they may fork too. An outside caller that passes this check just before Dispose closes the gate still gets
        // both halves run: QueueTask then hands the fork to the thread pool (or the caller takes it back below).
        if (Volatile.Read(ref _disposeStarted) != 0 && !IsOwnThread)
        {
            throw new ObjectDisposedException(nameof(WorkStealingTaskScheduler));
        }

        var job = new ForkJob<TState, TSecond>();
        job.Init(state, second, owner: null);
        Task forked = Task.Factory.StartNew(static j => ((ForkJob)j!).RunStolen(), job, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this);

        TFirst firstResult = RunFirst(first, state, out Exception? firstError);

        // Take the fork back when no worker has started it (TryExecuteTask claims the task atomically; the stale queue
        // entry is skipped later), as a worker takes its job back and as Task.Wait inlines a pool task. Blocking on it
        // instead can wait forever: for a worker busy waiting for this caller, for a worker of another scheduler that
        // forks into ours the same way. (Found by ForkJoin_FromOutsideWhileTheOnlyWorkerWaitsForTheFork_TheCallerRunsIt,
        // ForkJoin_TwoSchedulersForkIntoEachOtherFromBusyWorkers_NoDeadlock and
        // ForkJoin_FromALongRunningTaskWhileDisposeDrains_RunsBothHalves.) A worker that started it runs it to the end:
        // then wait. RunStolen never throws (it records the exception in the job), so the task cannot fault. Like the
        // runtime's inlining, not when the stack is nearly exhausted (a deep recursion from outside adds the task's
        // frames at every level).
        if (RuntimeHelpers.TryEnsureSufficientExecutionStack() && TryExecuteTask(forked))
        {
            Interlocked.Increment(ref _sharedExecuted);
        }
        else
        {
            forked.Wait();
        }

        ThrowIfFailed(firstError, job.Error);
        return (firstResult, job.Result);
    }

    /// <summary>Runs the caller's half; an exception is kept for after the join (both halves always complete).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TFirst RunFirst<TState, TFirst>(Func<TState, TFirst> first, TState state, out Exception? error)
    {
        try
        {
            error = null;
            return first(state);
        }
        catch (Exception e)
        {
            error = e;
            return default!;
        }
    }

    private static void ThrowIfFailed(Exception? firstError, ExceptionDispatchInfo? secondError)
    {
        if (firstError is null && secondError is null)
        {
            return;
        }

        if (firstError is not null && secondError is not null)
        {
            throw new AggregateException(firstError, secondError.SourceException);
        }

        if (firstError is not null)
        {
            ExceptionDispatchInfo.Throw(firstError);
        }

        secondError!.Throw();
    }

    /// <summary>A forked half: run once, by its owner (taken back) or by a thief.</summary>
    private abstract class ForkJob
    {
        private static readonly ContextCallback s_invoke = static j => ((ForkJob)j!).InvokeAndRecord();

        private ExecutionContext? _context;
        private ManualResetEventSlim? _ownerEvent; // the owner's JoinEvent; null off-worker (the owner waits on a Task)
        private int _done;
        private int _waiting;

        /// <summary>The exception the body threw, or null.</summary>
        public ExceptionDispatchInfo? Error;

        public bool IsDone => Volatile.Read(ref _done) != 0; // acquire: pairs with the thief's exchange

        /// <summary>
        /// Owner, before publishing: a fresh incarnation (the push's release store publishes these writes). Reference
        /// fields are stored only when they change (a pooled job keeps its owner and usually its body and context), so
        /// the common fork pays no GC write barrier for them.
        /// </summary>
        protected void Prepare(Worker? owner)
        {
            ExecutionContext? context = ExecutionContext.Capture();
            if (!ReferenceEquals(_context, context))
            {
                _context = context;
            }

            ManualResetEventSlim? ownerEvent = owner?.JoinEvent;
            if (!ReferenceEquals(_ownerEvent, ownerEvent))
            {
                _ownerEvent = ownerEvent;
            }

            _done = 0;
            _waiting = 0;
        }

        /// <summary>
        /// Owner, after reading the outcome: drops the exception. The captured context stays (usually the next fork's
        /// too, so storing it again costs no write barrier): a cached job keeps its last fork's context, and its body
        /// delegate (a capturing lambda's closure), reachable until the next fork at its depth on its worker, at most one
        /// per depth and worker.
        /// </summary>
        protected void ClearAfterUse()
        {
            if (Error is not null)
            {
                Error = null;
            }
        }

        /// <summary>
        /// The owner took its own job back: run it on this thread in the fork's context (switching only if <c>first</c>
        /// changed it), and leave this thread's context as it found it, as a Task does.
        /// </summary>
        public void RunByOwner()
        {
            ExecutionContext? context = _context;
            if (context is null)
            {
                InvokeAndRecord(); // flow was suppressed at the fork: run in this thread's context, as a Task does
            }
            else if (ReferenceEquals(context, ExecutionContext.Capture()))
            {
                SynchronizationContext? sync = SynchronizationContext.Current;
                InvokeAndRecord();

                // The body may have set AsyncLocals (or suppressed flow, or installed a SynchronizationContext): undo it,
                // as ExecutionContext.Run would, so that nothing leaks into the caller after the join (or into a thief's
                // later work) and a fork behaves the same whether it was taken back or stolen. (Found by
                // ForkJoin_TakenBackSecondSetsAnAsyncLocal_TheCallerDoesNotSeeIt and
                // ForkJoin_StolenSecondSetsAnAsyncLocal_TheThiefsLaterWorkDoesNotSeeIt.)
                RestoreContexts(context, sync);
            }
            else
            {
                ExecutionContext.Run(context, s_invoke, this);
            }
        }

        /// <summary>A thief (or an off-worker fork's task) runs the job, then signals the owner. Never throws.</summary>
        public void RunStolen()
        {
            RunByOwner(); // the same context rule: run in the fork's context
            ManualResetEventSlim? ownerEvent = _ownerEvent; // read before done: the owner may reuse the job after it
            Interlocked.Exchange(ref _done, 1); // full fence: pairs with WaitSlice's exchange of _waiting
            if (ownerEvent is not null && Volatile.Read(ref _waiting) != 0)
            {
                InterruptDeferral.Set(ownerEvent); // interrupt-safe, as in WakeOne; may be spurious if the job was reused meanwhile: waiters re-check their own job
            }
        }

        /// <summary>Owner: blocks up to about a millisecond, or until a thief finished this job.</summary>
        public void WaitSlice(ManualResetEventSlim joinEvent)
        {
            joinEvent.Reset();
            Interlocked.Exchange(ref _waiting, 1); // full fence: pairs with RunStolen's exchange of _done
            if (!IsDone)
            {
                joinEvent.Wait(1);
            }
        }

        private void InvokeAndRecord()
        {
            try
            {
                Invoke();
            }
            catch (Exception e)
            {
                Error = ExceptionDispatchInfo.Capture(e);
            }
        }

        protected abstract void Invoke();
    }

    /// <summary>
    /// A forked <c>Func&lt;TState, TResult&gt;</c>. On a worker, jobs are cached per worker and nesting depth
    /// (<see cref="Worker.ForkJobs"/>): the job at a depth is done before the next fork at that depth, so one object per
    /// depth and type is reused without a thread static (a generic class's thread static is reached through a helper
    /// call in shared generic code).
    /// </summary>
    private sealed class ForkJob<TState, TResult> : ForkJob
    {
        private TState _state = default!;
        private Func<TState, TResult>? _body;

        /// <summary>
        /// The body's result. When the body threw it is not assigned: a cached job may still hold an earlier fork's value
        /// (Reset clears only results that hold references), which is never read, since the join then throws.
        /// </summary>
        public TResult Result = default!;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ForkJob<TState, TResult> Rent(Worker owner, int depth)
        {
            ForkJob?[] cache = owner.ForkJobs;
            if ((uint)depth < (uint)cache.Length && cache[depth] is ForkJob<TState, TResult> cached)
            {
                return cached;
            }

            return Create(cache, depth);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static ForkJob<TState, TResult> Create(ForkJob?[] cache, int depth)
        {
            var job = new ForkJob<TState, TResult>();
            if ((uint)depth < (uint)cache.Length)
            {
                cache[depth] = job; // replaces a job of another type at this depth (the caller's shape changed)
            }

            return job;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Init(TState state, Func<TState, TResult> body, Worker? owner)
        {
            _state = state;
            if (!ReferenceEquals(_body, body))
            {
                _body = body;
            }

            Prepare(owner);
        }

        /// <summary>Owner, after reading the outcome: the state and result are cleared when they hold references (for the GC).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Reset()
        {
            if (RuntimeHelpers.IsReferenceOrContainsReferences<TState>())
            {
                _state = default!;
            }

            if (RuntimeHelpers.IsReferenceOrContainsReferences<TResult>())
            {
                Result = default!;
            }

            ClearAfterUse();
        }

        protected override void Invoke() => Result = _body!(_state);
    }
}
