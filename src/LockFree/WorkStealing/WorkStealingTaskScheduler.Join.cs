using System.Runtime.CompilerServices;

namespace LockFree;

// Design: a helping join for fork-join code (Java's ForkJoinTask.join, Wagner & Calder's leapfrogging in spirit).
//
// Why: Task.Wait / Task.Result on a task that another worker has already started gives a custom TaskScheduler no
// hook at all (TaskScheduler.TryRunInline refuses a task whose delegate was invoked), so the waiting worker's
// thread blocks and its core idles until the child finishes. The thread pool is told about such waits
// internally (Task.SpinThenBlockingWait calls ThreadPool.NotifyThreadBlocked and moves the waiting thread's local
// work to a global queue) and injects threads; nothing public lets another scheduler do the same. Measured on
// two cores (docs/work-stealing.md): in fib(27) fork-join the second worker steals about once per run, the
// parent then blocks on that stolen half, and the run is hardly parallel at all.
//
// What Join does on one of this scheduler's workers: (1) if the task is still in this worker's LIFO slot or at
// the bottom of its deque, it takes it back and runs it inline (as Wait would); (2) otherwise, until the task
// completes, it runs other queued work on this thread: its own slot and deque (LIFO), then a forked job stolen
// from another worker (ForkJoin), then a task stolen from the other workers (random victim, batch), which in
// fork-join finds the subtasks the worker running our task has forked; (3) with nothing to run it spins a little, then blocks on the task in 1 ms slices, looking for work
// between slices. Off this scheduler's workers, Join is a plain wait.
//
// Correctness: every task still runs exactly once (TryExecuteTask claims a task atomically in the runtime; a
// stale queue entry of a task that already ran is skipped as elsewhere in the worker loop). No new shared
// state: Join uses the deque, slot and steal operations of the worker loop, on the worker's own thread.
// Limits: a task run while helping (or taken back) runs on the joiner's stack; nesting is capped (MaxJoinDepth and the
// runtime's stack probe, checked before the take-back too), beyond which Join just blocks. Helping suits fork-join,
// where a task waits only for tasks it forked (directly or not): a task picked up while helping that waited for the
// joiner's own task (or one of its ancestors) would wait for a frame below it on the same stack and never finish.
// Such code must use Wait.
public sealed partial class WorkStealingTaskScheduler
{
    /// <summary>How deeply Join calls may nest on one worker while helping before a Join just blocks.</summary>
    private const int MaxJoinDepth = 64;

    /// <summary>
    /// Waits for <paramref name="task"/> to complete and rethrows its exception as
    /// <c>task.GetAwaiter().GetResult()</c> does (the first exception, not wrapped; a cancelled task throws
    /// <see cref="TaskCanceledException"/>). On one of this scheduler's workers the wait helps: the worker runs the
    /// task itself if it is still queued there, and otherwise runs other queued tasks of this scheduler until the
    /// task completes, so a fork-join parent whose fork was stolen keeps its core busy instead of blocking. Like
    /// <see cref="Task.Wait()"/>'s inlining, it runs work on this thread only while the stack has room; past that it
    /// blocks and leaves the task to another worker.
    /// </summary>
    /// <param name="task">The task to wait for; any scheduler's.</param>
    /// <exception cref="ArgumentNullException"><paramref name="task"/> is null.</exception>
    /// <remarks>
    /// Meant for fork-join code, where a task waits only for tasks it forked (directly or transitively). A task
    /// that may wait for a task that is not its descendant (a continuation chain, a producer/consumer handshake)
    /// should use <see cref="Task.Wait()"/>: a task run while helping runs on the joining thread's stack, and if it
    /// waited for the joiner's own task it would never finish. Off this scheduler's workers (any other thread),
    /// Join is a plain blocking wait.
    /// </remarks>
    public void Join(Task task)
    {
        ArgumentNullException.ThrowIfNull(task);
        HelpUntilCompleted(task);
        task.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Waits for <paramref name="task"/>, helping as <see cref="Join(Task)"/> does, and returns its result (or
    /// rethrows its exception as <c>task.GetAwaiter().GetResult()</c> does).
    /// </summary>
    /// <typeparam name="TResult">The task's result type.</typeparam>
    /// <param name="task">The task to wait for; any scheduler's.</param>
    /// <returns>The task's result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="task"/> is null.</exception>
    public TResult Join<TResult>(Task<TResult> task)
    {
        ArgumentNullException.ThrowIfNull(task);
        HelpUntilCompleted(task);
        return task.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Tests: called on the joining worker when Join finds the stack too short to take its task back (the task stays
    /// queued for another worker). Lets a test release the worker that must run it at the exact point Join decided,
    /// which no probe in the caller's frame can tell (Join's own frames sit deeper).
    /// </summary>
    internal Action? JoinStackShortForTest { get; set; }

    /// <summary>Returns once <paramref name="task"/> completed, or at once when this thread cannot help (then the caller blocks).</summary>
    private void HelpUntilCompleted(Task task)
    {
        if (task.IsCompleted)
        {
            return;
        }

        Worker? worker = t_worker;
        if (worker is null || worker.Owner != this || worker.JoinDepth >= MaxJoinDepth)
        {
            return;
        }

        // (1) Still queued here: take it back and run it (TryExecuteTask is false if someone else ran it meanwhile). Only
        // while the stack has room, as Task.Wait's inlining: without the probe a deep chain of joins overflowed the
        // stack (a process crash) where Wait blocks and leaves the task to another worker. (Found by
        // Join_RecursionReachesTheStackLimit_DoesNotInlineBelowIt.) Past it, the task stays queued for a thief and
        // HelpUntil only waits (it probes the stack too).
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            JoinStackShortForTest?.Invoke();
        }
        else if (TakeBackOwnQueued(worker, task))
        {
            if (TryExecuteTask(task))
            {
                worker.Executed++;
            }

            if (task.IsCompleted)
            {
                return;
            }
        }

        HelpUntil(worker, new TaskTarget(task));
    }

    /// <summary>
    /// The helping wait of Join and ForkJoin: until <paramref name="target"/> is done, runs other work on this worker
    /// (<see cref="TryHelpOnce"/>), putting the caller's contexts back after each piece; with nothing to run, spins
    /// <c>SpinRounds</c> rounds, then waits in slices of about a millisecond, looking for work between them. Helping
    /// nests (a piece may join in turn) up to <see cref="MaxJoinDepth"/> and while the stack has room; beyond, it only waits.
    /// </summary>
    private void HelpUntil<TTarget>(Worker worker, TTarget target)
        where TTarget : struct, IJoinTarget
    {
        int idleRounds = 0;
        var spinner = new SpinWait();
        ExecutionContext? context = ExecutionContext.Capture();
        SynchronizationContext? sync = SynchronizationContext.Current;
        worker.JoinDepth++;
        try
        {
            while (!target.IsDone)
            {
                if (worker.JoinDepth <= MaxJoinDepth && RuntimeHelpers.TryEnsureSufficientExecutionStack() && TryHelpOnce(worker))
                {
                    RestoreContexts(context, sync);
                    idleRounds = 0;
                    spinner.Reset();
                    continue;
                }

                if (idleRounds++ < _spinRounds)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                    continue;
                }

                target.WaitSlice(worker);
            }
        }
        finally
        {
            worker.JoinDepth--;
        }
    }

    /// <summary>Runs one piece of other work while waiting: own queued tasks (slot, then deque, LIFO), then a stolen fork, then a stolen task, then the injection queue.</summary>
    private bool TryHelpOnce(Worker worker)
    {
        Task? task = null;
        if (Volatile.Read(ref worker.Slot) is not null)
        {
            task = Interlocked.Exchange(ref worker.Slot, null);
        }

        if (task is null && !worker.Deque.TryPop(out task))
        {
            if (TryStealFork(worker) is { } fork)
            {
                worker.Helped++;
                fork.RunStolen();
                return true;
            }

            // Last the injection queue: the joined task itself may wait there (queued from an outside thread, or with
            // PreferFairness), and on one worker, or with the others busy, nobody else would run it. (Found by
            // Join_OnOneWorker_TaskInTheInjectionQueue_RunsIt: before, the join waited forever.)
            task = TrySteal(worker);
            if (task is null && !TryTakeInjected(worker, out task))
            {
                return false;
            }
        }

        if (TryExecuteTask(task))
        {
            worker.Executed++;
            worker.Helped++;
        }

        return true;
    }

    /// <summary>What a helping wait waits for (static dispatch over the two structs below).</summary>
    private interface IJoinTarget
    {
        bool IsDone { get; }

        /// <summary>Blocks for at most about a millisecond, or until done; never throws for the target's own outcome.</summary>
        void WaitSlice(Worker worker);
    }

    /// <summary>Join: a task.</summary>
    private readonly struct TaskTarget(Task task) : IJoinTarget
    {
        public bool IsDone => task.IsCompleted;

        public void WaitSlice(Worker worker)
        {
            try
            {
                task.Wait(1);
            }
            catch (AggregateException)
            {
                // The task faulted or was cancelled meanwhile: it is complete; the caller's GetResult rethrows.
            }
        }
    }

    /// <summary>ForkJoin: a forked job a thief took.</summary>
    private readonly struct ForkTarget(ForkJob job) : IJoinTarget
    {
        public bool IsDone => job.IsDone;

        public void WaitSlice(Worker worker) => job.WaitSlice(worker.JoinEvent);
    }

    /// <summary>
    /// Puts this thread's ExecutionContext and SynchronizationContext back to those given, touching nothing when they
    /// are already in place (two thread-static reads). Used after any work that may run in the thread's own context
    /// and leave AsyncLocal values or a SynchronizationContext behind: after each piece run while helping (the waiter's
    /// contexts: otherwise they appear in the caller once Join or ForkJoin returns; found by
    /// Join_WhileHelping_RunsAFlowSuppressedTask_TheCallerDoesNotInheritItsContext and its ForkJoin twin), after a fork
    /// its owner ran, and after each piece of work of the worker loop (the default
    /// context, none: ResetThreadContext). A caller that runs with flow suppressed (no context captured) keeps
    /// whatever is left.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RestoreContexts(ExecutionContext? context, SynchronizationContext? sync)
    {
        if (context is not null && !ReferenceEquals(ExecutionContext.Capture(), context))
        {
            ExecutionContext.Restore(context);
        }

        if (!ReferenceEquals(SynchronizationContext.Current, sync))
        {
            SynchronizationContext.SetSynchronizationContext(sync);
        }
    }

    /// <summary>True when the task was in this worker's LIFO slot or at the bottom of its deque and was taken out.</summary>
    private static bool TakeBackOwnQueued(Worker worker, Task task)
    {
        if (Interlocked.CompareExchange(ref worker.Slot, null, task) == task)
        {
            return true;
        }

        return RemoveFromOwnDequeBottom(worker, task);
    }
}
