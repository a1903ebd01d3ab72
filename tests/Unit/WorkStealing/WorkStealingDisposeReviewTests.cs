// These tests dispose a TaskScheduler while its tasks block on each other, and wait for its tasks on purpose; every
// wait is bounded, and a Dispose that deadlocks runs on its own background thread, so the test fails instead of hanging.
#pragma warning disable xUnit1031
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// Two review findings about <see cref="WorkStealingTaskScheduler.Dispose"/>, each failing before its fix: late work
/// (queued by a LongRunning task that draining work started) that blocks on other queued work deadlocked Dispose, and
/// an <c>await</c> resuming after Dispose was refused and lost.
/// </summary>
public sealed class WorkStealingDisposeReviewTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;

    /// <summary>How long the late LongRunning task gives the only worker to leave. Before the fix it left within
    /// milliseconds (and what the task queued then was a straggler for the disposing thread); now it stays while any
    /// LongRunning task runs, so this wait runs out.</summary>
    private static readonly TimeSpan WorkerLeaveWindow = TimeSpan.FromMilliseconds(400);

    /// <summary>Bounds a Dispose that should finish in milliseconds; before the fix it never did.</summary>
    private static readonly TimeSpan DisposeBound = TimeSpan.FromSeconds(10);

    /// <summary>Bounds the blocking waits inside the tasks, so a deadlocked run unwinds on its own after the test failed.</summary>
    private static readonly TimeSpan InnerBound = TimeSpan.FromSeconds(20);

    [Fact]
    public void Dispose_LateLongRunningTaskWaitsOnWorkItQueues_FinishesAndRunsItOnce()
    {
        // A LongRunning task started by draining work after Dispose joined the LongRunning threads it knew of queues a
        // task and waits for it. Before, the only worker had left by then and the disposing thread was joining this
        // LongRunning thread before it would run what it queued: nobody ever ran the task (Task.Wait inlines only on
        // workers), and Dispose never returned.
        var scheduler = new WorkStealingTaskScheduler(1);
        int ran = 0;
        bool waited = false;
        StartLateLongRunning(scheduler, () =>
        {
            Task queued = Task.Factory.StartNew(() => Interlocked.Increment(ref ran), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
            waited = queued.Wait(InnerBound);
        });

        DisposeBounded(scheduler, "a LongRunning task waited for the task it queued, which nobody ran");
        Assert.True(waited);
        Assert.Equal(1, Volatile.Read(ref ran));
        AssertEveryQueuedTaskRan(scheduler);
    }

    [Fact]
    public void Dispose_LateTaskWaitsOnAnotherQueuedTask_FinishesAndRunsBothOnce()
    {
        // As above, but the late LongRunning task only queues a task, and that one queues a second and waits for it.
        // Before, the first ran as a straggler on the disposing thread, the only thread left to run queued work, and
        // blocked it: the second never ran and Dispose never returned. Two workers: a timed Wait never inlines, so on
        // one worker the first would block the only worker (a blocked worker is a lost one, Dispose or not); with two,
        // the other steals the second from the first's LIFO slot.
        var scheduler = new WorkStealingTaskScheduler(2);
        int ranFirst = 0;
        int ranSecond = 0;
        bool waited = false;
        StartLateLongRunning(scheduler, () =>
        {
            Task.Factory.StartNew(
                () =>
                {
                    Interlocked.Increment(ref ranFirst);
                    Task second = Task.Factory.StartNew(() => Interlocked.Increment(ref ranSecond), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                    waited = second.Wait(InnerBound);
                },
                CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
        });

        DisposeBounded(scheduler, "a late task blocked the disposing thread waiting for another queued task");
        Assert.True(waited);
        Assert.Equal(1, Volatile.Read(ref ranFirst));
        Assert.Equal(1, Volatile.Read(ref ranSecond));
        AssertEveryQueuedTaskRan(scheduler);
    }

    [Fact]
    public void AsyncMethod_AwaitResumesFromAnOutsideThreadAfterDispose_CompletesOnTheThreadPoolAndIsCounted()
    {
        // An async method on the scheduler awaits an operation that completes on an outside thread after Dispose. Before,
        // QueueTask refused the resumption, the runtime swallowed the TaskSchedulerException and the method's Task stayed
        // WaitingForActivation forever: a lost item.
        var scheduler = new WorkStealingTaskScheduler(1);
        var operation = new TaskCompletionSource();
        using var awaiting = new ManualResetEventSlim();
        Task<(bool OnOurScheduler, bool OnPool)> method = Task.Factory.StartNew(
            async () =>
            {
                Task pending = operation.Task;
                awaiting.Set();
                await pending;
                return (TaskScheduler.Current == scheduler, Thread.CurrentThread.IsThreadPoolThread);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler).Unwrap();
        Assert.True(awaiting.Wait(Generous));
        scheduler.Dispose();

        var completer = new Thread(operation.SetResult) { IsBackground = true }; // a plain thread: neither a worker nor the pool's
        completer.Start();
        Assert.True(completer.Join(Generous));
        Assert.True(method.Wait(DisposeBound), $"the method's task is {method.Status}: its resumption was lost");
        Assert.True(method.Result.OnOurScheduler, "TaskScheduler.Current in the resumed method");
        Assert.True(method.Result.OnPool, "resumed on the thread pool");
        Assert.Equal(1, scheduler.Statistics.RedirectedAfterDispose);
    }

    /// <summary>
    /// Queues a task on the only worker that, once Dispose has told the workers to leave, starts a LongRunning task that
    /// gives the worker <see cref="WorkerLeaveWindow"/> to leave and then runs <paramref name="late"/>.
    /// </summary>
    private static void StartLateLongRunning(WorkStealingTaskScheduler scheduler, Action late)
    {
        Task.Factory.StartNew(
            () =>
            {
                Thread worker = Thread.CurrentThread;
                Assert.True(SpinWait.SpinUntil(() => scheduler.IsShuttingDown, Generous)); // Dispose is past joining the LongRunning threads
                Task.Factory.StartNew(
                    () =>
                    {
                        SpinWait.SpinUntil(() => !worker.IsAlive, WorkerLeaveWindow);
                        late();
                    },
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Current);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
    }

    private static void DisposeBounded(WorkStealingTaskScheduler scheduler, string deadlock)
    {
        Exception? thrown = null;
        var disposer = new Thread(() =>
        {
            try
            {
                scheduler.Dispose();
            }
            catch (Exception e)
            {
                thrown = e;
            }
        }) { IsBackground = true };
        disposer.Start();
        Assert.True(disposer.Join(DisposeBound), "Dispose deadlocked: " + deadlock);
        Assert.Null(thrown);
    }

    private static void AssertEveryQueuedTaskRan(WorkStealingTaskScheduler scheduler)
    {
        WorkStealingTaskSchedulerStatistics stats = scheduler.Statistics;
        Assert.Equal(stats.Queued, stats.Executed);
        Assert.Equal(0, stats.RedirectedAfterDispose); // nothing was left for the thread pool: the workers ran it all
    }
}
