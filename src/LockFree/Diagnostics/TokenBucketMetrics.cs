using System.Diagnostics.Metrics;
using LockFree.Diagnostics;

namespace LockFree;

/// <summary>What the metrics read from a named limiter.</summary>
internal interface ITokenBucketMetricsSource
{
    /// <summary>The name the measurements are tagged with.</summary>
    string? Name { get; }

    /// <summary>The current limit (a bucket's capacity).</summary>
    long Limit { get; }

    /// <summary>Tokens admitted so far.</summary>
    long AdmittedTokens { get; }

    /// <summary>Refused acquires so far.</summary>
    long RefusedCount { get; }
}

// Design: as BackpressureMetrics: observable instruments only, read by a MeterListener's collection from a
// registry of live named limiters held weakly, so acquire paths never touch the metrics. The counts come from
// fields the refill owner keeps anyway (settled tokens, refusals), so they cost the success path nothing.

/// <summary>
/// The token-bucket instruments, under the library's one meter name <c>LockFree</c>. Limiters created with a
/// name report, tagged <c>lockfree.limiter.name</c>: <c>lockfree.limiter.acquired</c> (tokens admitted),
/// <c>lockfree.limiter.rejected</c> (refused acquires) and <c>lockfree.limiter.limit</c> (the current limit).
/// </summary>
public static class TokenBucketMetrics
{
    /// <summary>The meter name: <c>LockFree</c> (the same meter name as <see cref="BackpressureMetrics"/>).</summary>
    public const string MeterName = BackpressureMetrics.MeterName;

    /// <summary>The tag that carries the limiter's name.</summary>
    public const string NameTag = "lockfree.limiter.name";

    private static readonly Meter Meter = LockFreeMeter.Meter;
    private static readonly MetricsRegistry<ITokenBucketMetricsSource> Sources = new();

    static TokenBucketMetrics()
    {
        Meter.CreateObservableCounter("lockfree.limiter.acquired", () => Observe(s => s.AdmittedTokens), unit: "{token}", description: "Tokens admitted.");
        Meter.CreateObservableCounter("lockfree.limiter.rejected", () => Observe(s => s.RefusedCount), unit: "{request}", description: "Acquires refused.");
        Meter.CreateObservableGauge("lockfree.limiter.limit", () => Observe(s => s.Limit), unit: "{token}", description: "The current limit (bucket capacity).");
    }

    internal static void Register(ITokenBucketMetricsSource source) => Sources.Register(source);

    internal static void Unregister(ITokenBucketMetricsSource source) => Sources.Unregister(source);

    private static List<Measurement<long>> Observe(Func<ITokenBucketMetricsSource, long> read) =>
        Sources.Collect<long>(source => new Measurement<long>(read(source), new KeyValuePair<string, object?>(NameTag, source.Name)));
}
