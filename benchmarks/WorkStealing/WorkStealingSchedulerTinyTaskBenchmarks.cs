using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.WorkStealing;

/// <summary>
/// Scheduling overhead with nearly empty tasks; per-op = one task. Groups: <c>Outside</c>, 100,000
/// Task.Factory.StartNew calls from the benchmark thread (a non-worker: the injection queue), then a countdown to
/// zero; <c>Inside</c>, one root task spawns the 100,000 from a worker (LIFO slot and deque; the thread pool's
/// local queue); <c>Latency</c>, one StartNew then Wait, 2,000 times in a row (spawn-plus-run round trip from an
/// outside thread). The baseline in each group is <see cref="TaskScheduler.Default"/>. Every task is counted.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class WorkStealingSchedulerTinyTaskBenchmarks
{
    private const int Tasks = 100_000;
    private const int RoundTrips = 2_000;

    private WorkStealingTaskScheduler _scheduler = null!;
    private Countdown _countdown = null!;
    private Action _tick = null!;

    [GlobalSetup]
    public void Setup()
    {
        _scheduler = new WorkStealingTaskScheduler(Environment.ProcessorCount);
        _countdown = new Countdown();
        _tick = _countdown.Signal;
    }

    [GlobalCleanup]
    public void Cleanup() => _scheduler.Dispose();

    /// <summary>Thread pool, queued from outside.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Tasks)]
    [BenchmarkCategory("Outside")]
    public void OutsideDefault() => Outside(TaskScheduler.Default);

    /// <summary>Work-stealing scheduler, queued from outside.</summary>
    [Benchmark(OperationsPerInvoke = Tasks)]
    [BenchmarkCategory("Outside")]
    public void OutsideWorkStealing() => Outside(_scheduler);

    /// <summary>Thread pool, spawned from a pool thread.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Tasks)]
    [BenchmarkCategory("Inside")]
    public void InsideDefault() => Inside(TaskScheduler.Default);

    /// <summary>Work-stealing scheduler, spawned from a worker.</summary>
    [Benchmark(OperationsPerInvoke = Tasks)]
    [BenchmarkCategory("Inside")]
    public void InsideWorkStealing() => Inside(_scheduler);

    /// <summary>Thread pool: StartNew + Wait, one at a time.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = RoundTrips)]
    [BenchmarkCategory("Latency")]
    public int LatencyDefault() => Latency(TaskScheduler.Default);

    /// <summary>Work-stealing scheduler: StartNew + Wait, one at a time.</summary>
    [Benchmark(OperationsPerInvoke = RoundTrips)]
    [BenchmarkCategory("Latency")]
    public int LatencyWorkStealing() => Latency(_scheduler);

    private void Outside(TaskScheduler scheduler)
    {
        _countdown.Reset(Tasks);
        for (int i = 0; i < Tasks; i++)
        {
            Task.Factory.StartNew(_tick, CancellationToken.None, TaskCreationOptions.None, scheduler);
        }

        _countdown.Wait();
    }

    private void Inside(TaskScheduler scheduler)
    {
        _countdown.Reset(Tasks);
        Action tick = _tick;
        Task.Factory.StartNew(
            () =>
            {
                for (int i = 0; i < Tasks; i++)
                {
                    Task.Factory.StartNew(tick, CancellationToken.None, TaskCreationOptions.None, scheduler);
                }
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        _countdown.Wait();
    }

    private static int Latency(TaskScheduler scheduler)
    {
        int sum = 0;
        for (int i = 0; i < RoundTrips; i++)
        {
            sum += Task.Factory.StartNew(static () => 1, CancellationToken.None, TaskCreationOptions.None, scheduler).Result;
        }

        Transfer.Check(sum, RoundTrips, "latency round trips");
        return sum;
    }

    /// <summary>A countdown that sets an event at zero (the check that every task ran).</summary>
    private sealed class Countdown
    {
        private readonly ManualResetEventSlim _zero = new();
        private int _remaining;

        public void Reset(int count)
        {
            _zero.Reset();
            Volatile.Write(ref _remaining, count);
        }

        public void Signal()
        {
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                _zero.Set();
            }
        }

        public void Wait()
        {
            if (!_zero.Wait(TimeSpan.FromMinutes(1)))
            {
                throw new InvalidOperationException($"{Volatile.Read(ref _remaining)} tasks never ran");
            }
        }
    }
}
