using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;
using Polly;
using Polly.Retry;

namespace LockFree.Benchmarks.Retry;

/// <summary>
/// The cost a retry policy adds to every call that succeeds at once (the common case): one
/// <c>ExecuteAsync</c> of an action that completes synchronously, single thread. <see cref="RetryPolicy"/> without
/// and with a <see cref="RetryBudget"/> (one atomic deposit per call) against a Polly v8 retry pipeline with
/// the same settings (baseline). Per-op = one call; the results are summed and checked. Target: 0 B/op.
/// </summary>
[MemoryDiagnoser]
public class RetryPolicySuccessPathBenchmarks
{
    /// <summary>Calls per invocation.</summary>
    public const int Calls = 1 << 12;

    private static readonly Func<long, CancellationToken, ValueTask<long>> Action = static (value, _) => new ValueTask<long>(value);

    private ResiliencePipeline _polly = null!;
    private RetryPolicy _policy = null!;
    private RetryPolicy _budgeted = null!;

    [GlobalSetup]
    public void Setup()
    {
        _polly = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = 2,
                Delay = TimeSpan.FromMilliseconds(100),
                MaxDelay = TimeSpan.FromSeconds(30),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .Build();
        _policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 3 });
        _budgeted = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 3, Budget = new RetryBudget() });
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Calls)]
    public long Polly()
    {
        long sum = 0;
        for (long value = 1; value <= Calls; value++)
        {
            ValueTask<long> call = _polly.ExecuteAsync(Action, value);
            sum += call.IsCompletedSuccessfully ? call.Result : call.AsTask().GetAwaiter().GetResult();
        }

        return Check(sum);
    }

    [Benchmark(OperationsPerInvoke = Calls)]
    public long RetryPolicy()
    {
        long sum = 0;
        for (long value = 1; value <= Calls; value++)
        {
            ValueTask<long> call = _policy.ExecuteAsync(Action, value);
            sum += call.IsCompletedSuccessfully ? call.Result : call.AsTask().GetAwaiter().GetResult();
        }

        return Check(sum);
    }

    [Benchmark(OperationsPerInvoke = Calls)]
    public long RetryPolicyWithBudget()
    {
        long sum = 0;
        for (long value = 1; value <= Calls; value++)
        {
            ValueTask<long> call = _budgeted.ExecuteAsync(Action, value);
            sum += call.IsCompletedSuccessfully ? call.Result : call.AsTask().GetAwaiter().GetResult();
        }

        return Check(sum);
    }

    private static long Check(long sum)
    {
        Transfer.Check(sum, Transfer.SumOneTo(Calls), "sum of results");
        return sum;
    }
}
