using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Polly;
using Polly.RateLimiting;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// The library's <see cref="RateLimiter"/> adapters inside Polly's own rate-limiter strategy (Polly.RateLimiting's
/// <c>AddRateLimiter</c>), not a stand-in: admissions run the callback, a refusal surfaces as Polly's
/// <see cref="RateLimiterRejectedException"/> carrying the bucket's retry hint, and a queued adapter waits in Polly.
/// </summary>
public sealed class PollyRateLimiterTests
{
    [Fact]
    public async Task AddRateLimiter_TokenBucketAdapter_RunsThenRejectsWithRetryAfter()
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 2, TokensPerSecond = 1, TimeProvider = time });
        ResiliencePipeline pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter).Build();
        int runs = 0;

        await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.CompletedTask; });
        await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.CompletedTask; });
        var rejected = await Assert.ThrowsAsync<RateLimiterRejectedException>(
            async () => await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.CompletedTask; }));

        Assert.Equal(2, runs);
        Assert.Equal(TimeSpan.FromSeconds(1), rejected.RetryAfter);

        time.Advance(TimeSpan.FromSeconds(1));
        await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.CompletedTask; });
        Assert.Equal(3, runs);
    }

    [Fact]
    public async Task AddRateLimiter_Outcome_RejectionIsAnOutcomeNotAThrow()
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 1, TokensPerSecond = 0.5, TimeProvider = time });
        ResiliencePipeline pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter).Build();
        ResilienceContext context = ResilienceContextPool.Shared.Get();
        try
        {
            Outcome<int> first = await pipeline.ExecuteOutcomeAsync(static (_, _) => Outcome.FromResultAsValueTask(7), context, 0);
            Outcome<int> second = await pipeline.ExecuteOutcomeAsync(static (_, _) => Outcome.FromResultAsValueTask(7), context, 0);

            Assert.Equal(7, first.Result);
            var rejected = Assert.IsType<RateLimiterRejectedException>(second.Exception);
            Assert.Equal(TimeSpan.FromSeconds(2), rejected.RetryAfter);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    [Fact]
    public async Task AddRateLimiter_QueuedAdapter_WaitsForTheRefill()
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 1, TokensPerSecond = 1, QueueLimit = 1, TimeProvider = time });
        ResiliencePipeline pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter).Build();
        await pipeline.ExecuteAsync(_ => ValueTask.CompletedTask);

        bool ran = false;
        ValueTask waiting = pipeline.ExecuteAsync(_ => { ran = true; return ValueTask.CompletedTask; });
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(ran);
    }

    [Fact]
    public async Task AddRateLimiter_KeyedAdapterPartition_RejectsOneKeyOnly()
    {
        var time = new ManualTimeProvider();
        var buckets = new KeyedTokenBucket<string>(1, 1, maxKeys: 10, time);
        using var keyed = new LockFreeKeyedRateLimiter<string, string>(buckets, user => user);
        ResiliencePipeline Pipeline(string user) => new ResiliencePipelineBuilder()
            .AddRateLimiter(new RateLimiterStrategyOptions
            {
                RateLimiter = args => keyed.AcquireAsync(user, 1, args.Context.CancellationToken),
            })
            .Build();

        await Pipeline("ann").ExecuteAsync(_ => ValueTask.CompletedTask);
        await Assert.ThrowsAsync<RateLimiterRejectedException>(async () => await Pipeline("ann").ExecuteAsync(_ => ValueTask.CompletedTask));
        await Pipeline("bob").ExecuteAsync(_ => ValueTask.CompletedTask);
    }
}
