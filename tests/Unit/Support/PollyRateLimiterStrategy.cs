using System.Threading.RateLimiting;
using Polly;

namespace LockFree.Tests.Unit.Support;

/// <summary>
/// The shape of Polly's rate-limiter strategy (package Polly.RateLimiting, which the package source here does not
/// serve) on Polly.Core's extension point: acquire a lease from any <see cref="RateLimiter"/>, run the callback when
/// acquired, otherwise fail with <see cref="RateLimitedException"/> carrying the lease's RetryAfter.
/// </summary>
public sealed class PollyRateLimiterStrategy(RateLimiter limiter) : ResilienceStrategy
{
    /// <summary>Adds the strategy to a pipeline.</summary>
    public static ResiliencePipelineBuilder AddTo(ResiliencePipelineBuilder builder, RateLimiter limiter) =>
        builder.AddStrategy(_ => new PollyRateLimiterStrategy(limiter), new Options());

    /// <inheritdoc/>
    protected override async ValueTask<Outcome<TResult>> ExecuteCore<TResult, TState>(
        Func<ResilienceContext, TState, ValueTask<Outcome<TResult>>> callback, ResilienceContext context, TState state)
    {
        using RateLimitLease lease = await limiter.AcquireAsync(1, context.CancellationToken).ConfigureAwait(context.ContinueOnCapturedContext);
        if (!lease.IsAcquired)
        {
            TimeSpan? retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan value) ? value : null;
            return Outcome.FromException<TResult>(new RateLimitedException(retryAfter));
        }

        return await callback(context, state).ConfigureAwait(context.ContinueOnCapturedContext);
    }

    /// <summary>The strategy's (empty) options.</summary>
    public sealed class Options : ResilienceStrategyOptions
    {
    }
}

/// <summary>A pipeline run refused by the rate limiter.</summary>
public sealed class RateLimitedException(TimeSpan? retryAfter) : Exception("Rate limited.")
{
    /// <summary>The lease's RetryAfter, if it had one.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
