// These tests exercise a TaskScheduler, so they block on its tasks on purpose (always with a bounded timeout);
// the waits are on this scheduler's workers, never on the test framework's context.
#pragma warning disable xUnit1031
using System.Reflection;
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>The <see cref="TaskScheduler"/> contract of <see cref="WorkStealingTaskScheduler"/>: each behaviour as on the default scheduler.</summary>
public sealed class WorkStealingTaskSchedulerTests
{
    internal static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(WorkStealingTaskScheduler.MaxWorkerCountLimit + 1)]
    public void Ctor_WorkerCountOutOfRange_Throws(int workerCount) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkStealingTaskScheduler(workerCount));

    [Fact]
    public void Ctor_NullOptions_Throws() =>
        Assert.Throws<ArgumentNullException>(() => new WorkStealingTaskScheduler(null!));

    public static TheoryData<string> BadOptions() =>
    [
        "min>count", "min<0", "max<count", "max<0", "max>limit", "injection<2", "injection>max", "lifo<0", "lifo>1000",
        "interval<1", "spin<0", "spin>10000", "sample<1ms", "sample>1h", "depth<0", "idle<1ms", "clock=null",
    ];

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Ctor_BadOption_ThrowsWithoutStartingThreads(string which)
    {
        var o = new WorkStealingTaskSchedulerOptions { WorkerCount = 2 };
        switch (which)
        {
            case "min>count": o.MinimumWorkerCount = 3; break;
            case "min<0": o.MinimumWorkerCount = -1; break;
            case "max<count": o.MaximumWorkerCount = 1; break;
            case "max<0": o.MaximumWorkerCount = -1; break;
            case "max>limit": o.MaximumWorkerCount = WorkStealingTaskScheduler.MaxWorkerCountLimit + 1; break;
            case "injection<2": o.InjectionQueueCapacity = 1; break;
            case "injection>max": o.InjectionQueueCapacity = (1 << 30) + 1; break;
            case "lifo<0": o.LifoSlotRunLimit = -1; break;
            case "lifo>1000": o.LifoSlotRunLimit = 1001; break;
            case "interval<1": o.InjectionCheckInterval = 0; break;
            case "spin<0": o.SpinRounds = -1; break;
            case "spin>10000": o.SpinRounds = 10_001; break;
            case "sample<1ms": o.ScaleSampleInterval = TimeSpan.Zero; break;
            case "sample>1h": o.ScaleSampleInterval = TimeSpan.FromHours(2); break;
            case "depth<0": o.ScaleUpQueueDepth = -1; break;
            case "idle<1ms": o.ScaleDownIdleTime = TimeSpan.FromTicks(1); break;
            case "clock=null": o.TimeProvider = null!; break;
        }

        var ex = Assert.ThrowsAny<ArgumentException>(() => new WorkStealingTaskScheduler(o));
        Assert.True(ex is ArgumentOutOfRangeException or ArgumentNullException, ex.GetType().Name);
    }

    [Fact]
    public void Ctor_Defaults_AreDocumentedValues()
    {
        var o = new WorkStealingTaskSchedulerOptions();
        Assert.Equal(Environment.ProcessorCount, o.WorkerCount);
        Assert.Equal(4096, o.InjectionQueueCapacity);
        Assert.Equal(3, o.LifoSlotRunLimit);
        Assert.Equal(61, o.InjectionCheckInterval);
        Assert.False(o.AutoScale);
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2 });
        Assert.Equal(2, scheduler.MinimumWorkerCount);
        Assert.Equal(2, scheduler.MaximumWorkerCount);
        Assert.Equal(2, scheduler.MaximumConcurrencyLevel);
        Assert.Equal(2, scheduler.TargetWorkerCount);
    }

    [Fact]
    public void MaximumConcurrencyLevel_IsMaximumWorkerCount()
    {
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, MaximumWorkerCount = 5 });
        Assert.Equal(5, scheduler.MaximumConcurrencyLevel);
    }

    [Fact]
    public void StartNew_RunsOnAWorker_WithSchedulerAsCurrent()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var task = Task.Factory.StartNew(
            () => (TaskScheduler.Current, Thread.CurrentThread.Name, Thread.CurrentThread.IsBackground),
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Same(scheduler, task.Result.Current);
        Assert.Contains("worker", task.Result.Name);
        Assert.True(task.Result.IsBackground);
    }

    [Fact]
    public void Start_WithScheduler_Runs()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = new Task<int>(() => 42);
        task.Start(scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(42, task.Result);
    }

    [Fact]
    public void ContinueWith_OnScheduler_RunsInOrderOnScheduler()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var order = new List<int>();
        Task chain = Task.Factory.StartNew(() => order.Add(1), CancellationToken.None, TaskCreationOptions.None, scheduler);
        for (int i = 2; i <= 50; i++)
        {
            int n = i;
            chain = chain.ContinueWith(_ => { Assert.Same(scheduler, TaskScheduler.Current); order.Add(n); }, scheduler);
        }

        Assert.True(chain.Wait(Generous));
        Assert.Equal(Enumerable.Range(1, 50), order);
    }

    [Fact]
    public async Task Await_InsideTask_ResumesOnScheduler()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        TaskScheduler resumedOn = await Task.Factory.StartNew(
            async () =>
            {
                await Task.Yield();
                await Task.Delay(1);
                return TaskScheduler.Current;
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler).Unwrap().WaitAsync(Generous);
        Assert.Same(scheduler, resumedOn);
    }

    [Fact]
    public void Exception_FaultsTask_AndWorkerSurvives()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var faulted = Task.Factory.StartNew(() => throw new InvalidTimeZoneException("boom"), CancellationToken.None, TaskCreationOptions.None, scheduler);
        var ex = Assert.Throws<AggregateException>(() => faulted.Wait(Generous));
        Assert.IsType<InvalidTimeZoneException>(ex.InnerException);
        Assert.True(faulted.IsFaulted);
        var next = Task.Factory.StartNew(() => 7, CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(next.Wait(Generous));
        Assert.Equal(7, next.Result);
    }

    [Fact]
    public void ChildException_PropagatesThroughAttachedParent()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var parent = Task.Factory.StartNew(
            () => Task.Factory.StartNew(() => throw new FormatException(), CancellationToken.None, TaskCreationOptions.AttachedToParent, TaskScheduler.Current),
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        var ex = Assert.Throws<AggregateException>(() => parent.Wait(Generous));
        Assert.IsType<FormatException>(ex.Flatten().InnerException);
    }

    [Fact]
    public void Cancellation_BeforeStart_TaskCanceledAndNeverRuns()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        bool ran = false;
        var task = Task.Factory.StartNew(() => ran = true, cts.Token, TaskCreationOptions.None, scheduler);
        Assert.Throws<AggregateException>(() => task.Wait(Generous));
        Assert.True(task.IsCanceled);
        Assert.False(ran);
    }

    [Fact]
    public void Cancellation_WhileQueued_TaskCanceledAndNeverRuns()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        using var gate = new ManualResetEventSlim();
        using var cts = new CancellationTokenSource();
        bool ran = false;
        Task? child = null;
        var blocker = Task.Factory.StartNew(
            () =>
            {
                // Queued from the worker: the child sits in the LIFO slot, where TryDequeue can take it back.
                child = Task.Factory.StartNew(() => ran = true, cts.Token, TaskCreationOptions.None, TaskScheduler.Current);
                cts.Cancel();
                Assert.True(gate.Wait(Generous));
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        SpinWait.SpinUntil(() => Volatile.Read(ref child) is not null, Generous);
        gate.Set();
        Assert.True(blocker.Wait(Generous));
        Assert.Throws<AggregateException>(() => child!.Wait(Generous));
        Assert.True(child!.IsCanceled);
        Assert.False(ran);
    }

    [Fact]
    public void Cancellation_ObservedInsideTask_EndsCanceled()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        using var cts = new CancellationTokenSource();
        var task = Task.Factory.StartNew(
            () =>
            {
                cts.Cancel();
                cts.Token.ThrowIfCancellationRequested();
            },
            cts.Token, TaskCreationOptions.None, scheduler);
        Assert.Throws<AggregateException>(() => task.Wait(Generous));
        Assert.True(task.IsCanceled);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void ForkJoin_Fibonacci_WithoutCutoff_IsCorrect(int workers)
    {
        using var scheduler = new WorkStealingTaskScheduler(workers);
        var task = Task.Factory.StartNew(() => Fib(18), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(2584, task.Result);
        Assert.True(scheduler.Statistics.Executed >= 1);
    }

    [Fact]
    public void ForkJoin_DeepRecursion_DoesNotOverflowOrDeadlockOnOneWorker()
    {
        // Each level waits for its child on the only worker: only inlining (bounded by the runtime's stack probe)
        // or the child running elsewhere can finish it.
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = Task.Factory.StartNew(() => Depth(3000), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(3000, task.Result);
    }

    [Fact]
    public void LongRunning_GetsItsOwnThread()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = Task.Factory.StartNew(() => Thread.CurrentThread.Name, CancellationToken.None, TaskCreationOptions.LongRunning, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Contains("long-running", task.Result);
    }

    [Fact]
    public void LongRunning_BlockingForever_DoesNotTakeAWorker()
    {
        using var gate = new ManualResetEventSlim();
        using var scheduler = new WorkStealingTaskScheduler(1);
        var blocking = Task.Factory.StartNew(() => gate.Wait(Generous), CancellationToken.None, TaskCreationOptions.LongRunning, scheduler);
        var normal = Task.Factory.StartNew(() => 1, CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(normal.Wait(Generous));
        gate.Set();
        Assert.True(blocking.Wait(Generous));
    }

    [Fact]
    public void RunSynchronously_FromOutside_RunsOnAWorkerNotInline()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = new Task<string?>(() => Thread.CurrentThread.Name);
        task.RunSynchronously(scheduler);
        Assert.Contains("worker", task.Result);
    }

    [Fact]
    public void Wait_OnAWorker_InlinesTheQueuedChild()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = Task.Factory.StartNew(
            () =>
            {
                int outer = Environment.CurrentManagedThreadId;
                var child = Task.Factory.StartNew(() => Environment.CurrentManagedThreadId, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                return (outer, inner: child.Result);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(task.Result.outer, task.Result.inner);
    }

    [Fact]
    public void LifoSlot_OfABlockedWorker_IsStolenByAnother()
    {
        // The parent queues its releaser into its own LIFO slot, then blocks on an event (not a Task wait, so no
        // inlining). Only another worker taking the slot can release it; a non-stealable slot would hang here.
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, SpinRounds = 0 });
        using var released = new ManualResetEventSlim();
        var parent = Task.Factory.StartNew(
            () =>
            {
                Task.Factory.StartNew(released.Set, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                return released.Wait(Generous);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(parent.Wait(Generous));
        Assert.True(parent.Result);
        Assert.True(scheduler.Statistics.Stolen >= 1);
    }

    [Fact]
    public void GetScheduledTasks_ListsATaskInTheLifoSlot()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        MethodInfo get = typeof(TaskScheduler).GetMethod("GetScheduledTasks", BindingFlags.Instance | BindingFlags.NonPublic)!;
        var task = Task.Factory.StartNew(
            () =>
            {
                var child = Task.Factory.StartNew(() => { }, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                var snapshot = ((IEnumerable<Task>)get.Invoke(scheduler, null)!).ToList();
                return snapshot.Contains(child);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.True(task.Result);
    }

    [Fact]
    public void SpillList_InjectionRingFull_EveryTaskStillRuns()
    {
        using var gate = new ManualResetEventSlim();
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, InjectionQueueCapacity = 2 });
        var blocker = Task.Factory.StartNew(() => gate.Wait(Generous), CancellationToken.None, TaskCreationOptions.None, scheduler);
        int ran = 0;
        var tasks = Enumerable.Range(0, 100)
            .Select(_ => Task.Factory.StartNew(() => Interlocked.Increment(ref ran), CancellationToken.None, TaskCreationOptions.None, scheduler))
            .ToArray();
        Assert.True(scheduler.Statistics.Spilled > 0);
        gate.Set();
        Assert.True(Task.WaitAll(tasks, Generous));
        Assert.True(blocker.Wait(Generous));
        Assert.Equal(100, ran);
    }

    [Fact]
    public void InjectionQueue_NotStarvedByASelfFeedingWorker()
    {
        // One worker keeps queuing the next link of a chain from itself; an outside task must still get its turn
        // (the injection queue is checked every InjectionCheckInterval tasks). Without it this would run forever.
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, InjectionCheckInterval = 8 });
        int stop = 0;
        void Link()
        {
            if (Volatile.Read(ref stop) == 0)
            {
                Task.Factory.StartNew(Link, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
            }
        }

        Task.Factory.StartNew(Link, CancellationToken.None, TaskCreationOptions.None, scheduler);
        var outside = Task.Factory.StartNew(() => Volatile.Write(ref stop, 1), CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(outside.Wait(Generous));
    }

    [Fact]
    public void LifoSlot_CappedSoTheDequeIsNotStarved()
    {
        // A chain that always refills the LIFO slot must not starve an older task in the deque.
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
        {
            WorkerCount = 1, LifoSlotRunLimit = 3, InjectionCheckInterval = 1_000_000,
        });
        int stop = 0;
        void Link()
        {
            if (Volatile.Read(ref stop) == 0)
            {
                Task.Factory.StartNew(Link, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
            }
        }

        Task? older = null;
        var root = Task.Factory.StartNew(
            () =>
            {
                older = Task.Factory.StartNew(() => Volatile.Write(ref stop, 1), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                Task.Factory.StartNew(Link, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current); // displaces `older` into the deque
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.True(older!.Wait(Generous));
    }

    [Fact]
    public void ParallelFor_WithSchedulerInOptions_RunsEveryIterationOnWorkersOrCaller()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        long sum = 0;
        var result = Parallel.For(0, 10_000, new ParallelOptions { TaskScheduler = scheduler }, i => Interlocked.Add(ref sum, i));
        Assert.True(result.IsCompleted);
        Assert.Equal(49_995_000, sum);
    }

    [Fact]
    public void PreferFairness_FromAWorker_GoesToTheInjectionQueueAndRuns()
    {
        using var scheduler = new WorkStealingTaskScheduler(1);
        var task = Task.Factory.StartNew(
            () =>
            {
                var fair = Task.Factory.StartNew(() => 5, CancellationToken.None, TaskCreationOptions.PreferFairness, TaskScheduler.Current);
                return fair.Result;
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(Generous));
        Assert.Equal(5, task.Result);
    }

    [Fact]
    public void Statistics_CountQueuedAndExecuted()
    {
        using var scheduler = new WorkStealingTaskScheduler(2);
        var tasks = Enumerable.Range(0, 200).Select(_ => Task.Factory.StartNew(() => { }, CancellationToken.None, TaskCreationOptions.None, scheduler)).ToArray();
        Assert.True(Task.WaitAll(tasks, Generous));
        // A worker counts a run just after the task completes, so the count may trail WaitAll for a moment.
        Assert.True(SpinWait.SpinUntil(() => scheduler.Statistics.Executed == 200, Generous), scheduler.Statistics.ToString());
        var stats = scheduler.Statistics;
        Assert.Equal(200, stats.Queued);
        Assert.Equal(2, stats.WorkerCount);
        Assert.Equal(0, stats.Spilled);
    }

    internal static int Fib(int n)
    {
        if (n < 2)
        {
            return n;
        }

        var left = Task.Factory.StartNew(() => Fib(n - 1), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
        int right = Fib(n - 2);
        return left.Result + right;
    }

    private static int Depth(int n) =>
        n == 0 ? 0 : Task.Factory.StartNew(() => Depth(n - 1), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current).Result + 1;
}
