// These tests start work on a TaskScheduler and wait for it on purpose (always bounded).
#pragma warning disable xUnit1031
using System.Reflection;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// <see cref="Thread.Interrupt"/> aimed at a <see cref="WorkStealingTaskScheduler"/>'s threads: the scheduler's own
/// blocking steps never throw it (a lock or join defers it to the caller's next wait; an idle worker drops it).
/// Before, an interrupted idle worker ended the process, and a contended wake-up threw into the task that queued work.
/// </summary>
public sealed class WorkStealingInterruptTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;

    [Fact]
    public void Worker_InterruptedWhileParked_DropsItAndKeepsWorking()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        Thread worker = RunOn(scheduler, () => Thread.CurrentThread).Result;
        Assert.True(SpinWait.SpinUntil(() => scheduler.ParkedWorkers == 1, Generous));
        worker.Interrupt(); // its park wait throws at once; unhandled, this ended the test host
        Thread.Sleep(20);
        AssertStillRuns(scheduler, worker);
    }

    [Fact]
    public void Worker_TaskLeavesAnInterruptPending_TheWorkerDropsItWhenIdleAndKeepsWorking()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        Thread worker = RunOn(scheduler, () =>
        {
            Thread.CurrentThread.Interrupt(); // nothing in the task waits: it reaches the worker's idle spin or park
            return Thread.CurrentThread;
        }).Result;
        Assert.True(SpinWait.SpinUntil(() => scheduler.ParkedWorkers == 1, Generous));
        AssertStillRuns(scheduler, worker);
    }

    [Fact]
    public void QueueTask_InterruptPendingWhileWakingAWorker_WakesItAndDefersTheInterrupt()
    {
        // Queuing from a worker wakes a parked worker under the sleepers' lock when nobody searches. The test holds
        // that lock, so the wake-up's Monitor.Enter blocks with the interrupt pending: it used to throw there, out of
        // Task.Factory.StartNew (the child was queued all the same). Now StartNew returns once the lock is free, the
        // parked worker is woken, and the interrupt reaches the task's next wait.
        using var scheduler = new WorkStealingTaskScheduler(2);
        object sleepersLock = WorkStealingForkJoinEdgeTests.SleepersLock(scheduler);
        using var takeLock = new ManualResetEventSlim(false);
        using var lockHeld = new ManualResetEventSlim(false);
        using var queuing = new ManualResetEventSlim(false);
        using var childRan = new ManualResetEventSlim(false);
        var parent = RunOn(scheduler, () =>
        {
            Assert.True(SpinWait.SpinUntil(() => scheduler.ParkedWorkers == 1 && scheduler.SearchingWorkers == 0, Generous));
            takeLock.Set();
            Assert.True(lockHeld.Wait(Generous));
            Thread.CurrentThread.Interrupt();
            queuing.Set();
            Task child = Task.Factory.StartNew(
                () => childRan.Set(), CancellationToken.None, TaskCreationOptions.PreferFairness, scheduler);
            bool delivered = false;
            try
            {
                Thread.Sleep(1);
            }
            catch (ThreadInterruptedException)
            {
                delivered = true;
            }

            // The child is in the injection queue (PreferFairness); the worker woken for it takes it while this task still runs.
            return (delivered, childRan.Wait(Generous));
        });
        Assert.True(takeLock.Wait(Generous), parent.Exception?.ToString());
        MonitorHold.Until(sleepersLock, lockHeld, queuing, Generous);

        Assert.True(parent.Wait(Generous));
        Assert.Equal((true, true), parent.Result);
    }

    [Fact]
    public void QueueTask_InterruptPendingWhileTheWokenWorkersEventIsContended_WakesItAndDefersTheInterrupt()
    {
        // After the sleepers' lock, the wake-up sets the parked worker's ManualResetEventSlim, whose Set takes the event's
        // own monitor to pulse the waiter. The test holds that monitor, so Set's Monitor.Enter blocks with the interrupt
        // pending: it threw there, out of Task.Factory.StartNew (the child was queued all the same), with the parked
        // worker counted as searching but never pulsed; in the worker loop the same throw lost the task in hand. Now
        // Set is retried, StartNew returns, the worker wakes, and the interrupt reaches the task's next wait.
        using var scheduler = new WorkStealingTaskScheduler(2);
        using var takeLock = new ManualResetEventSlim(false);
        using var lockHeld = new ManualResetEventSlim(false);
        using var queuing = new ManualResetEventSlim(false);
        using var childRan = new ManualResetEventSlim(false);
        int parentThread = 0;
        var parent = RunOn(scheduler, () =>
        {
            parentThread = Environment.CurrentManagedThreadId;
            Assert.True(SpinWait.SpinUntil(() => scheduler.ParkedWorkers == 1 && scheduler.SearchingWorkers == 0, Generous));
            takeLock.Set();
            Assert.True(lockHeld.Wait(Generous));
            Thread.CurrentThread.Interrupt();
            queuing.Set();
            string thrown = "nothing";
            try
            {
                Task.Factory.StartNew(() => childRan.Set(), CancellationToken.None, TaskCreationOptions.None, scheduler);
            }
            catch (Exception e)
            {
                thrown = e.GetType().Name;
            }

            bool delivered = false;
            try
            {
                Thread.Sleep(1);
            }
            catch (ThreadInterruptedException)
            {
                delivered = true;
            }

            return (thrown, delivered, childRan.Wait(Generous));
        });
        Assert.True(takeLock.Wait(Generous), parent.Exception?.ToString());
        ManualResetEventSlim parkedEvent = ParkedWorkerEvent(scheduler, parentThread);
        FieldInfo lockField = typeof(ManualResetEventSlim).GetField("m_lock", BindingFlags.NonPublic | BindingFlags.Instance)!;
        Assert.True(SpinWait.SpinUntil(() => lockField.GetValue(parkedEvent) is not null, Generous)); // it blocked in Wait
        Thread.Sleep(50); // let it reach Monitor.Wait (which releases the monitor)
        object eventLock = lockField.GetValue(parkedEvent)!;
        MonitorHold.Until(eventLock, lockHeld, queuing, Generous);

        parkedEvent.Set(); // a safety net for the old code, whose throw left the worker unpulsed (harmless otherwise)
        Assert.True(parent.Wait(Generous));
        Assert.Equal(("nothing", true, true), parent.Result);
    }

    private static ManualResetEventSlim ParkedWorkerEvent(WorkStealingTaskScheduler scheduler, int notThisThread)
    {
        var workers = (object?[])typeof(WorkStealingTaskScheduler).GetField("_workers", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(scheduler)!;
        foreach (object? worker in workers)
        {
            if (worker is not null)
            {
                Type type = worker.GetType();
                var thread = (Thread)type.GetField("Thread")!.GetValue(worker)!;
                if (thread.ManagedThreadId != notThisThread)
                {
                    return (ManualResetEventSlim)type.GetField("Event")!.GetValue(worker)!;
                }
            }
        }

        throw new InvalidOperationException("no other worker");
    }

    [Fact]
    public void Dispose_InterruptPendingOnTheDisposingThread_FinishesAndDefersIt()
    {
        // Dispose joins the workers; an interrupt pending on the disposing thread used to throw out of the join with
        // the shutdown half done (a second Dispose then waited for the first forever).
        var scheduler = new WorkStealingTaskScheduler(2);
        using var release = new ManualResetEventSlim(false);
        Task running = RunOn(scheduler, () => release.Wait(Generous));
        bool delivered = false;
        var disposer = new Thread(() =>
        {
            Thread.CurrentThread.Interrupt();
            scheduler.Dispose();
            try
            {
                Thread.Sleep(1);
            }
            catch (ThreadInterruptedException)
            {
                delivered = true;
            }
        });
        disposer.Start();
        Thread.Sleep(50); // Dispose is draining: the running task holds it
        release.Set();
        Assert.True(disposer.Join(Generous));
        Assert.True(delivered);
        Assert.True(running.IsCompletedSuccessfully);
        Assert.True(scheduler.WaitForDisposal(TimeSpan.Zero));
        scheduler.Dispose(); // a second call returns at once
    }

    private static Task<T> RunOn<T>(WorkStealingTaskScheduler scheduler, Func<T> body) =>
        Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.None, scheduler);

    private static void AssertStillRuns(WorkStealingTaskScheduler scheduler, Thread worker)
    {
        Assert.True(worker.IsAlive);
        var tasks = new Task<Thread>[100];
        for (int i = 0; i < tasks.Length; i++)
        {
            tasks[i] = RunOn(scheduler, () => Thread.CurrentThread);
        }

        Assert.True(Task.WaitAll(tasks, Generous));
        Assert.All(tasks, t => Assert.Same(worker, t.Result));
    }
}
