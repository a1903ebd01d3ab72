// These tests start fork-join work on a TaskScheduler and wait for it on purpose (always bounded).
#pragma warning disable xUnit1031
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary><see cref="WorkStealingTaskScheduler.ForkJoin{TState, TFirst, TSecond}"/>: task-free fork-join on the workers.</summary>
public sealed class WorkStealingForkJoinTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;
    private static readonly AsyncLocal<int> Flow = new();

    [Fact]
    public void ForkJoin_NullDelegates_Throw()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        Assert.Throws<ArgumentNullException>(() => scheduler.ForkJoin<int, int, int>(0, null!, static s => s));
        Assert.Throws<ArgumentNullException>(() => scheduler.ForkJoin(0, static (int s) => s, (Func<int, int>)null!));
        Assert.Throws<ArgumentNullException>(() => scheduler.ForkJoin(0, null!, static (int _) => { }));
        Assert.Throws<ArgumentNullException>(() => scheduler.ForkJoin(0, static (int _) => { }, null!));
        Assert.Throws<ArgumentNullException>(() => scheduler.ForkJoin(null!, static () => { }));
        Assert.Throws<ArgumentNullException>(() => scheduler.ForkJoin(static () => { }, null!));
        Assert.Equal((1, 2), scheduler.ForkJoin(0, static s => s + 1, static s => s + 2)); // still usable
    }

    [Fact]
    public void ForkJoin_OnAWorker_ReturnsBothResultsAndCountsTheFork()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () => scheduler.ForkJoin(20, static s => s * 2, static s => $"x{s}"),
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal((40, "x20"), root.Result);
        Assert.Equal(1, scheduler.Statistics.Forked);
    }

    [Theory]
    [InlineData(1, 6)]
    [InlineData(2, 2)]
    [InlineData(2, 10)]
    [InlineData(4, 4)]
    public void ForkJoin_RecursiveFib_IsExact(int workers, int cutoff)
    {
        using var scheduler = new WorkStealingTaskScheduler(workers);
        var root = Task.Factory.StartNew(() => Fib(scheduler, 22, cutoff), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(17711, root.Result);
        WorkStealingTaskSchedulerStatistics stats = scheduler.Statistics;
        Assert.True(stats.Forked > 0, stats.ToString());
        Assert.True(stats.ForksStolen <= stats.Forked && stats.ForksStolen <= stats.Stolen, stats.ToString());
        if (workers == 1)
        {
            Assert.Equal(0, stats.ForksStolen); // nobody to steal: every fork was taken back by its owner
        }
    }

    [Fact]
    public void ForkJoin_FromAnOutsideThread_RunsTheForkOnAWorker()
    {
        // first waits until second started, so a worker must have taken it (otherwise the caller takes it back).
        using var scheduler = new WorkStealingTaskScheduler(2);
        int caller = Environment.CurrentManagedThreadId;
        using var started = new ManualResetEventSlim(false);
        (int first, int second) = scheduler.ForkJoin(
            started,
            static s => s.Wait(Generous) ? Environment.CurrentManagedThreadId : -1,
            static s =>
            {
                s.Set();
                return Environment.CurrentManagedThreadId;
            });
        Assert.Equal(caller, first);
        Assert.NotEqual(caller, second);
        Assert.Equal(0, scheduler.Statistics.Forked); // off-worker forks are tasks, not jobs
        Assert.Equal(21, Fib(scheduler, 8, 3)); // recursion from outside: the first level is a task, the rest jobs
    }

    [Fact]
    public void ForkJoin_SecondIsStolenWhileFirstRuns_BothRunOnce()
    {
        // first blocks until second ran: that can only happen if another worker stole it.
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                using var secondRan = new ManualResetEventSlim(false);
                int secondThread = 0;
                (bool waited, int _) = scheduler.ForkJoin(
                    0,
                    _ => secondRan.Wait(Generous),
                    _ =>
                    {
                        secondThread = Environment.CurrentManagedThreadId;
                        secondRan.Set();
                        return 0;
                    });
                return (waited, secondThread, me: Environment.CurrentManagedThreadId);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.True(root.Result.waited);
        Assert.NotEqual(root.Result.me, root.Result.secondThread);
        Assert.Equal(1, scheduler.Statistics.ForksStolen);
    }

    [Fact]
    public void ForkJoin_StolenFork_OwnerWaitsThenSeesTheResult()
    {
        // second is stolen and slow: the owner finishes first, finds its job gone, helps (nothing to do), spins, and
        // blocks in slices until the thief's signal; the result must be the thief's.
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, SpinRounds = 1 });
        for (int round = 0; round < 20; round++)
        {
            var root = Task.Factory.StartNew(
                () =>
                {
                    using var stolen = new ManualResetEventSlim(false);
                    return scheduler.ForkJoin(
                        round,
                        s => stolen.Wait(Generous) ? s : -1,
                        s =>
                        {
                            stolen.Set();
                            Thread.Sleep(round % 3); // 0-2 ms: before, during and after the owner's first wait slice
                            return s * 10;
                        });
                },
                CancellationToken.None, TaskCreationOptions.None, scheduler);
            Assert.True(root.Wait(Generous));
            Assert.Equal((round, round * 10), root.Result);
        }
    }

    [Fact]
    public void ForkJoin_FlowsTheExecutionContextIntoAStolenFork()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                Flow.Value = 7;
                using var secondRan = new ManualResetEventSlim(false);
                int seen = 0;
                scheduler.ForkJoin(
                    0,
                    _ => secondRan.Wait(Generous),
                    _ =>
                    {
                        seen = Flow.Value;
                        secondRan.Set();
                        return 0;
                    });
                return seen;
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(7, root.Result);
        Assert.Equal(1, scheduler.Statistics.ForksStolen);
    }

    [Fact]
    public void ForkJoin_FirstChangesTheContext_TakenBackForkStillSeesTheForkTimeContext()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var root = Task.Factory.StartNew(
            () =>
            {
                Flow.Value = 1;
                (_, int seen) = scheduler.ForkJoin(
                    0,
                    _ =>
                    {
                        Flow.Value = 2; // a synchronous change stays in effect on this thread after first returns
                        return 0;
                    },
                    _ => Flow.Value);
                return seen;
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(1, root.Result);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForkJoin_OneHalfThrows_RethrowsItUnwrappedAfterTheOtherRan(bool stolen)
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                using var secondRan = new ManualResetEventSlim(false);
                bool firstRan = false;
                var e1 = Assert.Throws<InvalidOperationException>(() => scheduler.ForkJoin<int, int, int>(
                    0,
                    _ =>
                    {
                        firstRan = !stolen || secondRan.Wait(Generous);
                        throw new InvalidOperationException("first");
                    },
                    _ =>
                    {
                        secondRan.Set();
                        return 0;
                    }));
                Assert.Equal("first", e1.Message);
                Assert.True(firstRan);
                Assert.True(secondRan.IsSet);

                bool firstDone = false;
                var e2 = Assert.Throws<ArgumentException>(() => scheduler.ForkJoin<int, int, int>(
                    0,
                    _ =>
                    {
                        firstDone = true;
                        return 0;
                    },
                    _ => throw new ArgumentException("second")));
                Assert.Equal("second", e2.Message);
                Assert.Contains(nameof(ForkJoin_OneHalfThrows_RethrowsItUnwrappedAfterTheOtherRan), e2.StackTrace); // the throw site survives
                Assert.True(firstDone);
                return true;
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.True(root.Result);
    }

    [Fact]
    public void ForkJoin_BothHalvesThrow_AggregateExceptionFirstThenSecond()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () => Assert.Throws<AggregateException>(() => scheduler.ForkJoin<int, int, int>(
                0,
                static _ => throw new InvalidOperationException("first"),
                static _ => throw new ArgumentException("second"))),
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        AggregateException e = root.Result;
        Assert.Equal(2, e.InnerExceptions.Count);
        Assert.IsType<InvalidOperationException>(e.InnerExceptions[0]);
        Assert.IsType<ArgumentException>(e.InnerExceptions[1]);

        // Off a worker too, and the scheduler stays usable.
        AggregateException outside = Assert.Throws<AggregateException>(() => scheduler.ForkJoin(
            static () => throw new InvalidOperationException("first"),
            static () => throw new ArgumentException("second")));
        Assert.Equal(2, outside.InnerExceptions.Count);
        Assert.Equal((1, 2), scheduler.ForkJoin(0, static s => s + 1, static s => s + 2));
    }

    [Fact]
    public void ForkJoin_ActionOverloads_RunBothHalves()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var hits = new int[2];
        var root = Task.Factory.StartNew(
            () =>
            {
                scheduler.ForkJoin(hits, static h => Interlocked.Increment(ref h[0]), static h => Interlocked.Increment(ref h[1]));
                scheduler.ForkJoin(() => Interlocked.Increment(ref hits[0]), () => Interlocked.Increment(ref hits[1]));
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal([2, 2], hits);
    }

    [Fact]
    public void ForkJoin_SteadyState_AllocatesNothingOnTheCallingWorker()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var root = Task.Factory.StartNew(
            () =>
            {
                _ = Fib(scheduler, 16, 2); // warm up: the pool holds one job per nesting level
                long before = GC.GetAllocatedBytesForCurrentThread();
                int result = Fib(scheduler, 16, 2);
                return (result, allocated: GC.GetAllocatedBytesForCurrentThread() - before);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(987, root.Result.result);
        Assert.Equal(0, root.Result.allocated);
    }

    [Fact]
    public void ForkJoin_NestedDeeperThanTheJobCache_IsExact()
    {
        // A linear chain 200 forks deep: past the 64 cached depths, jobs are created per fork.
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(() => Chain(scheduler, 200), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(200 * 201 / 2, root.Result);
        Assert.Equal(200, scheduler.Statistics.Forked);
    }

    [Fact]
    public void ForkJoin_DifferentShapesAtOneDepth_EachGetsItsOwnJob()
    {
        // The cached job at a depth is replaced when the call's types change; results never mix.
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                for (int i = 0; i < 100; i++)
                {
                    (int a, string b) = scheduler.ForkJoin(i, static s => s + 1, static s => $"s{s}");
                    (int c, long d) = scheduler.ForkJoin(i, static s => s + 2, static s => (long)s * 3);
                    if (a != i + 1 || b != $"s{i}" || c != i + 2 || d != 3L * i)
                    {
                        return $"round {i}: {a} {b} {c} {d}";
                    }
                }

                return "ok";
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal("ok", root.Result);
    }

    private static int Chain(WorkStealingTaskScheduler scheduler, int n)
    {
        if (n == 0)
        {
            return 0;
        }

        (int rest, int self) = scheduler.ForkJoin((N: n, S: scheduler), static s => Chain(s.S, s.N - 1), static s => s.N);
        return rest + self;
    }

    [Fact]
    public void ForkJoin_StolenSecondWaitsForWorkTheOwnerQueued_TheOwnerRunsItWhileHelping()
    {
        // second is stolen by the only other worker and waits for a gate that a task queued by first opens. The task
        // sits in the owner's LIFO slot and the thief is busy, so only the owner, helping while it waits for second,
        // can run it: without helping, second's wait times out.
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(
            () =>
            {
                using var gate = new ManualResetEventSlim(false);
                using var secondStarted = new ManualResetEventSlim(false);
                return scheduler.ForkJoin<int, bool, bool>(
                    0,
                    x =>
                    {
                        bool started = secondStarted.Wait(Generous); // second now runs on the other worker
                        Task.Factory.StartNew(() => gate.Set(), CancellationToken.None, TaskCreationOptions.None, scheduler);
                        return started;
                    },
                    x =>
                    {
                        secondStarted.Set();
                        return gate.Wait(Generous);
                    });
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous + Generous));
        Assert.Equal((true, true), root.Result);

        // The root's worker counts it as executed after the task completes, which is when this thread sees it: wait
        // for the count (it read 1 once in session 8, under two concurrent test runs).
        Assert.True(SpinWait.SpinUntil(() => scheduler.Statistics.Executed >= 2, Generous), scheduler.Statistics.ToString());
        WorkStealingTaskSchedulerStatistics stats = scheduler.Statistics;
        Assert.Equal(1, stats.ForksStolen);
        Assert.True(stats.Helped >= 1, stats.ToString());
        Assert.Equal(2, stats.Executed); // the root and the gate opener (forks are not tasks)
    }

    [Fact]
    public void ForkJoin_SecondThrew_TheNextForkAtThatDepthDoesNotRethrowIt()
    {
        // The job cached at a depth is reused: its recorded exception must be cleared after the join that threw it.
        using var scheduler = new WorkStealingTaskScheduler(1);
        var root = Task.Factory.StartNew(
            () =>
            {
                Assert.Throws<InvalidOperationException>(() => scheduler.ForkJoin<int, int, int>(0, static s => s, static _ => throw new InvalidOperationException("once")));
                return scheduler.ForkJoin(5, static s => s + 1, static s => s + 2);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal((6, 7), root.Result);
    }

    [Fact]
    public void ForkJoin_AfterDispose_FromOutside_ThrowsObjectDisposed()
    {
        var scheduler = new WorkStealingTaskScheduler(1);
        scheduler.Dispose();
        Assert.Throws<ObjectDisposedException>(() => scheduler.ForkJoin(0, static s => s, static s => s));
    }

    [Fact]
    public void ForkJoin_DisposeWhileAForkJoinTreeRuns_TheTreeFinishes()
    {
        var scheduler = new WorkStealingTaskScheduler(2);
        using var started = new ManualResetEventSlim(false);
        var root = Task.Factory.StartNew(
            () =>
            {
                started.Set();
                return Fib(scheduler, 24, 4);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(started.Wait(Generous));
        scheduler.Dispose(); // drains: the running tree keeps forking on the workers until it completes
        Assert.True(root.IsCompleted);
        Assert.Equal(46368, root.Result);
    }

    [Fact]
    public void ForkJoin_MixedWithTasksAndJoin_IsExact()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var root = Task.Factory.StartNew(() => Mixed(scheduler, 18), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(2584, root.Result);
    }

    private static int Mixed(WorkStealingTaskScheduler scheduler, int n)
    {
        if (n < 2)
        {
            return n;
        }

        if (n % 2 == 0)
        {
            (int a, int b) = scheduler.ForkJoin((N: n, S: scheduler), static s => Mixed(s.S, s.N - 1), static s => Mixed(s.S, s.N - 2));
            return a + b;
        }

        var left = Task.Factory.StartNew(() => Mixed(scheduler, n - 1), CancellationToken.None, TaskCreationOptions.None, scheduler);
        int right = Mixed(scheduler, n - 2);
        return scheduler.Join(left) + right;
    }

    internal static int Fib(WorkStealingTaskScheduler scheduler, int n, int cutoff)
    {
        if (n <= cutoff)
        {
            return SequentialFib(n);
        }

        (int a, int b) = scheduler.ForkJoin((N: n, C: cutoff, S: scheduler), static s => Fib(s.S, s.N - 2, s.C), static s => Fib(s.S, s.N - 1, s.C));
        return a + b;
    }

    private static int SequentialFib(int n) => n < 2 ? n : SequentialFib(n - 1) + SequentialFib(n - 2);
}
