using System.Threading.RateLimiting;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;
using Polly;
using Polly.RateLimiting;

namespace LockFree.Benchmarks.Throttling;

/// <summary>
/// Token-bucket acquires on 1 and 2 threads (the work split between them; per-op = wall time / total acquires):
/// <c>Success</c> on a bucket that never runs dry, <c>Rejection</c> on one that is empty. Ours
/// (<see cref="TokenBucket.TryAcquire(int, out TimeSpan)"/> and the <see cref="LockFreeTokenBucketRateLimiter"/>
/// adapter's AttemptAcquire) against the BCL <see cref="TokenBucketRateLimiter"/>.AttemptAcquire (baseline),
/// <see cref="ConcurrencyLimiter"/> (acquire + release), and Polly's own rate-limiter strategy (Polly.RateLimiting's
/// <c>AddRateLimiter</c>) over the BCL bucket and over our adapter. Each invocation checks every acquire succeeded (or
/// failed). Target: ours >= 3x the baseline, 0 B/op.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class TokenBucketAcquireBenchmarks
{
    /// <summary>Acquires per invocation, over all threads.</summary>
    public const int Ops = 1 << 16;

    /// <summary>
    /// Acquires per invocation for Polly's rejections: Polly builds a <c>RateLimiterRejectedException</c> with a
    /// captured stack trace per rejection (tens of microseconds), so the full count would take minutes.
    /// </summary>
    public const int PollyRejectionOps = 1 << 9;

    private const int Stride = 16; // longs between per-thread tallies: 128 bytes

    private long[] _tallies = null!; // one per thread, Stride apart (sized in Setup)
    private RoundWorkers? _workers;
    private int _ops = Ops; // acquires per invocation of the running case (all threads)
    private TokenBucket _bucket = null!;
    private LockFreeTokenBucketRateLimiter _adapter = null!;
    private TokenBucketRateLimiter _bcl = null!;
    private ConcurrencyLimiter _concurrency = null!;
    private ResiliencePipeline _polly = null!, _pollyOurs = null!;
    private Action<int> _ours = null!, _oursAdapter = null!, _bclWork = null!, _concurrencyWork = null!, _pollyWork = null!, _pollyOursWork = null!;

    /// <summary>Threads acquiring at once.</summary>
    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; } = 1;

    /// <summary>The <see cref="Threads"/> values this machine runs: 1, 2, and 4, 8 or 16 where that many threads fit the cores.</summary>
    public static IEnumerable<int> ThreadCounts => new[] { 1, 2, 4, 8, 16 }.Where(n => n <= 2 || n <= Environment.ProcessorCount);

    [GlobalSetup(Targets = [nameof(SuccessBcl), nameof(SuccessOurs), nameof(SuccessOursAdapter), nameof(SuccessConcurrencyLimiter), nameof(SuccessPolly), nameof(SuccessPollyOurs)])]
    public void SetupSuccess() => Setup(success: true);

    [GlobalSetup(Targets = [nameof(RejectionBcl), nameof(RejectionOurs), nameof(RejectionOursAdapter), nameof(RejectionConcurrencyLimiter), nameof(RejectionPolly), nameof(RejectionPollyOurs)])]
    public void SetupRejection() => Setup(success: false);

    [GlobalCleanup]
    public void Cleanup()
    {
        _workers?.Dispose();
        _adapter.Dispose();
        _bcl.Dispose();
        _concurrency.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops), BenchmarkCategory("Success")]
    public long SuccessBcl() => Run(_bclWork, expectSuccess: true);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Success")]
    public long SuccessOurs() => Run(_ours, expectSuccess: true);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Success")]
    public long SuccessOursAdapter() => Run(_oursAdapter, expectSuccess: true);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Success")]
    public long SuccessConcurrencyLimiter() => Run(_concurrencyWork, expectSuccess: true);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Success")]
    public long SuccessPolly() => Run(_pollyWork, expectSuccess: true);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Success")]
    public long SuccessPollyOurs() => Run(_pollyOursWork, expectSuccess: true);

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops), BenchmarkCategory("Rejection")]
    public long RejectionBcl() => Run(_bclWork, expectSuccess: false);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Rejection")]
    public long RejectionOurs() => Run(_ours, expectSuccess: false);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Rejection")]
    public long RejectionOursAdapter() => Run(_oursAdapter, expectSuccess: false);

    [Benchmark(OperationsPerInvoke = Ops), BenchmarkCategory("Rejection")]
    public long RejectionConcurrencyLimiter() => Run(_concurrencyWork, expectSuccess: false);

    [Benchmark(OperationsPerInvoke = PollyRejectionOps), BenchmarkCategory("Rejection")]
    public long RejectionPolly() => Run(_pollyWork, expectSuccess: false, PollyRejectionOps);

    [Benchmark(OperationsPerInvoke = PollyRejectionOps), BenchmarkCategory("Rejection")]
    public long RejectionPollyOurs() => Run(_pollyOursWork, expectSuccess: false, PollyRejectionOps);

    private void Setup(bool success)
    {
        long capacity = success ? (1L << 40) - 1 : 1;
        double rate = success ? 1e9 : 1e-6;
        _bucket = new TokenBucket(capacity, rate);
        _adapter = new LockFreeTokenBucketRateLimiter(new TokenBucket(capacity, rate));
        _bcl = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = success ? int.MaxValue : 1,
            TokensPerPeriod = success ? int.MaxValue : 1,
            ReplenishmentPeriod = success ? TimeSpan.FromMilliseconds(1) : TimeSpan.FromDays(1),
            AutoReplenishment = true,
            QueueLimit = 0,
        });
        _concurrency = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = success ? int.MaxValue : 1, QueueLimit = 0 });
        _polly = new ResiliencePipelineBuilder().AddRateLimiter(_bcl).Build();
        _pollyOurs = new ResiliencePipelineBuilder().AddRateLimiter(_adapter).Build();
        if (!success)
        {
            // Drain each to empty (the concurrency limiter's one permit stays held).
            _bucket.TryAcquire();
            _adapter.AttemptAcquire();
            _bcl.AttemptAcquire();
            _concurrency.AttemptAcquire();
        }

        _ours = w => Tally(w, static (b, n) => { long ok = 0; for (int i = 0; i < n; i++) { ok += b._bucket.TryAcquire(1, out _) ? 1 : 0; } return ok; });
        _oursAdapter = w => Tally(w, static (b, n) => { long ok = 0; for (int i = 0; i < n; i++) { ok += b._adapter.AttemptAcquire().IsAcquired ? 1 : 0; } return ok; });
        _bclWork = w => Tally(w, static (b, n) => { long ok = 0; for (int i = 0; i < n; i++) { ok += b._bcl.AttemptAcquire().IsAcquired ? 1 : 0; } return ok; });
        _concurrencyWork = w => Tally(w, static (b, n) =>
        {
            long ok = 0;
            for (int i = 0; i < n; i++)
            {
                using RateLimitLease lease = b._concurrency.AttemptAcquire();
                ok += lease.IsAcquired ? 1 : 0;
            }

            return ok;
        });
        _pollyWork = w => Tally(w, static (b, n) => PollyLoop(b._polly, n));
        _pollyOursWork = w => Tally(w, static (b, n) => PollyLoop(b._pollyOurs, n));
        _workers?.Dispose();
        _workers = new RoundWorkers(Threads, "acquire");
        _tallies = new long[(Threads + 1) * Stride];
    }

    private static long PollyLoop(ResiliencePipeline pipeline, int n)
    {
        long ok = 0;
        for (int i = 0; i < n; i++)
        {
            ResilienceContext context = ResilienceContextPool.Shared.Get();
            Outcome<int> outcome = pipeline.ExecuteOutcomeAsync(static (_, _) => Outcome.FromResultAsValueTask(1), context, 0).GetAwaiter().GetResult();
            ResilienceContextPool.Shared.Return(context);
            ok += outcome.Exception is null ? 1 : 0;
        }

        return ok;
    }

    private void Tally(int worker, Func<TokenBucketAcquireBenchmarks, int, long> loop) =>
        _tallies[worker * Stride] = loop(this, _ops / Threads);

    private long Run(Action<int> work, bool expectSuccess, int ops = Ops)
    {
        _ops = ops;
        _workers!.StartRound(work);
        _workers.WaitRound();
        long ok = 0;
        for (int w = 0; w < Threads; w++)
        {
            ok += _tallies[w * Stride];
        }

        Transfer.Check(ok, expectSuccess ? ops / Threads * Threads : 0, expectSuccess ? "successful acquires" : "acquires on an empty limiter");
        return ok;
    }
}
