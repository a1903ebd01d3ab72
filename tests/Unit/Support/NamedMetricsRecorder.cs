using System.Diagnostics.Metrics;

namespace LockFree.Tests.Unit.Support;

/// <summary>
/// Collects the measurements of the <c>LockFree</c> meter tagged with one source name (<c>lockfree.queue.name</c>), by
/// instrument name. Other tests create named sources in parallel, so a test gives its sources a unique name.
/// </summary>
public sealed class NamedMetricsRecorder : IDisposable
{
    private readonly string _name;
    private readonly MeterListener _listener = new();
    private readonly object _lock = new();
    private readonly Dictionary<string, List<double>> _values = new();

    /// <summary>Starts listening for the measurements tagged with <paramref name="name"/>.</summary>
    public NamedMetricsRecorder(string name)
    {
        _name = name;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>Collects the observable instruments once and returns the latest value of each for this name (none: the name reports nothing).</summary>
    public Dictionary<string, double> Observe()
    {
        lock (_lock)
        {
            _values.Clear();
        }

        _listener.RecordObservableInstruments();
        lock (_lock)
        {
            return _values.ToDictionary(kv => kv.Key, kv => kv.Value[^1]);
        }
    }

    /// <summary>Every value <paramref name="instrument"/> reported for this name since the last <see cref="Observe"/> began.</summary>
    public List<double> Values(string instrument)
    {
        lock (_lock)
        {
            return _values.TryGetValue(instrument, out List<double>? list) ? [.. list] : [];
        }
    }

    /// <summary>Stops listening.</summary>
    public void Dispose() => _listener.Dispose();

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            if (tag.Key == BackpressureMetrics.NameTag && Equals(tag.Value, _name))
            {
                lock (_lock)
                {
                    if (!_values.TryGetValue(instrument.Name, out List<double>? list))
                    {
                        _values[instrument.Name] = list = new List<double>();
                    }

                    list.Add(value);
                }
            }
        }
    }
}
