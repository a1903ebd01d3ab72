using System.Diagnostics.Metrics;
using LockFree.Diagnostics;

namespace LockFree;

/// <summary>What the metrics read from a named adaptive limiter.</summary>
internal interface IAdaptiveLimiterMetricsSource
{
    string? Name { get; }

    int Limit { get; }

    long InFlight { get; }

    long Acquired { get; }

    long Rejected { get; }
}

// Design: as BackpressureMetrics: observable instruments only, read from a registry of live named limiters held
// weakly, so TryAcquire/Complete never touch the metrics. Same meter name ("LockFree"); a Meter instance of its
// own so this file does not depend on the buffers' registry.

/// <summary>
/// Instruments of <see cref="AdaptiveConcurrencyLimiter"/>s created with a
/// <see cref="AdaptiveConcurrencyLimiterOptions.Name"/>, on the meter named <c>LockFree</c>, tagged
/// <c>lockfree.adaptive.name</c>: <c>lockfree.adaptive.limit</c> and <c>lockfree.adaptive.in_flight</c>
/// (gauges), <c>lockfree.adaptive.acquired</c> and <c>lockfree.adaptive.rejected</c> (counters).
/// </summary>
public static class AdaptiveLimitMetrics
{
    /// <summary>The meter name: <c>LockFree</c>.</summary>
    public const string MeterName = BackpressureMetrics.MeterName;

    /// <summary>The tag that carries the limiter's name.</summary>
    public const string NameTag = "lockfree.adaptive.name";

    private static readonly Meter Meter = LockFreeMeter.Meter;
    private static readonly MetricsRegistry<IAdaptiveLimiterMetricsSource> Sources = new();

    static AdaptiveLimitMetrics()
    {
        Meter.CreateObservableGauge("lockfree.adaptive.limit", () => Observe(s => s.Limit), unit: "{request}", description: "Current concurrency limit.");
        Meter.CreateObservableGauge("lockfree.adaptive.in_flight", () => Observe(s => s.InFlight), unit: "{request}", description: "Requests admitted and not completed.");
        Meter.CreateObservableCounter("lockfree.adaptive.acquired", () => Observe(s => s.Acquired), unit: "{request}", description: "Requests admitted.");
        Meter.CreateObservableCounter("lockfree.adaptive.rejected", () => Observe(s => s.Rejected), unit: "{request}", description: "Requests refused at the limit.");
    }

    internal static void Register(IAdaptiveLimiterMetricsSource source) => Sources.Register(source);

    private static List<Measurement<long>> Observe(Func<IAdaptiveLimiterMetricsSource, long> read) =>
        Sources.Collect<long>(source => new Measurement<long>(read(source), new KeyValuePair<string, object?>(NameTag, source.Name)));
}
