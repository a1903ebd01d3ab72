// These tests start fork-join work on a TaskScheduler and wait for it on purpose (always bounded).
#pragma warning disable xUnit1031
using System.Runtime.CompilerServices;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// <see cref="WorkStealingTaskScheduler.ForkJoin{TState, TFirst, TSecond}"/> at its edges: the execution context a
/// half leaves behind, and forks made off the workers (outside threads, other schedulers' workers, LongRunning
/// threads while Dispose drains).
/// </summary>
public sealed class WorkStealingForkJoinEdgeTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;
    private static readonly AsyncLocal<int> Flow = new();

    /// <summary>How long late work (queued by a LongRunning task that draining work started) waits for the only worker to
    /// leave: it used to leave at once; now it stays while a LongRunning task runs, so the wait runs out.</summary>
    private static readonly TimeSpan LateWorkDelay = TimeSpan.FromMilliseconds(300);

    [Fact]
    public void ForkJoin_TakenBackSecondSetsAnAsyncLocal_TheCallerDoesNotSeeIt()
    {
        // One worker: the fork is always taken back and run on the caller's thread. As in a Task (and as when the
        // fork is stolen), what second does to AsyncLocals must not flow back into the caller.
        using var scheduler = new WorkStealingTaskScheduler(1);
        var root = Task.Factory.StartNew(
            () =>
            {
                Flow.Value = 1;
                scheduler.ForkJoin(0, static _ => 0, static _ => Flow.Value = 2);
                int flow = Flow.Value;
                scheduler.ForkJoin(0, static _ => { }, static _ => SynchronizationContext.SetSynchronizationContext(new SynchronizationContext()));
                return (flow, SynchronizationContext.Current is null);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal((1, true), root.Result);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForkJoin_StolenSecondSetsAnAsyncLocal_TheThiefsLaterWorkDoesNotSeeIt(bool bothForksWithoutFlow)
    {
        // Two workers; each root's first blocks until its second ran, so the other worker steals both forks from its
        // idle loop. The first fork sets an AsyncLocal; the second fork is made with flow suppressed, so it runs in
        // whatever context the thief's thread has: it must not see the first fork's value. When the first fork also
        // captured no context, only the worker loop can clean up after it (as the thread pool's dispatch loop does);
        // otherwise the fork's own restore does.
        using var scheduler = new WorkStealingTaskScheduler(2);
        Task<(int Thief1, int Thief2, int Seen)> root;
        using (ExecutionContext.SuppressFlow())
        {
            root = Task.Factory.StartNew(
                () =>
                {
                    AsyncFlowControl? noFlow = bothForksWithoutFlow ? ExecutionContext.SuppressFlow() : null;
                    (_, int thief1) = scheduler.ForkJoin(
                        new ManualResetEventSlim(false),
                        static ran => ran.Wait(Generous),
                        static ran =>
                        {
                            Flow.Value = 42; // left behind on the thief's thread unless someone restores its context
                            ran.Set();
                            return Environment.CurrentManagedThreadId;
                        });

                    noFlow ??= ExecutionContext.SuppressFlow();
                    (_, (int Thread, int Seen) second) = scheduler.ForkJoin(
                        new ManualResetEventSlim(false),
                        static ran => ran.Wait(Generous),
                        static ran =>
                        {
                            int seen = Flow.Value;
                            ran.Set();
                            return (Environment.CurrentManagedThreadId, seen);
                        });
                    noFlow.Value.Undo();
                    return (thief1, second.Thread, second.Seen);
                },
                CancellationToken.None, TaskCreationOptions.None, scheduler);
        }

        Assert.True(root.Wait(Generous));
        Assert.Equal(root.Result.Thief1, root.Result.Thief2); // the only other worker stole both
        Assert.Equal(0, root.Result.Seen);
    }

    [Fact]
    public void Worker_FlowSuppressedTaskLeavesContextBehind_TheNextTaskOnThatWorkerDoesNotSeeIt()
    {
        // The same for tasks: one worker runs both; the second must not inherit what the first left on the thread
        // (an AsyncLocal value, or a SynchronizationContext that its awaits would then post to).
        using var scheduler = new WorkStealingTaskScheduler(1);
        Task<(int Flow, bool SyncContext)> second;
        using (ExecutionContext.SuppressFlow())
        {
            Task.Factory.StartNew(
                static () =>
                {
                    Flow.Value = 42;
                    SynchronizationContext.SetSynchronizationContext(new SynchronizationContext());
                },
                CancellationToken.None, TaskCreationOptions.None, scheduler);
            second = Task.Factory.StartNew(static () => (Flow.Value, SynchronizationContext.Current is not null), CancellationToken.None, TaskCreationOptions.None, scheduler);
        }

        Assert.True(second.Wait(Generous));
        Assert.Equal((0, false), second.Result);
    }

    [Fact]
    public void ForkJoin_WhileHelping_RunsAFlowSuppressedTask_TheCallerDoesNotInheritItsContext()
    {
        // The owner's fork is stolen (second waits for the helper task below), so the owner helps: it runs the task that
        // first queued with flow suppressed, which runs in the owner's own context and leaves an AsyncLocal value and a
        // SynchronizationContext behind. Unrelated work run while helping must not change the caller's context.
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                Flow.Value = 1;
                var secondStarted = new ManualResetEventSlim(false);
                var helperRan = new ManualResetEventSlim(false);
                scheduler.ForkJoin(
                    (SecondStarted: secondStarted, HelperRan: helperRan, Scheduler: scheduler),
                    static s =>
                    {
                        s.SecondStarted.Wait(Generous); // the other worker stole second
                        using (ExecutionContext.SuppressFlow())
                        {
                            Task.Factory.StartNew(() => LeaveContextBehind(s.HelperRan), CancellationToken.None, TaskCreationOptions.None, s.Scheduler);
                        }

                        return 0;
                    },
                    static s =>
                    {
                        s.SecondStarted.Set();
                        return s.HelperRan.Wait(Generous); // done only once the owner ran the helper task
                    });
                return (Flow.Value, SynchronizationContext.Current is null, helperRan.IsSet);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal((1, true, true), root.Result);
    }

    [Fact]
    public void Join_WhileHelping_RunsAFlowSuppressedTask_TheCallerDoesNotInheritItsContext()
    {
        // The same for Join: the joined task runs on the other worker until the joiner has run the helper task.
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                Flow.Value = 1;
                var started = new ManualResetEventSlim(false);
                var helperRan = new ManualResetEventSlim(false);
                Task<bool> joined = Task.Factory.StartNew(
                    () =>
                    {
                        started.Set();
                        return helperRan.Wait(Generous);
                    },
                    CancellationToken.None, TaskCreationOptions.None, scheduler);
                started.Wait(Generous); // the other worker took it
                using (ExecutionContext.SuppressFlow())
                {
                    Task.Factory.StartNew(() => LeaveContextBehind(helperRan), CancellationToken.None, TaskCreationOptions.None, scheduler);
                }

                bool ok = scheduler.Join(joined);
                return (Flow.Value, SynchronizationContext.Current is null, ok);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal((1, true, true), root.Result);
    }

    [Fact]
    public void ForkJoin_FirstThrowsWhileTheStolenSecondStillRuns_ReturnsOnlyAfterSecondFinished()
    {
        // Not a bug found, a guard: the exception of first must not overtake the stolen second, whose state the caller
        // may reuse as soon as ForkJoin returns.
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                var started = new ManualResetEventSlim(false);
                var finished = new StrongBox<bool>();
                var e = Assert.Throws<InvalidOperationException>(() => scheduler.ForkJoin<(ManualResetEventSlim Started, StrongBox<bool> Finished), int, int>(
                    (started, finished),
                    static s =>
                    {
                        s.Started.Wait(Generous); // stolen and running
                        throw new InvalidOperationException("first");
                    },
                    static s =>
                    {
                        s.Started.Set();
                        Thread.Sleep(20); // still running when first throws
                        Volatile.Write(ref s.Finished.Value, true);
                        return 0;
                    }));
                return (e.Message, Volatile.Read(ref finished.Value));
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(("first", true), root.Result);
    }

    [Fact]
    public void ForkJoin_FromOutsideWhileTheOnlyWorkerWaitsForTheFork_TheCallerRunsIt()
    {
        // The only worker is busy until second has run. Off the workers the join used to block on a task no worker
        // could start; the caller must take its fork back, as a worker does (and as Task.Wait inlines a pool task).
        using var scheduler = new WorkStealingTaskScheduler(1);
        using var secondRan = new ManualResetEventSlim(false);
        using var busy = new ManualResetEventSlim(false);
        var blocker = Task.Factory.StartNew(
            () =>
            {
                busy.Set();
                return secondRan.Wait(TimeSpan.FromSeconds(5)); // bounded: without the fix this times out
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(busy.Wait(Generous));
        int caller = Environment.CurrentManagedThreadId;
        (int first, int second) = scheduler.ForkJoin(
            secondRan,
            static _ => Environment.CurrentManagedThreadId,
            static ran =>
            {
                ran.Set();
                return Environment.CurrentManagedThreadId;
            });
        Assert.True(blocker.Wait(Generous));
        Assert.True(blocker.Result, "the fork only ran after the worker gave up waiting for it");
        Assert.Equal(caller, first);
        Assert.Equal(caller, second);
        WorkStealingTaskSchedulerStatistics stats = scheduler.Statistics;
        Assert.Equal(stats.Queued, stats.Executed); // the fork's task counts as run (by the caller), once
    }

    [Fact]
    public void ForkJoin_TwoSchedulersForkIntoEachOtherFromBusyWorkers_NoDeadlock()
    {
        // Each scheduler's only worker runs a task that forks into the other scheduler: each caller is off the other
        // scheduler's workers, and the only worker that could run its fork is the other caller. Both must finish.
        // (Without the fix both block forever; the schedulers are then left undisposed, so the test fails, not hangs.)
        var a = new WorkStealingTaskScheduler(1);
        var b = new WorkStealingTaskScheduler(1);
        using var bothRunning = new Barrier(2);
        Task<int> Cross(WorkStealingTaskScheduler on, WorkStealingTaskScheduler into) => Task.Factory.StartNew(
            () =>
            {
                bothRunning.SignalAndWait(Generous);
                (int x, int y) = into.ForkJoin(20, static s => s + 1, static s => s + 2);
                return x + y;
            },
            CancellationToken.None, TaskCreationOptions.None, on);
        Task<int> ab = Cross(a, b);
        Task<int> ba = Cross(b, a);
        Assert.True(Task.WaitAll([ab, ba], TimeSpan.FromSeconds(10)), "two workers each wait for a fork only the other could run");
        Assert.Equal(43, ab.Result);
        Assert.Equal(43, ba.Result);
        a.Dispose();
        b.Dispose();
    }

    [Fact]
    public void ForkJoin_FromALongRunningTaskWhileDisposeDrains_RunsBothHalves()
    {
        // A LongRunning task may queue work while Dispose drains (its thread is one of the scheduler's), so it may fork
        // too: one queued before Dispose forks while Dispose waits for it (the workers still run); one that draining
        // work starts after the workers were told to leave forks a little later. Before, the only worker had left by
        // then and its caller had to run the fork itself (Dispose joined that thread before it ran leftovers); now the
        // worker stays while a LongRunning task runs, and either may run it.
        var scheduler = new WorkStealingTaskScheduler(1);
        using var gate = new ManualResetEventSlim(false);
        var results = new (int, int)[2];
        var errors = new Exception?[2];
        Task.Factory.StartNew(
            () =>
            {
                gate.Wait(Generous);
                results[0] = ForkOrRecord(scheduler, 0, errors);
            },
            CancellationToken.None, TaskCreationOptions.LongRunning, scheduler);
        Task.Factory.StartNew(
            () =>
            {
                Thread worker = Thread.CurrentThread;
                gate.Wait(Generous);
                SpinWait.SpinUntil(() => scheduler.IsShuttingDown, Generous);
                Task.Factory.StartNew(
                    () =>
                    {
                        SpinWait.SpinUntil(() => !worker.IsAlive, LateWorkDelay); // the worker stays now: this runs out
                        results[1] = ForkOrRecord(scheduler, 1, errors);
                    },
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Current);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);

        var disposer = new Thread(scheduler.Dispose) { IsBackground = true };
        disposer.Start();
        SpinWait.SpinUntil(() => DisposeStarted(scheduler), Generous);
        gate.Set();
        Assert.True(disposer.Join(TimeSpan.FromSeconds(10)), "Dispose never finished: a fork made while draining was never run");
        Assert.Null(errors[0]);
        Assert.Null(errors[1]);
        Assert.Equal((1, 2), results[0]);
        Assert.Equal((2, 3), results[1]);
    }

    [Fact]
    public void Dispose_LateTaskQueuedByALongRunningTask_RunsOnAWorkerAndLeavesTheDisposingThreadAlone()
    {
        // A task queued (with flow suppressed) by a LongRunning task that draining work started after the workers were
        // told to leave. Before, the only worker had left by then and this task ran as a straggler on the thread that
        // called Dispose, in that thread's context, so it had to be restored after it (once found by the earlier version
        // of this test). Now the worker stays while a LongRunning task runs: the task runs there, and the disposing
        // thread runs no task at all.
        var scheduler = new WorkStealingTaskScheduler(1);
        using var go = new ManualResetEventSlim(false);
        Thread? worker = null;
        Thread? ranOn = null;
        Task.Factory.StartNew(
            () =>
            {
                worker = Thread.CurrentThread;
                go.Wait(Generous);
                SpinWait.SpinUntil(() => scheduler.IsShuttingDown, Generous); // past joining the LongRunning threads it knew of
                Task.Factory.StartNew(
                    () =>
                    {
                        SpinWait.SpinUntil(() => !worker.IsAlive, LateWorkDelay); // before, the worker left here
                        using (ExecutionContext.SuppressFlow())
                        {
                            Task.Factory.StartNew(
                                () =>
                                {
                                    ranOn = Thread.CurrentThread;
                                    LeaveContextBehind(new ManualResetEventSlim(false));
                                },
                                CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                        }
                    },
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Current);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);

        (int Flow, bool NoSyncContext, Thread Self) after = default;
        var disposer = new Thread(() =>
        {
            Flow.Value = 1;
            scheduler.Dispose();
            after = (Flow.Value, SynchronizationContext.Current is null, Thread.CurrentThread);
        }) { IsBackground = true };
        disposer.Start();
        SpinWait.SpinUntil(() => DisposeStarted(scheduler), Generous);
        go.Set();
        Assert.True(disposer.Join(Generous));
        Assert.Same(worker, ranOn);
        Assert.NotSame(after.Self, ranOn);
        Assert.Equal(1, after.Flow);
        Assert.True(after.NoSyncContext);
    }

    [Fact]
    public void ForkJoin_DisposeRacesOutsideCallers_OnlyObjectDisposedException()
    {
        // An outside ForkJoin that passes the disposed check just before Dispose closes the gate must still report
        // ObjectDisposedException (not the TaskSchedulerException that Task.Start wraps around it).
        for (int round = 0; round < 200; round++)
        {
            var scheduler = new WorkStealingTaskScheduler(1);
            var failures = new Exception?[2];
            using var go = new ManualResetEventSlim(false);
            var callers = new Thread[2];
            for (int c = 0; c < callers.Length; c++)
            {
                int index = c;
                callers[c] = new Thread(() =>
                {
                    go.Wait(Generous);
                    var until = DateTime.UtcNow + Generous;
                    while (DateTime.UtcNow < until)
                    {
                        try
                        {
                            scheduler.ForkJoin(0, static s => s, static s => s);
                        }
                        catch (Exception e)
                        {
                            failures[index] = e;
                            return;
                        }
                    }
                }) { IsBackground = true };
                callers[c].Start();
            }

            go.Set();
            Thread.SpinWait(round * 20);
            scheduler.Dispose();
            foreach (Thread caller in callers)
            {
                Assert.True(caller.Join(Generous));
            }

            Assert.All(failures, e => Assert.IsType<ObjectDisposedException>(e));
        }
    }

    [Fact]
    public void ForkJoin_InterruptPendingWhileWakingAWorker_WakesItAndDefersTheInterrupt()
    {
        // A pending Thread.Interrupt makes a contended Monitor.Enter throw. ForkJoin's wake-up of a parked worker takes
        // the sleepers' lock after the fork was pushed; here the test holds that lock while the inner ForkJoin wakes.
        // Before the scheduler's locks deferred interrupts, the inner ForkJoin threw there (and, before that was handled,
        // left its job queued and cached: the next fork at that depth rethrew the stale job's exception). Now the
        // wake-up waits for the lock, both halves run, and the interrupt reaches the caller's next wait instead: ForkJoin's own
        // wait when the woken worker stole the fork, else the caller's next one.
        using var scheduler = new WorkStealingTaskScheduler(2);
        object sleepersLock = SleepersLock(scheduler);
        using var takeLock = new ManualResetEventSlim(false);
        using var lockHeld = new ManualResetEventSlim(false);
        using var forking = new ManualResetEventSlim(false);
        using var outerStolen = new ManualResetEventSlim(false);
        var secondRan = new StrongBox<bool>();
        var root = Task.Factory.StartNew(
            () =>
            {
                bool deferredDelivered = false;
                (int, int) interruptedCall = default;
                scheduler.ForkJoin(
                    0,
                    _ =>
                    {
                        // The other worker steals the outer fork, runs it and parks again: nobody searches, so the
                        // inner fork's notification must wake it (under the lock).
                        Assert.True(outerStolen.Wait(Generous));
                        Assert.True(SpinWait.SpinUntil(() => scheduler.ParkedWorkers == 1 && scheduler.SearchingWorkers == 0, Generous));
                        takeLock.Set();
                        Assert.True(lockHeld.Wait(Generous));
                        Thread.CurrentThread.Interrupt();
                        forking.Set();
                        try
                        {
                            interruptedCall = scheduler.ForkJoin(secondRan, static _ => 1, static int (ran) =>
                            {
                                Volatile.Write(ref ran.Value, true);
                                return 2;
                            });
                        }
                        catch (ThreadInterruptedException)
                        {
                            // The woken worker stole the fork: the deferred interrupt reached the caller's own wait for it.
                            deferredDelivered = true;
                        }

                        if (!deferredDelivered)
                        {
                            try
                            {
                                Thread.Sleep(1); // taken back: the deferred interrupt arrives at the caller's next wait
                            }
                            catch (ThreadInterruptedException)
                            {
                                deferredDelivered = true;
                            }

                            Assert.Equal((1, 2), interruptedCall);
                        }

                        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref secondRan.Value), Generous));
                        return 0;
                    },
                    _ =>
                    {
                        outerStolen.Set();
                        return 0;
                    });

                // The same depth (1) and types as the interrupted fork: the job cached there must be clean.
                ((int A, int B) inner, _) = scheduler.ForkJoin(
                    secondRan,
                    s => scheduler.ForkJoin(s, static _ => 3, static _ => 4),
                    static _ => 0);
                return (deferredDelivered, inner);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(takeLock.Wait(Generous));
        MonitorHold.Until(sleepersLock, lockHeld, forking, Generous);

        Assert.True(root.Wait(Generous));
        Assert.Equal((true, (3, 4)), root.Result);
    }

    [Fact]
    public void ForkJoin_InterruptedWhileWaitingForAStolenFork_ThrowsAndNeverReusesTheThiefsJob()
    {
        // The caller's wait for a fork that another worker stole is the caller's own blocking wait: an interrupt surfaces
        // there, as from Task.Wait. The thief still holds the job, so the caller must not reuse it: the next fork at the
        // same depth, made while the thief still runs the old one, gets a fresh job and its own results.
        using var scheduler = new WorkStealingTaskScheduler(2);
        using var stolen = new ManualResetEventSlim(false);
        using var finishOld = new ManualResetEventSlim(false);
        var oldFinished = new StrongBox<bool>();
        var root = Task.Factory.StartNew(
            () =>
            {
                bool interrupted = false;
                try
                {
                    scheduler.ForkJoin(
                        (Stolen: stolen, Finish: finishOld, Done: oldFinished),
                        static s =>
                        {
                            Assert.True(s.Stolen.Wait(Generous));
                            Thread.CurrentThread.Interrupt();
                            return 1;
                        },
                        static s =>
                        {
                            s.Stolen.Set();
                            Assert.True(s.Finish.Wait(Generous));
                            s.Done.Value = true;
                            return 2;
                        });
                }
                catch (ThreadInterruptedException)
                {
                    interrupted = true;
                }

                bool oldStillRunning = !Volatile.Read(ref oldFinished.Value);
                (int, int) next = scheduler.ForkJoin(
                    (Stolen: stolen, Finish: finishOld, Done: oldFinished),
                    static s =>
                    {
                        s.Finish.Set(); // the thief may finish the old job now, while this fork is pending
                        return 10;
                    },
                    static _ => 20);
                return (interrupted, oldStillRunning, next);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal((true, true, (10, 20)), root.Result);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref oldFinished.Value), Generous));
    }

    internal static object SleepersLock(WorkStealingTaskScheduler scheduler) =>
        typeof(WorkStealingTaskScheduler)
            .GetField("_sleepersLock", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .GetValue(scheduler)!;

    private static void LeaveContextBehind(ManualResetEventSlim ran)
    {
        Flow.Value = 99;
        SynchronizationContext.SetSynchronizationContext(new SynchronizationContext());
        ran.Set();
    }

    private static (int, int) ForkOrRecord(WorkStealingTaskScheduler scheduler, int index, Exception?[] errors)
    {
        try
        {
            return scheduler.ForkJoin(index, static s => s + 1, static s => s + 2);
        }
        catch (Exception e)
        {
            errors[index] = e;
            return default;
        }
    }

    /// <summary>Dispose began: an outside ForkJoin is refused.</summary>
    private static bool DisposeStarted(WorkStealingTaskScheduler scheduler)
    {
        try
        {
            scheduler.ForkJoin(0, static s => s, static s => s);
            return false;
        }
        catch (ObjectDisposedException)
        {
            return true;
        }
    }
}
