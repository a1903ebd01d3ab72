using System.Diagnostics.Metrics;
using LockFree.Diagnostics;

namespace LockFree;

/// <summary>What the metrics read from a named buffer.</summary>
internal interface IBufferMetricsSource
{
    /// <summary>The name the measurements are tagged with.</summary>
    string? Name { get; }

    /// <summary>The capacity.</summary>
    int Capacity { get; }

    /// <summary>A snapshot of the accounting.</summary>
    BackpressureStatistics Statistics { get; }

    /// <summary>The age of the oldest item, when the buffer stamps items; null otherwise.</summary>
    TimeSpan? OldestItemAge { get; }

    /// <summary>Callback exceptions caught so far (ItemDropped, PressureChanged, a wait-time measurement callback); 0 for a source that catches none.</summary>
    long CallbackFailures => 0;

    /// <summary>Clock exceptions caught where no caller could be handed them (a rejection's retry hint, a wait's duration); 0 for a source that catches none.</summary>
    long ClockFailureCount => 0;
}

// Design: every instrument is observable, read by a MeterListener's collection from a registry of live
// named buffers, so a buffer's hot paths never touch the metrics: an unlistened instrument costs nothing,
// and a listened one costs its collection callback only. Buffers are held weakly; a disposed or collected
// buffer drops out. Wait time is the one recorded instrument (a histogram, on the waiting path only).

/// <summary>
/// The library's <see cref="System.Diagnostics.Metrics"/> instruments, under one <see cref="Meter"/> named
/// <c>LockFree</c>. Buffers created with a <see cref="BackpressureBufferOptions{T}.Name"/> report, tagged
/// <c>lockfree.queue.name</c>: <c>lockfree.queue.depth</c>, <c>lockfree.queue.capacity</c>,
/// <c>lockfree.queue.enqueued</c>, <c>lockfree.queue.dequeued</c>, <c>lockfree.queue.dropped</c>,
/// <c>lockfree.queue.evicted</c>, <c>lockfree.queue.rejected</c>, <c>lockfree.queue.callback_failures</c> (exceptions
/// thrown by <see cref="BackpressureBufferOptions{T}.ItemDropped"/> or <see cref="BackpressureBuffer{T}.PressureChanged"/>
/// handlers, or by a <see cref="MeterListener"/>'s measurement callback for <c>lockfree.queue.wait_time</c>; caught and
/// counted, never thrown into the write or read), <c>lockfree.queue.clock_failures</c>, and <c>lockfree.queue.wait_time</c>
/// (seconds a write waited for room), and for buffers created with
/// <see cref="BackpressureBufferOptions{T}.TrackItemAge"/> <c>lockfree.queue.oldest_item_age</c> (seconds the head
/// item has waited).
/// </summary>
public static class BackpressureMetrics
{
    /// <summary>The meter name: <c>LockFree</c>.</summary>
    public const string MeterName = "LockFree";

    /// <summary>The tag that carries the buffer's name.</summary>
    public const string NameTag = "lockfree.queue.name";

    private static readonly Meter Meter = LockFreeMeter.Meter;
    private static readonly MetricsRegistry<IBufferMetricsSource> Sources = new();

    private static readonly Histogram<double> WaitTime = Meter.CreateHistogram<double>(
        "lockfree.queue.wait_time", unit: "s", description: "Time a write waited for room under the Wait policy.");

    static BackpressureMetrics()
    {
        Meter.CreateObservableGauge("lockfree.queue.depth", () => Observe(s => s.Statistics.Remaining), unit: "{item}", description: "Items in the buffer.");
        Meter.CreateObservableGauge("lockfree.queue.capacity", () => Observe(s => s.Capacity), unit: "{item}", description: "Items the buffer holds when full.");
        Meter.CreateObservableCounter("lockfree.queue.enqueued", () => Observe(s => s.Statistics.Enqueued), unit: "{item}", description: "Items that entered the buffer.");
        Meter.CreateObservableCounter("lockfree.queue.dequeued", () => Observe(s => s.Statistics.Dequeued), unit: "{item}", description: "Items read from the buffer.");
        Meter.CreateObservableCounter("lockfree.queue.dropped", () => Observe(s => s.Statistics.DroppedIncoming), unit: "{item}", description: "Incoming items discarded (DropIncoming).");
        Meter.CreateObservableCounter("lockfree.queue.evicted", () => Observe(s => s.Statistics.Evicted), unit: "{item}", description: "Queued items evicted (DropOldest).");
        Meter.CreateObservableCounter("lockfree.queue.rejected", () => Observe(s => s.Statistics.Rejected), unit: "{item}", description: "Writes rejected (full or timed out).");
        Meter.CreateObservableCounter("lockfree.queue.callback_failures", () => Observe(s => s.CallbackFailures), unit: "{exception}", description: "Exceptions thrown by user callbacks: ItemDropped or PressureChanged handlers, and a MeterListener's measurement callback for lockfree.queue.wait_time (caught: never thrown into the write or read).");
        Meter.CreateObservableCounter("lockfree.queue.clock_failures", () => Observe(s => s.ClockFailureCount), unit: "{exception}", description: "Exceptions of the buffer's TimeProvider where no caller could be handed them: a rejection's retry hint (the write still answers Rejected, with no hint), a wait's duration.");
        Meter.CreateObservableGauge("lockfree.queue.oldest_item_age", ObserveOldestItemAge, unit: "s", description: "How long the oldest item has waited (buffers created with TrackItemAge only).");
    }

    internal static void Register(IBufferMetricsSource source) => Sources.Register(source);

    internal static void Unregister(IBufferMetricsSource source) => Sources.Unregister(source);

    internal static void RecordWait(IBufferMetricsSource source, TimeSpan waited)
    {
        if (WaitTime.Enabled && source.Name is { } name)
        {
            WaitTime.Record(waited.TotalSeconds, new KeyValuePair<string, object?>(NameTag, name));
        }
    }

    private static List<Measurement<double>> ObserveOldestItemAge() =>
        Sources.Collect<double>(source => source.OldestItemAge is { } age
            ? new Measurement<double>(age.TotalSeconds, new KeyValuePair<string, object?>(NameTag, source.Name))
            : null,
            combineByMax: true);

    private static List<Measurement<long>> Observe(Func<IBufferMetricsSource, long> read) =>
        Sources.Collect<long>(source => new Measurement<long>(read(source), new KeyValuePair<string, object?>(NameTag, source.Name)));
}
