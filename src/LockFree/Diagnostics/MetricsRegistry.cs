using System.Diagnostics.Metrics;
using System.Numerics;
using LockFree.Internal;

namespace LockFree.Diagnostics;

/// <summary>The one <see cref="Meter"/> every LockFree instrument belongs to.</summary>
internal static class LockFreeMeter
{
    /// <summary>The meter named <c>LockFree</c> (<see cref="BackpressureMetrics.MeterName"/>).</summary>
    public static readonly Meter Meter = new(BackpressureMetrics.MeterName);

    private static long s_failedObservations;

    static LockFreeMeter()
    {
        Meter.CreateObservableCounter(
            "lockfree.metrics.failed_observations",
            () => Interlocked.Read(ref s_failedObservations),
            unit: "{observation}",
            description: "Reads of a named primitive that threw during a collection (a failing user clock, say); that primitive's measurement was left out, the others were reported.");
    }

    /// <summary>Failed reads so far (tests).</summary>
    internal static long FailedObservations => Interlocked.Read(ref s_failedObservations);

    /// <summary>Counts one source whose read threw during a collection.</summary>
    internal static void RecordFailedObservation() => Interlocked.Increment(ref s_failedObservations);
}

// Design: the registry behind every observable instrument of the library. Primitives that have a name register
// themselves; a MeterListener's collection walks the live ones under a lock and reads each (a snapshot of its
// counters), so the primitives' hot paths never touch the metrics: an unlistened instrument costs nothing. Sources
// are held weakly: one that is disposed (it unregisters) or collected drops out, at the next collection or, with no
// listener collecting, at a later registration (so the registry stays within twice the live sources). Each source
// is read in isolation: one whose read throws (its user-supplied clock failed, say) is counted
// (lockfree.metrics.failed_observations) and left out of that collection, and the others are still reported; before,
// the exception ended the instrument's whole callback and every source's measurement of it was lost.

/// <summary>A weak registry of live metrics sources of one kind, and the collection of one instrument's measurements over them.</summary>
/// <typeparam name="TSource">The kind of source (a buffer, a scheduler, a limiter, ...).</typeparam>
internal sealed class MetricsRegistry<TSource>
    where TSource : class
{
    /// <summary>Entries before a registration prunes the dead ones.</summary>
    private const int MinPruneAt = 64;

    private readonly List<WeakReference<TSource>> _sources = new();

    // Under the lock: the entry count at which the next registration first drops the collected sources. Without it a
    // process that creates named sources and lets them go undisposed (a limiter per tenant, say) while no listener
    // collects kept one WeakReference per source ever created. Twice the live count after a prune: amortised O(1).
    private int _pruneAt = MinPruneAt;

    public void Register(TSource source)
    {
        using (InterruptDeferral.Lock(_sources))
        {
            if (_sources.Count >= _pruneAt)
            {
                _sources.RemoveAll(w => !w.TryGetTarget(out _));
                _pruneAt = Math.Max(MinPruneAt, 2 * _sources.Count);
            }

            _sources.Add(new WeakReference<TSource>(source));
        }
    }

    public void Unregister(TSource source)
    {
        using (InterruptDeferral.Lock(_sources))
        {
            _sources.RemoveAll(w => !w.TryGetTarget(out TSource? s) || ReferenceEquals(s, source));
        }
    }

    /// <summary>Entries held now, live or dead (tests).</summary>
    internal int Entries
    {
        get
        {
            using (InterruptDeferral.Lock(_sources))
            {
                return _sources.Count;
            }
        }
    }

    /// <summary>
    /// One measurement per live source for which <paramref name="measure"/> gives one (null: this source reports
    /// nothing), except that sources whose measurements carry the same single tag (several objects given the same
    /// name) report one combined measurement: the sum, or with <paramref name="combineByMax"/> the largest (ages,
    /// lateness). Two measurements with equal tags would be one series to a backend keyed by tags, which keeps only
    /// one of them. A source whose <paramref name="measure"/> throws is left out and counted
    /// (<see cref="LockFreeMeter.FailedObservations"/>); the exception never reaches the listener.
    /// </summary>
    public List<Measurement<T>> Collect<T>(Func<TSource, Measurement<T>?> measure, bool combineByMax = false)
        where T : struct, INumber<T>
    {
        var measurements = new List<Measurement<T>>();
        Dictionary<(string Key, object Value), int>? byTag = null;
        using (InterruptDeferral.Lock(_sources))
        {
            _sources.RemoveAll(w => !w.TryGetTarget(out _));
            foreach (WeakReference<TSource> weak in _sources)
            {
                if (!weak.TryGetTarget(out TSource? source))
                {
                    continue;
                }

                Measurement<T>? measurement;
                try
                {
                    measurement = measure(source);
                }
                catch (Exception)
                {
                    LockFreeMeter.RecordFailedObservation(); // this source only: the others' series must not vanish with it
                    continue;
                }

                if (measurement is { } value)
                {
                    Add(measurements, ref byTag, value, combineByMax);
                }
            }
        }

        return measurements;
    }

    private static void Add<T>(List<Measurement<T>> measurements, ref Dictionary<(string Key, object Value), int>? byTag, Measurement<T> measurement, bool combineByMax)
        where T : struct, INumber<T>
    {
        ReadOnlySpan<KeyValuePair<string, object?>> tags = measurement.Tags;
        if (tags.Length != 1 || tags[0].Value is not { } value)
        {
            measurements.Add(measurement);
            return;
        }

        byTag ??= new Dictionary<(string Key, object Value), int>();
        if (byTag.TryGetValue((tags[0].Key, value), out int at))
        {
            T earlier = measurements[at].Value;
            T combined = combineByMax ? T.Max(earlier, measurement.Value) : earlier + measurement.Value;
            measurements[at] = new Measurement<T>(combined, tags);
            return;
        }

        byTag.Add((tags[0].Key, value), measurements.Count);
        measurements.Add(measurement);
    }
}
