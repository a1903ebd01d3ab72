using System.Threading.RateLimiting;
using Polly;

namespace LockFree.Benchmarks.Throttling;

/// <summary>
/// Polly's rate-limiter strategy as Polly.RateLimiting builds it (that package is not on the package source here),
/// on Polly.Core's extension point: acquire a lease from the limiter, run the callback when acquired, otherwise
/// return an outcome carrying a rejection exception (as Polly's RateLimiterRejectedException does).
/// </summary>
public sealed class PollyRateLimiterStrategy(RateLimiter limiter) : ResilienceStrategy
{
    private static readonly Exception Rejected = new InvalidOperationException("Rate limited.");

    /// <summary>A pipeline holding just this strategy.</summary>
    public static ResiliencePipeline Pipeline(RateLimiter limiter) =>
        new ResiliencePipelineBuilder().AddStrategy(_ => new PollyRateLimiterStrategy(limiter), new Options()).Build();

    /// <inheritdoc/>
    protected override async ValueTask<Outcome<TResult>> ExecuteCore<TResult, TState>(
        Func<ResilienceContext, TState, ValueTask<Outcome<TResult>>> callback, ResilienceContext context, TState state)
    {
        using RateLimitLease lease = await limiter.AcquireAsync(1, context.CancellationToken).ConfigureAwait(context.ContinueOnCapturedContext);
        if (!lease.IsAcquired)
        {
            // Polly allocates a RateLimiterRejectedException per rejection; a shared one keeps the comparison about the limiter.
            return Outcome.FromException<TResult>(Rejected);
        }

        return await callback(context, state).ConfigureAwait(context.ContinueOnCapturedContext);
    }

    /// <summary>The strategy's (empty) options.</summary>
    public sealed class Options : ResilienceStrategyOptions
    {
    }
}
