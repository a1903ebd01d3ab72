// These tests exercise a TaskScheduler, so they block on its tasks on purpose (always with a bounded timeout);
// the waits are on this scheduler's workers, never on the test framework's context.
#pragma warning disable xUnit1031
using System.Diagnostics.Metrics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>Dispose semantics, scaling (by the caller and by the built-in rule) and metrics.</summary>
public sealed class WorkStealingLifecycleTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;

    [Fact]
    public void Dispose_DrainsEveryQueuedTask_ThenJoinsWorkers()
    {
        using var gate = new ManualResetEventSlim();
        var scheduler = new WorkStealingTaskScheduler(2);
        var threads = new System.Collections.Concurrent.ConcurrentBag<Thread>();
        int ran = 0;
        var blocker = Task.Factory.StartNew(() => { threads.Add(Thread.CurrentThread); gate.Wait(Generous); }, CancellationToken.None, TaskCreationOptions.None, scheduler);
        var tasks = Enumerable.Range(0, 1000)
            .Select(_ => Task.Factory.StartNew(() => { threads.Add(Thread.CurrentThread); Interlocked.Increment(ref ran); }, CancellationToken.None, TaskCreationOptions.None, scheduler))
            .ToArray();
        var releaser = new Thread(() => { Thread.Sleep(50); gate.Set(); });
        releaser.Start();
        scheduler.Dispose();
        Assert.Equal(1000, Volatile.Read(ref ran));
        Assert.True(blocker.IsCompleted);
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully));
        Assert.All(threads, t => Assert.False(t.IsAlive));
        releaser.Join();
    }

    [Fact]
    public void Dispose_TasksQueuedByDrainingWork_AlsoRun()
    {
        using var gate = new ManualResetEventSlim();
        var scheduler = new WorkStealingTaskScheduler(1);
        int children = 0;
        Task? spawned = null;
        Task.Factory.StartNew(
            () =>
            {
                gate.Wait(Generous);
                spawned = Task.Factory.StartNew(() => Interlocked.Increment(ref children), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        var releaser = new Thread(() => { Thread.Sleep(50); gate.Set(); });
        releaser.Start();
        scheduler.Dispose();
        releaser.Join();
        Assert.Equal(1, children);
        Assert.True(spawned!.IsCompletedSuccessfully);
    }

    [Fact]
    public void Dispose_DrainingTaskBlocksOnWorkItQueues_AnotherWorkerStaysToRunIt()
    {
        // While Dispose drains, a task queues its releaser into its own LIFO slot and blocks on an event (no
        // inlining). The idle worker must not leave while a task is still running: it stays and steals the releaser.
        using var gate = new ManualResetEventSlim();
        using var released = new ManualResetEventSlim();
        var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, SpinRounds = 0 });
        var parent = Task.Factory.StartNew(
            () =>
            {
                gate.Wait(Generous);
                Task.Factory.StartNew(released.Set, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                return released.Wait(Generous);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        var releaser = new Thread(() => { Thread.Sleep(50); gate.Set(); });
        releaser.Start();
        scheduler.Dispose();
        releaser.Join();
        Assert.True(parent.IsCompletedSuccessfully);
        Assert.True(parent.Result);
    }

    [Fact]
    public void Dispose_LongRunningStartedWhileDraining_RunsWithWhatItQueues()
    {
        // A task queued before Dispose starts a LongRunning task while the workers drain, and that one queues a
        // plain task after the workers may have left: Dispose still runs both before it returns.
        using var gate = new ManualResetEventSlim();
        var scheduler = new WorkStealingTaskScheduler(1);
        int last = 0;
        Task.Factory.StartNew(
            () =>
            {
                gate.Wait(Generous);
                Task.Factory.StartNew(
                    () =>
                    {
                        Thread.Sleep(30);
                        Task.Factory.StartNew(() => Volatile.Write(ref last, 1), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                    },
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Current);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        var releaser = new Thread(() => { Thread.Sleep(30); gate.Set(); });
        releaser.Start();
        scheduler.Dispose();
        releaser.Join();
        Assert.Equal(1, Volatile.Read(ref last));
    }

    [Fact]
    public void QueueTask_AfterDispose_RunsOnTheThreadPoolOrItsOwnThreadAndIsCounted()
    {
        // The contract changed: before, QueueTask after Dispose threw (Task.Start: TaskSchedulerException wrapping
        // ObjectDisposedException), which lost an await's resumption (see WorkStealingDisposeReviewTests). Now nothing is
        // refused: a plain task runs on the thread pool, a LongRunning one on a dedicated thread, with this scheduler as
        // TaskScheduler.Current, and each is counted.
        var scheduler = new WorkStealingTaskScheduler(1);
        scheduler.Dispose();
        static (bool Pool, bool Background, bool Ours) Where(TaskScheduler expected) =>
            (Thread.CurrentThread.IsThreadPoolThread, Thread.CurrentThread.IsBackground, TaskScheduler.Current == expected);
        var started = new Task<(bool, bool, bool)>(() => Where(scheduler));
        started.Start(scheduler);
        Task<(bool, bool, bool)> plain = Task.Factory.StartNew(() => Where(scheduler), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Task<(bool, bool, bool)> longRunning = Task.Factory.StartNew(() => Where(scheduler), CancellationToken.None, TaskCreationOptions.LongRunning, scheduler);
        Assert.True(Task.WaitAll([started, plain, longRunning], Generous));
        Assert.Equal((true, true, true), started.Result);
        Assert.Equal((true, true, true), plain.Result);
        Assert.Equal((false, true, true), longRunning.Result);
        var stats = scheduler.Statistics;
        Assert.Equal(3, stats.RedirectedAfterDispose);
        Assert.Equal(0, stats.Queued); // not ours: counted apart
        Assert.Equal(0, stats.Executed);
    }

    [Fact]
    public void QueueTask_AfterDisposeFromARedirectedTask_IsRedirectedToo()
    {
        // A task running after Dispose has this scheduler as TaskScheduler.Current: what it queues (a child it waits
        // for, a continuation) follows the same rule and completes.
        var scheduler = new WorkStealingTaskScheduler(1);
        scheduler.Dispose();
        Task<int> outer = Task.Factory.StartNew(
            () => Task.Factory.StartNew(() => 41, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current).ContinueWith(t => t.Result + 1, TaskScheduler.Current).Result,
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(outer.Wait(Generous));
        Assert.Equal(42, outer.Result);
        Assert.Equal(3, scheduler.Statistics.RedirectedAfterDispose);
    }

    [Fact]
    public void Wait_AfterDisposeOnARedirectedTasksChild_CompletesInlinedOrOnThePool()
    {
        // After Dispose, waiting on a task may inline it on any thread (there are no workers; the pool's scheduler does
        // the same), so a pool thread does not wait for another to pick up what it queued. Whether the wait inlines
        // the child or another pool thread takes it first is a race (this test asserted the inline and failed about
        // one run in three): either way the child completes and the wait returns. RunSynchronously runs on the caller.
        var scheduler = new WorkStealingTaskScheduler(1);
        scheduler.Dispose();
        Task<(Thread Self, Thread Child)> parent = Task.Factory.StartNew(
            () =>
            {
                Thread self = Thread.CurrentThread;
                Task<Thread> child = Task.Factory.StartNew(() => Thread.CurrentThread, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                child.Wait(); // untimed: the runtime inlines only then
                return (self, child.Result);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(parent.Wait(Generous));
        Assert.True(parent.Result.Child == parent.Result.Self || parent.Result.Child.IsThreadPoolThread);

        var synchronous = new Task<Thread>(() => Thread.CurrentThread);
        synchronous.RunSynchronously(scheduler);
        Assert.Same(Thread.CurrentThread, synchronous.Result);
        Assert.Equal(3, scheduler.Statistics.RedirectedAfterDispose); // parent and child handed over, RunSynchronously run here
    }

    [Fact]
    public void Continuation_AfterDispose_RunsOnTheThreadPoolAndIsCounted()
    {
        // Before, the continuation was faulted with TaskSchedulerException (the contract changed with QueueTask's).
        var scheduler = new WorkStealingTaskScheduler(1);
        var antecedent = new TaskCompletionSource();
        Task<bool> continuation = antecedent.Task.ContinueWith(_ => Thread.CurrentThread.IsThreadPoolThread, scheduler);
        scheduler.Dispose();
        antecedent.SetResult();
        Assert.True(continuation.Wait(Generous));
        Assert.True(continuation.Result);
        Assert.Equal(1, scheduler.Statistics.RedirectedAfterDispose);
    }

    [Fact]
    public void Dispose_IsIdempotent()
    {
        var scheduler = new WorkStealingTaskScheduler(2);
        scheduler.Dispose();
        scheduler.Dispose();
        Assert.Throws<ObjectDisposedException>(() => scheduler.SetWorkerCount(2));
    }

    [Fact]
    public void Dispose_FromATaskOnTheScheduler_StartsShutdownWithoutDeadlock()
    {
        var scheduler = new WorkStealingTaskScheduler(2);
        var task = Task.Factory.StartNew(scheduler.Dispose, CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.True(scheduler.WaitForDisposal(Generous));
        Assert.True(Task.Factory.StartNew(() => 1, CancellationToken.None, TaskCreationOptions.None, scheduler).Wait(Generous)); // run on the pool
        Assert.Equal(1, scheduler.Statistics.RedirectedAfterDispose);
    }

    [Fact]
    public void Dispose_WaitsForLongRunningTasks()
    {
        var scheduler = new WorkStealingTaskScheduler(1);
        int done = 0;
        Task.Factory.StartNew(() => { Thread.Sleep(50); Volatile.Write(ref done, 1); }, CancellationToken.None, TaskCreationOptions.LongRunning, scheduler);
        scheduler.Dispose();
        Assert.Equal(1, Volatile.Read(ref done));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void SetWorkerCount_OutOfRange_ThrowsAndSchedulerStaysUsable(int count)
    {
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, MinimumWorkerCount = 1, MaximumWorkerCount = 3 });
        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetWorkerCount(count));
        Assert.Equal(2, scheduler.TargetWorkerCount);
        Assert.True(Task.Factory.StartNew(() => 1, CancellationToken.None, TaskCreationOptions.None, scheduler).Wait(Generous));
    }

    [Fact]
    public void SetWorkerCount_GrowsAndShrinks_LiveWorkersFollow()
    {
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, MinimumWorkerCount = 1, MaximumWorkerCount = 4 });
        scheduler.SetWorkerCount(4);
        Assert.Equal(4, scheduler.TargetWorkerCount);
        Assert.Equal(4, scheduler.LiveWorkers);
        scheduler.SetWorkerCount(1);
        Assert.True(SpinWait.SpinUntil(() => scheduler.LiveWorkers == 1, Generous), $"live {scheduler.LiveWorkers}");
        scheduler.SetWorkerCount(3);
        Assert.Equal(3, scheduler.LiveWorkers);
        Assert.True(Task.Factory.StartNew(() => 1, CancellationToken.None, TaskCreationOptions.None, scheduler).Wait(Generous));
    }

    [Fact]
    public void SetWorkerCount_ShrinkWhileWorkersHoldQueuedTasks_HandsThemOff()
    {
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 3, MinimumWorkerCount = 1, MaximumWorkerCount = 3, SpinRounds = 0 });
        using var gate = new ManualResetEventSlim();
        int ran = 0;
        var parents = Enumerable.Range(0, 3).Select(_ => Task.Factory.StartNew(
            () =>
            {
                // Each parent fills its worker's slot and deque, then blocks so the worker cannot run them yet.
                for (int i = 0; i < 100; i++)
                {
                    Task.Factory.StartNew(() => Interlocked.Increment(ref ran), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                }

                gate.Wait(Generous);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler)).ToArray();
        scheduler.SetWorkerCount(1);
        gate.Set();
        Assert.True(Task.WaitAll(parents, TimeSpan.FromSeconds(5)), $"{scheduler.Statistics} live {scheduler.LiveWorkers} parked {scheduler.ParkedWorkers} searching {scheduler.SearchingWorkers} ran {ran} " + string.Join(",", parents.Select(p => p.Status)));
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref ran) == 300, Generous), $"ran {ran} of 300");
        Assert.True(SpinWait.SpinUntil(() => scheduler.LiveWorkers == 1, Generous));
    }

    [Fact]
    public void AutoScale_GrowsOnQueueDepth_ShrinksAfterIdleTime()
    {
        var clock = new ManualTimeProvider();
        using var gate = new ManualResetEventSlim();
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
        {
            WorkerCount = 1, MinimumWorkerCount = 1, MaximumWorkerCount = 3, AutoScale = true, TimeProvider = clock,
            ScaleSampleInterval = TimeSpan.FromMilliseconds(100), ScaleUpQueueDepth = 4, ScaleDownIdleTime = TimeSpan.FromSeconds(1),
            SpinRounds = 0,
        });

        // Block the only worker so the injection queue stays deep, then sample twice: one more worker.
        var blockers = new List<Task> { Task.Factory.StartNew(() => gate.Wait(Generous), CancellationToken.None, TaskCreationOptions.None, scheduler) };
        Assert.True(SpinWait.SpinUntil(() => scheduler.Statistics.Executed == 0 && scheduler.Statistics.InjectionQueueDepth == 0, Generous));
        for (int i = 0; i < 10; i++)
        {
            blockers.Add(Task.Factory.StartNew(() => gate.Wait(Generous), CancellationToken.None, TaskCreationOptions.None, scheduler));
        }

        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(1, scheduler.TargetWorkerCount);
        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(2, scheduler.TargetWorkerCount);

        // Release; once workers park and stay parked for the idle time, the rule retires one per idle period.
        gate.Set();
        Assert.True(Task.WaitAll(blockers.ToArray(), Generous));
        Assert.True(SpinWait.SpinUntil(() => scheduler.Statistics.ParkedWorkers >= 1, Generous));
        for (int i = 0; i < 30 && scheduler.TargetWorkerCount > 1; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
        }

        Assert.Equal(1, scheduler.TargetWorkerCount);
        Assert.True(SpinWait.SpinUntil(() => scheduler.LiveWorkers == 1, Generous));
    }

    [Fact]
    public void AutoScale_ClockThrowsInASample_CountedAndScalingGoesOn()
    {
        // A sample's clock reading that throws used to leave the timer callback (here: out of Advance; on a system timer:
        // an unhandled exception ending the process). Now it is counted, that sample makes no scale-down step, and the
        // rule goes on: once the clock reads again, an idle worker is retired after the idle time.
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
        {
            WorkerCount = 2, MinimumWorkerCount = 1, MaximumWorkerCount = 2, AutoScale = true, TimeProvider = clock,
            ScaleSampleInterval = TimeSpan.FromMilliseconds(100), ScaleDownIdleTime = TimeSpan.FromSeconds(1), SpinRounds = 0,
        });
        Assert.True(SpinWait.SpinUntil(() => scheduler.Statistics.ParkedWorkers >= 1, Generous));

        clock.FailReading(1); // the next sample's reading throws
        manual.Advance(TimeSpan.FromMilliseconds(100)); // threw out of the sample before
        Assert.Equal(1, scheduler.Statistics.ScaleClockFailures);
        Assert.Equal(2, scheduler.TargetWorkerCount);

        for (int i = 0; i < 30 && scheduler.TargetWorkerCount > 1; i++)
        {
            manual.Advance(TimeSpan.FromMilliseconds(100)); // the timer was re-armed: samples go on
        }

        Assert.Equal(1, scheduler.TargetWorkerCount);
        Assert.Equal(1, scheduler.Statistics.ScaleClockFailures);
    }

    [Fact]
    public void AutoScale_WorkerBlockedWithWorkQueued_AddsAWorkerThatUnblocksIt()
    {
        // The only worker blocks in a task whose child (in its LIFO slot) is what would release it: a blocked
        // fork-join parent. Only a new worker can run the child. The depth threshold is out of reach, so the
        // "work queued and no worker idle" part of the rule is the one under test.
        var clock = new ManualTimeProvider();
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
        {
            WorkerCount = 1, MinimumWorkerCount = 1, MaximumWorkerCount = 2, AutoScale = true, TimeProvider = clock,
            ScaleUpQueueDepth = 1 << 30, SpinRounds = 0,
        });
        using var release = new ManualResetEventSlim();
        int queued = 0;
        var parent = Task.Factory.StartNew(
            () =>
            {
                Task.Factory.StartNew(release.Set, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                Volatile.Write(ref queued, 1);
                return release.Wait(Generous);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref queued) == 1, Generous));
        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(1, scheduler.TargetWorkerCount);
        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(2, scheduler.TargetWorkerCount);
        Assert.True(parent.Wait(Generous));
        Assert.True(parent.Result);
    }

    [Fact]
    public void AutoScale_Dispose_StopsTheTimer()
    {
        var clock = new ManualTimeProvider();
        var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, AutoScale = true, TimeProvider = clock });
        Assert.Equal(1, clock.ActiveTimers);
        scheduler.Dispose();
        Assert.Equal(0, clock.ActiveTimers);
    }

    [Fact]
    public void Metrics_ReportedThroughTheLockFreeMeter_TaggedWithName()
    {
        string name = "ws-metrics-" + Guid.NewGuid().ToString("N");
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName && instrument.Name.StartsWith("lockfree.scheduler.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == WorkStealingMetrics.NameTag && (string?)tag.Value == name)
                {
                    values[instrument.Name] = value;
                }
            }
        });
        listener.Start();

        using (var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, Name = name }))
        {
            var root = Task.Factory.StartNew(() => WorkStealingTaskSchedulerTests.Fib(12), CancellationToken.None, TaskCreationOptions.None, scheduler);
            Assert.True(root.Wait(Generous));
            var forks = Task.Factory.StartNew(() => WorkStealingForkJoinTests.Fib(scheduler, 12, 4), CancellationToken.None, TaskCreationOptions.None, scheduler);
            Assert.True(forks.Wait(Generous));
            listener.RecordObservableInstruments();
            Assert.Equal(scheduler.Statistics.Forked, values["lockfree.scheduler.forked"]);
            Assert.True(values["lockfree.scheduler.forked"] > 0);
            Assert.InRange(values["lockfree.scheduler.forks_stolen"], 0, values["lockfree.scheduler.forked"]);
            Assert.True(values["lockfree.scheduler.queued"] >= 1);
            Assert.True(values["lockfree.scheduler.executed"] >= 1);
            Assert.True(values["lockfree.scheduler.steal_attempts"] >= 0);
            Assert.True(values["lockfree.scheduler.stolen"] >= 0);
            Assert.Equal(0, values["lockfree.scheduler.spilled"]);
            Assert.Equal(2, values["lockfree.scheduler.workers"]);
            Assert.InRange(values["lockfree.scheduler.parked_workers"], 0, 2);
            Assert.True(values.ContainsKey("lockfree.scheduler.injection_depth"));
        }

        values.Clear();
        listener.RecordObservableInstruments();
        Assert.Empty(values); // a disposed scheduler drops out
    }
}
