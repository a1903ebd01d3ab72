using System.Threading.RateLimiting;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Throttling;

/// <summary>
/// A queued <c>AcquireAsync</c>, end to end, as a server sees it: on an empty bucket (one token, queue limit one) the
/// benchmark thread's call queues and it awaits; a second thread (the "granter", standing in for the limiter's timer)
/// replenishes one token once the call is queued, the wait is granted there, and the awaiting code resumes. Ours
/// (<see cref="LockFreeTokenBucketRateLimiter"/>, replenished by advancing a manual clock, which runs its pump's timer
/// callback on the granter) against the BCL <see cref="TokenBucketRateLimiter"/> without auto-replenishment (replenished
/// by <c>TryReplenish</c> on the granter), each with a cancellable caller token, as ASP.NET Core's middleware passes. Ours
/// resumes the awaiting code through its waiter's thread-pool work item; the BCL's completes its request's task on the
/// granter. The bytes: ours allocates nothing per queued wait (session 14: the waiter registers on both tokens instead of a
/// linked token source; session 15: the wait is a pooled operation, not an async method's box); MemoryDiagnoser counts
/// every thread's bytes. Two threads spin-wait on the
/// 2 cores (the granter, the benchmark thread) with pool threads beside them: oversubscribed. Not in the quick job's
/// curated list: run it with <c>--quick --filter '*RateLimiterQueuedAcquire*'</c>.
/// </summary>
[MemoryDiagnoser]
public class RateLimiterQueuedAcquireBenchmarks
{
    /// <summary>Queued acquires per invocation.</summary>
    public const int Ops = 1024;

    private StepClock _clock = null!;
    private LockFreeTokenBucketRateLimiter _ours = null!;
    private TokenBucketRateLimiter _bcl = null!;
    private CancellationTokenSource _cts = null!;
    private RoundWorkers _granter = null!;
    private Action<int> _grantOurs = null!, _grantBcl = null!;
    private int _requested; // calls queued so far in this invocation (the benchmark thread writes, the granter reads)

    [GlobalSetup]
    public void Setup()
    {
        _clock = new StepClock();
        _ours = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 1,
            TokensPerSecond = 1000, // one token per millisecond of the manual clock
            QueueLimit = 1,
            TimeProvider = _clock,
        });
        _bcl = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = 1,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromTicks(1), // its manual TryReplenish is still gated by the period: one tick never holds it back
            QueueLimit = 1,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = false, // each TryReplenish adds one token
        });
        _cts = new CancellationTokenSource();
        _ours.AttemptAcquire().Dispose(); // both start empty
        _bcl.AttemptAcquire().Dispose();
        _granter = new RoundWorkers(1, "granter");
        // Past the pump's timer even if it rounds its due time up; the bucket holds one token at most.
        _grantOurs = _ => Grant(() => _clock.Advance(TimeSpan.FromMilliseconds(2)));
        _grantBcl = _ => Grant(() => _bcl.TryReplenish());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _granter.Dispose();
        _ours.Dispose();
        _bcl.Dispose();
        _cts.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public Task<long> Bcl() => Run(_bcl, _grantBcl);

    [Benchmark(OperationsPerInvoke = Ops)]
    public Task<long> Ours() => Run(_ours, _grantOurs);

    private async Task<long> Run(RateLimiter limiter, Action<int> grant)
    {
        Volatile.Write(ref _requested, 0);
        _granter.StartRound(grant);
        long acquired = 0;
        CancellationToken token = _cts.Token;
        for (int i = 0; i < Ops; i++)
        {
            ValueTask<RateLimitLease> queued = limiter.AcquireAsync(1, token);
            Volatile.Write(ref _requested, i + 1); // release: queued before the granter replenishes
            using RateLimitLease lease = await queued.ConfigureAwait(false);
            acquired += lease.IsAcquired ? 1 : 0;
        }

        _granter.WaitRound();
        return acquired == Ops ? acquired : throw new InvalidOperationException($"{acquired} of {Ops} queued acquires were granted");
    }

    /// <summary>The granter's round: one replenishment per queued call, each once that call is queued.</summary>
    private void Grant(Action replenish)
    {
        var spinner = new SpinWait();
        for (int granted = 0; granted < Ops; granted++)
        {
            while (Volatile.Read(ref _requested) <= granted) // acquire
            {
                if (_granter.IsAborted)
                {
                    return;
                }

                spinner.SpinOnce();
            }

            spinner.Reset();
            replenish();
        }
    }
}
