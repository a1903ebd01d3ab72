// These tests exercise a TaskScheduler, so they block on its tasks on purpose (always with a bounded timeout).
#pragma warning disable xUnit1031
using System.Reflection;
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// TaskScheduler-contract cases found by review: each failed on the code before its fix (see the commit that added it).
/// </summary>
public sealed class WorkStealingContractReviewTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;

    /// <summary>Yield rounds after which the loop gives up (the older task never ran): bounds the test, not a timing.</summary>
    private const int YieldRoundLimit = 200_000;

    [Fact]
    public void PreferFairness_YieldLoopOnOneWorker_OlderQueuedTasksStillRun()
    {
        // `await Task.Yield()` on a custom scheduler queues its continuation with PreferFairness. Before, a worker put a
        // PreferFairness task on the bottom of its own deque, which it pops LIFO: the yielded continuation ran next every
        // time, and a task queued earlier (displaced from the LIFO slot into the deque) never ran on one worker, so a
        // `while (!done) await Task.Yield();` loop waiting for it spun forever. PreferFairness now goes to the FIFO
        // injection queue, behind the work the worker already holds (as the thread pool sends it to its global queue).
        using var scheduler = new WorkStealingTaskScheduler(1);
        int flag = 0;
        Task<Task<int>> outer = Task.Factory.StartNew(
            async () =>
            {
                TaskScheduler current = TaskScheduler.Current;
                _ = Task.Factory.StartNew(() => Volatile.Write(ref flag, 1), CancellationToken.None, TaskCreationOptions.None, current);
                _ = Task.Factory.StartNew(() => { }, CancellationToken.None, TaskCreationOptions.None, current); // displaces the first into the deque
                int rounds = 0;
                while (Volatile.Read(ref flag) == 0 && rounds < YieldRoundLimit)
                {
                    rounds++;
                    await Task.Yield();
                }

                return rounds;
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(outer.Wait(Generous));
        Assert.True(outer.Result.Wait(Generous));
        Assert.Equal(1, Volatile.Read(ref flag));
        Assert.True(outer.Result.Result < YieldRoundLimit, "the older task never ran while the loop yielded");
    }

    [Fact]
    public void PreferFairness_FromAWorker_RunsAfterTheWorkersOlderQueuedTasks()
    {
        // The hint's meaning: a PreferFairness task queued from a worker runs after the tasks that worker queued before it.
        // (The periodic injection-first check is pushed out of the way, so only the queue order decides.)
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, InjectionCheckInterval = 1_000_000 });
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        Task parent = Task.Factory.StartNew(
            () =>
            {
                TaskScheduler current = TaskScheduler.Current;
                Task.Factory.StartNew(() => order.Enqueue("older-1"), CancellationToken.None, TaskCreationOptions.None, current);
                Task.Factory.StartNew(() => order.Enqueue("older-2"), CancellationToken.None, TaskCreationOptions.None, current);
                Task.Factory.StartNew(() => order.Enqueue("fair"), CancellationToken.None, TaskCreationOptions.PreferFairness, current);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(parent.Wait(Generous));
        Assert.True(SpinWait.SpinUntil(() => order.Count == 3, Generous));
        Assert.Equal("fair", order.ToArray()[2]);
        Assert.True(SpinWait.SpinUntil(() => scheduler.Statistics is { Queued: 4, Executed: 4 }, Generous), scheduler.Statistics.ToString());
    }

    [Fact]
    public void LongRunning_WaitedOnFromAWorker_StillRunsOnItsOwnThread()
    {
        // Before, a worker that waited on a LongRunning task it had just started inlined it (TryExecuteTaskInline claimed
        // any queued task), so the long task ran on, and held, the worker, and its dedicated thread found it taken. A
        // queued LongRunning task is never inlined now (as the thread pool's scheduler refuses it): the waiter blocks.
        using var scheduler = new WorkStealingTaskScheduler(1);
        for (int i = 0; i < 20; i++)
        {
            Task<string?> waiter = Task.Factory.StartNew(
                () =>
                {
                    var longRunning = Task.Factory.StartNew(
                        () => Thread.CurrentThread.Name, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Current);
                    return longRunning.Result; // an untimed wait: the one the runtime tries to inline (the test bounds the outer wait)
                },
                CancellationToken.None, TaskCreationOptions.None, scheduler);
            Assert.True(waiter.Wait(Generous));
            Assert.Contains("long-running", waiter.Result);
        }
    }

    [Fact]
    public void Join_OnOneWorker_TaskInTheInjectionQueue_RunsIt()
    {
        // Before, Join's helping looked at the worker's own slot and deque and stole from other workers, never at the
        // injection queue: on one worker a joined task queued from an outside thread was never run and the join waited
        // forever. (Bounded here: on failure a second worker is added to release the join.)
        AssertJoinOnOneWorkerRuns(
            scheduler =>
            {
                // Queued from a thread-pool thread: the injection queue.
                Task<int> outside = Task.Factory.StartNew(
                    () => Task.Factory.StartNew(() => 42, CancellationToken.None, TaskCreationOptions.None, scheduler),
                    CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default).Result;
                return scheduler.Join(outside);
            },
            42,
            "the join never ran the injected task");
    }

    [Fact]
    public void Join_OnOneWorker_PreferFairnessChild_RunsIt()
    {
        // A PreferFairness child goes to the injection queue; joining it on one worker must still run it.
        AssertJoinOnOneWorkerRuns(
            scheduler =>
            {
                var child = Task.Factory.StartNew(() => 7, CancellationToken.None, TaskCreationOptions.PreferFairness, scheduler);
                return scheduler.Join(child);
            },
            7,
            "the join never ran the child");
    }

    /// <summary>
    /// Runs <paramref name="joiner"/> as a task on a one-worker scheduler and expects <paramref name="expected"/>. When
    /// the join hangs, a second worker is added so the test ends (and fails with <paramref name="failure"/>).
    /// </summary>
    private static void AssertJoinOnOneWorkerRuns(Func<WorkStealingTaskScheduler, int> joiner, int expected, string failure)
    {
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, MaximumWorkerCount = 2 });
        Task<int> parent = Task.Factory.StartNew(() => joiner(scheduler), CancellationToken.None, TaskCreationOptions.None, scheduler);
        bool joined = parent.Wait(Generous);
        if (!joined)
        {
            scheduler.SetWorkerCount(2);
            Assert.True(parent.Wait(Generous));
        }

        Assert.True(joined, failure);
        Assert.Equal(expected, parent.Result);
    }

    [Fact]
    public void GetScheduledTasks_SpilledTaskThatRanInline_IsNotListed()
    {
        // The snapshot skipped finished tasks in the LIFO slots but listed every spill-queue entry, so a task that had
        // already run inline (its stale entry still queued) showed up in a debugger as scheduled.
        using var gate = new ManualResetEventSlim(false);
        using var queued = new ManualResetEventSlim(false);
        using var ranInline = new ManualResetEventSlim(false);
        using var running = new ManualResetEventSlim(false);
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, InjectionQueueCapacity = 2 });
        Task? spilled = null;
        Task blocker = Task.Factory.StartNew(
            () =>
            {
                running.Set();
                Assert.True(queued.Wait(Generous));
                spilled!.Wait(); // an untimed wait on a worker: inlined, its spill-queue entry stays behind
                ranInline.Set();
                Assert.True(gate.Wait(Generous));
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(running.Wait(Generous)); // the only worker is busy: what follows stays queued
        Task[] tasks = Enumerable.Range(0, 6)
            .Select(_ => Task.Factory.StartNew(() => { }, CancellationToken.None, TaskCreationOptions.None, scheduler))
            .ToArray();
        Assert.True(scheduler.Statistics.Spilled > 0);
        spilled = tasks[^1]; // the ring holds two: the last ones went to the spill queue
        queued.Set();
        try
        {
            Assert.True(ranInline.Wait(Generous));
            MethodInfo get = typeof(TaskScheduler).GetMethod("GetScheduledTasks", BindingFlags.Instance | BindingFlags.NonPublic)!;
            var snapshot = ((IEnumerable<Task>)get.Invoke(scheduler, null)!).ToList();
            Assert.True(spilled.IsCompleted);
            Assert.DoesNotContain(spilled, snapshot);
            Assert.All(snapshot, t => Assert.False(t.IsCompleted));
        }
        finally
        {
            gate.Set();
        }

        Assert.True(blocker.Wait(Generous));
        Assert.True(Task.WaitAll(tasks, Generous));
    }
}
