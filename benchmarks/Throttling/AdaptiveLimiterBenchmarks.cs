using System.Threading.RateLimiting;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Throttling;

/// <summary>
/// Admission cost of a concurrency limit: per op = one acquire and one release, on <see cref="Threads"/> threads
/// at once (2 threads share the in-flight counter). <see cref="AdaptiveConcurrencyLimiter"/> (TryAcquire +
/// AdaptiveLease.Complete, which also records the latency sample: two clock reads) against
/// <see cref="ConcurrencyLimiter"/> (AttemptAcquire + lease Dispose, baseline). The limit (1000) is never
/// reached: every acquire must succeed, and the benchmark fails if one does not. The adaptive limiter runs its
/// algorithm (AIMD) once per 100 ms window, so that cost is included. Target: 0 B/op.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class AdaptiveLimiterBenchmarks
{
    /// <summary>Acquire+release pairs per invocation (split across the threads).</summary>
    public const int Ops = 1 << 16;

    private const int Limit = 1000;

    private AdaptiveConcurrencyLimiter _adaptive = null!;
    private ConcurrencyLimiter _concurrency = null!;
    private RoundWorkers _workers = null!;
    private Action<int> _runAdaptive = null!, _runConcurrency = null!;
    private long _failed;

    /// <summary>Threads acquiring and releasing at once (2 threads on a 2-core machine: not oversubscribed, but sharing with the OS).</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _adaptive = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = new AimdLimit(new AimdLimitOptions { InitialLimit = Limit, MaxLimit = Limit }),
        });
        _concurrency = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = Limit, QueueLimit = 0 });
        _workers = new RoundWorkers(Threads, "adaptive-limiter");
        _runAdaptive = _ => RunAdaptive(Ops / Threads);
        _runConcurrency = _ => RunConcurrency(Ops / Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _workers.Dispose();
        _concurrency.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public long ConcurrencyLimiter() => Round(_runConcurrency);

    [Benchmark(OperationsPerInvoke = Ops)]
    public long AdaptiveLimiter() => Round(_runAdaptive);

    private long Round(Action<int> work)
    {
        _workers.StartRound(work);
        _workers.WaitRound();
        long failed = Interlocked.Exchange(ref _failed, 0);
        if (failed != 0)
        {
            throw new InvalidOperationException($"{failed} acquires failed below the limit");
        }

        return Ops;
    }

    private void RunAdaptive(int ops)
    {
        AdaptiveConcurrencyLimiter limiter = _adaptive;
        long failed = 0;
        for (int i = 0; i < ops; i++)
        {
            if (limiter.TryAcquire(out AdaptiveLease lease))
            {
                lease.Complete(AdaptiveOutcome.Success);
            }
            else
            {
                failed++;
            }
        }

        Interlocked.Add(ref _failed, failed);
    }

    private void RunConcurrency(int ops)
    {
        ConcurrencyLimiter limiter = _concurrency;
        long failed = 0;
        for (int i = 0; i < ops; i++)
        {
            using RateLimitLease lease = limiter.AttemptAcquire(1);
            if (!lease.IsAcquired)
            {
                failed++;
            }
        }

        Interlocked.Add(ref _failed, failed);
    }
}
