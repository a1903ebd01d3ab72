using System.Diagnostics.Metrics;
using LockFree.Diagnostics;

namespace LockFree;

/// <summary>What the metrics read from a named dead-letter queue.</summary>
internal interface IDeadLetterMetricsSource
{
    /// <summary>The name the measurements are tagged with.</summary>
    string? Name { get; }

    /// <summary>A snapshot of the accounting.</summary>
    DeadLetterStatistics GetStatistics();
}

// Design: as BackpressureMetrics (observable instruments read from a weak registry of live named queues, so the
// queues' paths never touch the metrics), on the library's one meter. The dead-letter rate is the rate of
// lockfree.deadletter.added, computed by the metrics backend from the counter.
internal static class DeadLetterMetrics
{
    private static readonly Meter Meter = LockFreeMeter.Meter;
    private static readonly MetricsRegistry<IDeadLetterMetricsSource> Sources = new();

    static DeadLetterMetrics()
    {
        Meter.CreateObservableGauge("lockfree.deadletter.count", () => Observe(s => s.Count), unit: "{message}", description: "Dead letters held.");
        Meter.CreateObservableGauge("lockfree.deadletter.oldest_age", () => ObserveDouble(s => s.OldestAge.TotalSeconds), unit: "s", description: "Age of the oldest held dead letter.");
        Meter.CreateObservableCounter("lockfree.deadletter.added", () => Observe(s => s.Added), unit: "{message}", description: "Dead letters added (its rate is the dead-letter rate).");
        Meter.CreateObservableCounter("lockfree.deadletter.replayed", () => Observe(s => s.Replayed), unit: "{message}", description: "Dead letters replayed into a target.");
        Meter.CreateObservableCounter("lockfree.deadletter.lost", () => Observe(s => s.Evicted + s.DroppedIncoming + s.Rejected), unit: "{message}", description: "Dead letters evicted, dropped or rejected for lack of room.");
    }

    internal static void Register(IDeadLetterMetricsSource source) => Sources.Register(source);

    internal static void Unregister(IDeadLetterMetricsSource source) => Sources.Unregister(source);

    private static List<Measurement<long>> Observe(Func<DeadLetterStatistics, long> read) =>
        Sources.Collect<long>(s => new Measurement<long>(read(s.GetStatistics()), new KeyValuePair<string, object?>(BackpressureMetrics.NameTag, s.Name)));

    private static List<Measurement<double>> ObserveDouble(Func<DeadLetterStatistics, double> read) =>
        Sources.Collect<double>(s => new Measurement<double>(read(s.GetStatistics()), new KeyValuePair<string, object?>(BackpressureMetrics.NameTag, s.Name)), combineByMax: true);
}
