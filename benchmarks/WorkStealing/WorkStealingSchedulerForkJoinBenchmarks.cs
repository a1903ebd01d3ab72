using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.WorkStealing;

/// <summary>
/// Recursive fork-join: Fibonacci where each call above the cutoff forks fib(n-1) as a task, computes fib(n-2)
/// itself and waits for the fork (Task.Result, which inlines the child when the scheduler lets it); below the
/// cutoff it recurses sequentially. fib(27) makes 1,596 forks per invocation with cutoff 12 and 10,945 with cutoff 8. The baseline
/// is the same code on <see cref="TaskScheduler.Default"/> (the thread pool); the result is checked. The
/// WorkStealingTaskScheduler runs <see cref="Environment.ProcessorCount"/> workers, twice that, or starts at one
/// per core with the built-in scale rule allowed to reach two. <see cref="WorkStealingJoin"/> is the same recursion
/// written for this scheduler: the parent waits with <see cref="WorkStealingTaskScheduler.Join{TResult}(Task{TResult})"/>,
/// which runs other queued tasks while the fork runs elsewhere, where Task.Result blocks the worker's thread.
/// DESIGN.md target: ≥ 1.5×.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class WorkStealingSchedulerForkJoinBenchmarks
{
    private const int N = 27;
    private const int Expected = 196418; // fib(27)

    private WorkStealingTaskScheduler _scheduler = null!;

    /// <summary>
    /// Calls at or below this n recurse sequentially. 12: 1,596 forks, leaves of about a microsecond of work (coarse).
    /// 8: 10,945 forks, leaves of about 100 ns (fine-grained), where the cost of a fork decides the result.
    /// </summary>
    [Params(12, 8)]
    public int Cutoff { get; set; }
    private WorkStealingTaskScheduler _twoPerCore = null!;
    private WorkStealingTaskScheduler _autoScale = null!;

    [GlobalSetup]
    public void Setup()
    {
        _scheduler = new WorkStealingTaskScheduler(Environment.ProcessorCount);
        _twoPerCore = new WorkStealingTaskScheduler(2 * Environment.ProcessorCount);
        _autoScale = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
        {
            WorkerCount = Environment.ProcessorCount,
            MaximumWorkerCount = 2 * Environment.ProcessorCount,
            AutoScale = true,
            ScaleSampleInterval = TimeSpan.FromMilliseconds(1),
            ScaleDownIdleTime = TimeSpan.FromSeconds(1),
        });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _scheduler.Dispose();
        _twoPerCore.Dispose();
        _autoScale.Dispose();
    }

    /// <summary>The thread pool.</summary>
    [Benchmark(Baseline = true)]
    public int Default() => Run(TaskScheduler.Default, Cutoff);

    /// <summary>
    /// The same recursion on the calling thread, no tasks: the work itself. No scheduler can beat this divided by the
    /// core count, so <c>Sequential / Default / cores</c> bounds what any scheduler can gain over the thread pool:
    /// the 1.5× target is reachable only where the pool's own speed-up over this is below cores / 1.5.
    /// </summary>
    [Benchmark]
    public int Sequential()
    {
        int result = Sequential(N);
        Transfer.Check(result, Expected, "fib");
        return result;
    }

    /// <summary>The work-stealing scheduler, one worker per core.</summary>
    [Benchmark]
    public int WorkStealing() => Run(_scheduler, Cutoff);

    /// <summary>
    /// Two workers per core: a parent blocked in Task.Wait on a fork that another worker is running holds its
    /// worker (the runtime offers no hook to run other work meanwhile), so blocking fork-join wants spare workers,
    /// as the thread pool gets by injecting threads when its threads block.
    /// </summary>
    [Benchmark]
    public int WorkStealingTwoPerCore() => Run(_twoPerCore, Cutoff);

    /// <summary>One worker per core, growing up to two per core by the built-in rule (1 ms samples) while work waits and no worker is idle.</summary>
    [Benchmark]
    public int WorkStealingAutoScale() => Run(_autoScale, Cutoff);

    /// <summary>One worker per core; the parent joins its fork with the scheduler's helping Join instead of Task.Result.</summary>
    [Benchmark]
    public int WorkStealingJoin() => Run(_scheduler, Cutoff, joiner: _scheduler);

    /// <summary>
    /// One worker per core; the same recursion written with <see cref="WorkStealingTaskScheduler.ForkJoin{TState, TFirst, TSecond}"/>:
    /// each fork is a pooled job instead of a Task (0 B per fork; the root is one task).
    /// </summary>
    [Benchmark]
    public int WorkStealingForkJoin()
    {
        WorkStealingTaskScheduler scheduler = _scheduler;
        int cutoff = Cutoff;
        int result = Task.Factory.StartNew(() => ForkFib(N, cutoff, scheduler), CancellationToken.None, TaskCreationOptions.None, scheduler).Result;
        Transfer.Check(result, Expected, "fib");
        return result;
    }

    private static int ForkFib(int n, int cutoff, WorkStealingTaskScheduler scheduler)
    {
        if (n <= cutoff)
        {
            return Sequential(n);
        }

        (int a, int b) = scheduler.ForkJoin((N: n, C: cutoff, S: scheduler), static s => ForkFib(s.N - 2, s.C, s.S), static s => ForkFib(s.N - 1, s.C, s.S));
        return a + b;
    }

    /// <summary>Runs fib(<see cref="N"/>) on <paramref name="scheduler"/>; forks are joined with <paramref name="joiner"/>'s Join when given, else with Task.Result.</summary>
    private static int Run(TaskScheduler scheduler, int cutoff, WorkStealingTaskScheduler? joiner = null)
    {
        int result = Task.Factory.StartNew(() => Fib(N, cutoff, scheduler, joiner), CancellationToken.None, TaskCreationOptions.None, scheduler).Result;
        Transfer.Check(result, Expected, "fib");
        return result;
    }

    private static int Fib(int n, int cutoff, TaskScheduler scheduler, WorkStealingTaskScheduler? joiner)
    {
        if (n <= cutoff)
        {
            return Sequential(n);
        }

        Task<int> left = Task.Factory.StartNew(() => Fib(n - 1, cutoff, scheduler, joiner), CancellationToken.None, TaskCreationOptions.None, scheduler);
        int right = Fib(n - 2, cutoff, scheduler, joiner);
        return (joiner is null ? left.Result : joiner.Join(left)) + right;
    }

    private static int Sequential(int n) => n < 2 ? n : Sequential(n - 1) + Sequential(n - 2);
}
