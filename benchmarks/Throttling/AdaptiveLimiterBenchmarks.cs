using System.Threading.RateLimiting;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Throttling;

/// <summary>
/// Admission cost of a concurrency limit: per op = one acquire and one release, on <see cref="Threads"/> threads
/// at once (2 threads share the in-flight counter). <see cref="AdaptiveConcurrencyLimiter"/> (TryAcquire +
/// AdaptiveLease.Complete, which also records the latency sample: two clock reads) against
/// <see cref="ConcurrencyLimiter"/> (AttemptAcquire + lease Dispose, baseline). The limit (1000) is never
/// reached: every acquire must succeed, and the benchmark fails if one does not. The adaptive limiter runs its
/// algorithm (AIMD) once per 100 ms window, so that cost is included. Category <c>Reject</c>: the limit (1) is held
/// by a request that never completes, so every acquire is refused (the shedding path under overload); the
/// benchmark fails if one succeeds. Target: 0 B/op, rejections included.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class AdaptiveLimiterBenchmarks
{
    /// <summary>Acquire+release pairs per invocation (split across the threads).</summary>
    public const int Ops = 1 << 16;

    private const int Limit = 1000;

    private AdaptiveConcurrencyLimiter _adaptive = null!, _adaptiveFull = null!;
    private ConcurrencyLimiter _concurrency = null!, _concurrencyFull = null!;
    private RateLimitLease _heldLease = null!;
    private RoundWorkers _workers = null!;
    private Action<int> _runAdaptive = null!, _runConcurrency = null!, _rejectAdaptive = null!, _rejectConcurrency = null!;
    private long _failed;

    /// <summary>Threads acquiring and releasing at once (2 threads on a 2-core machine: not oversubscribed, but sharing with the OS).</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>The adaptive limiter measures the latency of one request in this many (1: every request, two clock reads each); the baseline ignores it.</summary>
    [Params(1, 8)]
    public int SampleEvery { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _adaptive = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = new AimdLimit(new AimdLimitOptions { InitialLimit = Limit, MaxLimit = Limit }),
            SampleEvery = SampleEvery,
        });
        _concurrency = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = Limit, QueueLimit = 0 });
        _adaptiveFull = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = new AimdLimit(new AimdLimitOptions { InitialLimit = 1, MaxLimit = 1 }),
        });
        _concurrencyFull = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 0 });
        if (!_adaptiveFull.TryAcquire(out _) || !(_heldLease = _concurrencyFull.AttemptAcquire(1)).IsAcquired)
        {
            throw new InvalidOperationException("could not take the one permit of the full limiters");
        }

        _workers = new RoundWorkers(Threads, "adaptive-limiter");
        _runAdaptive = _ => RunAdaptive(Ops / Threads);
        _runConcurrency = _ => RunConcurrency(Ops / Threads);
        _rejectAdaptive = _ => RejectAdaptive(Ops / Threads);
        _rejectConcurrency = _ => RejectConcurrency(Ops / Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _workers.Dispose();
        _heldLease.Dispose();
        _concurrency.Dispose();
        _concurrencyFull.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Admit")]
    public long ConcurrencyLimiter() => Round(_runConcurrency);

    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Admit")]
    public long AdaptiveLimiter() => Round(_runAdaptive);

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Reject")]
    public long ConcurrencyLimiterRejects() => Round(_rejectConcurrency);

    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Reject")]
    public long AdaptiveLimiterRejects() => Round(_rejectAdaptive);

    private long Round(Action<int> work)
    {
        _workers.StartRound(work);
        _workers.WaitRound();
        long failed = Interlocked.Exchange(ref _failed, 0);
        if (failed != 0)
        {
            throw new InvalidOperationException($"{failed} acquires went the wrong way (failed below the limit, or succeeded at it)");
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

    private void RejectAdaptive(int ops)
    {
        AdaptiveConcurrencyLimiter limiter = _adaptiveFull;
        long wrong = 0;
        for (int i = 0; i < ops; i++)
        {
            if (limiter.TryAcquire(out AdaptiveLease lease))
            {
                wrong++;
                lease.Complete(AdaptiveOutcome.Ignore);
            }
        }

        Interlocked.Add(ref _failed, wrong);
    }

    private void RejectConcurrency(int ops)
    {
        ConcurrencyLimiter limiter = _concurrencyFull;
        long wrong = 0;
        for (int i = 0; i < ops; i++)
        {
            using RateLimitLease lease = limiter.AttemptAcquire(1);
            if (lease.IsAcquired)
            {
                wrong++;
            }
        }

        Interlocked.Add(ref _failed, wrong);
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
