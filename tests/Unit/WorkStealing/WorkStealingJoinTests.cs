// These tests exercise a TaskScheduler's blocking join, so they block on its tasks on purpose (always bounded).
#pragma warning disable xUnit1031
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary><see cref="WorkStealingTaskScheduler.Join(Task)"/>: a wait that runs other queued work while it waits.</summary>
public sealed class WorkStealingJoinTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;

    [Fact]
    public void Join_Null_Throws()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        Assert.Throws<ArgumentNullException>(() => scheduler.Join(null!));
        Assert.Throws<ArgumentNullException>(() => scheduler.Join<int>(null!));
        Assert.Equal(3, scheduler.Join(Task.FromResult(3))); // still usable
    }

    [Fact]
    public void Join_FromAnOutsideThread_IsAPlainWait()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var task = Task.Factory.StartNew(() => 42, CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.Equal(42, scheduler.Join(task));
        Assert.Equal(0, scheduler.Statistics.Helped);
    }

    [Fact]
    public void Join_QueuedChild_RunsInlineOnTheJoiningWorker()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = Task.Factory.StartNew(
            () =>
            {
                int outer = Environment.CurrentManagedThreadId;
                var child = Task.Factory.StartNew(() => Environment.CurrentManagedThreadId, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                return (outer, inner: scheduler.Join(child));
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(task.Result.outer, task.Result.inner);
    }

    /// <summary>
    /// The stolen-fork case. Worker A's root forks T; worker B takes T and blocks in it until a gate opens. A then
    /// queues the gate-opener into its own LIFO slot and waits for T. B cannot run the opener (it is inside T), so T
    /// finishes only if A runs the opener while it waits: Join does; a plain Task.Result does not (the control
    /// below shows the same scenario failing with Result, so this test can fail).
    /// </summary>
    [Fact]
    public void Join_ForkRunningOnAnotherWorker_RunsOtherQueuedWorkMeanwhile()
    {
        (bool stolen, bool opened) = StolenForkScenario(useJoin: true, gateTimeout: Generous, out WorkStealingTaskSchedulerStatistics stats);
        Assert.True(stolen);
        Assert.True(opened);
        Assert.True(stats.Helped >= 1, stats.ToString());
    }

    [Fact]
    public void Result_ForkRunningOnAnotherWorker_BlocksWithoutHelping_ControlForJoinTest()
    {
        (bool stolen, bool opened) = StolenForkScenario(useJoin: false, gateTimeout: TimeSpan.FromMilliseconds(300), out _);
        Assert.True(stolen);
        Assert.False(opened); // the gate timed out: nobody ran the opener while the parent blocked
    }

    [Fact]
    public void Join_FaultedTask_RethrowsTheExceptionUnwrapped()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var outer = Task.Factory.StartNew(
            () =>
            {
                var child = Task.Factory.StartNew<int>(() => throw new InvalidOperationException("boom"), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                return scheduler.Join(child);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        var error = Assert.Throws<AggregateException>(() => outer.Wait(Generous));
        Assert.IsType<InvalidOperationException>(Assert.Single(error.InnerExceptions));
        Assert.Throws<InvalidOperationException>(() => scheduler.Join(Task.FromException(new InvalidOperationException())));
    }

    [Fact]
    public void Join_CanceledTask_ThrowsTaskCanceled()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        Assert.Throws<TaskCanceledException>(() => scheduler.Join(Task.FromCanceled<int>(new CancellationToken(true))));
        Assert.Throws<TaskCanceledException>(() => scheduler.Join(Task.FromCanceled(new CancellationToken(true))));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Join_ForkJoinFibonacci_IsCorrect(int workers)
    {
        using var scheduler = new WorkStealingTaskScheduler(workers);
        var task = Task.Factory.StartNew(() => Fib(scheduler, 20), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(6765, task.Result);
    }

    [Fact]
    public void Join_DeepRecursionOnOneWorker_DoesNotOverflowOrDeadlock()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = Task.Factory.StartNew(() => Depth(scheduler, 3000), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(3000, task.Result);
    }

    [Fact]
    public void Join_TaskOfAnotherScheduler_OnAWorker_Waits()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var task = Task.Factory.StartNew(
            () => scheduler.Join(Task.Run(() => 7)),
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(7, task.Result);
    }

    private static (bool Stolen, bool Opened) StolenForkScenario(bool useJoin, TimeSpan gateTimeout, out WorkStealingTaskSchedulerStatistics stats)
    {
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, SpinRounds = 0 });
        using var started = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        var root = Task.Factory.StartNew(
            () =>
            {
                var fork = Task.Factory.StartNew(() => { started.Set(); return gate.Wait(gateTimeout); }, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                if (!started.Wait(Generous))
                {
                    return (false, false); // the fork never ran elsewhere: this worker is busy here, so it was not taken
                }

                Task.Factory.StartNew(gate.Set, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                bool opened = useJoin ? scheduler.Join(fork) : fork.Result;
                return (true, opened);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        stats = scheduler.Statistics;
        return root.Result;
    }

    internal static int Fib(WorkStealingTaskScheduler scheduler, int n)
    {
        if (n < 2)
        {
            return n;
        }

        var left = Task.Factory.StartNew(() => Fib(scheduler, n - 1), CancellationToken.None, TaskCreationOptions.None, scheduler);
        int right = Fib(scheduler, n - 2);
        return scheduler.Join(left) + right;
    }

    private static int Depth(WorkStealingTaskScheduler scheduler, int n) =>
        n == 0 ? 0 : scheduler.Join(Task.Factory.StartNew(() => Depth(scheduler, n - 1), CancellationToken.None, TaskCreationOptions.None, scheduler)) + 1;
}
