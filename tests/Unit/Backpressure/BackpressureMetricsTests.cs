using System.Diagnostics.Metrics;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The <c>LockFree</c> meter as a <see cref="MeterListener"/> sees it. Other tests create named buffers in
/// parallel, so every measurement is filtered by this test's unique <c>lockfree.queue.name</c>.
/// </summary>
public sealed class BackpressureMetricsTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>Collects the measurements tagged with one buffer name, by instrument name.</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly string _name;
        private readonly MeterListener _listener = new();
        private readonly object _lock = new();
        private readonly Dictionary<string, List<double>> _values = new();

        public Recorder(string name)
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

        /// <summary>Collects the observable instruments once and returns the latest value of each for this buffer.</summary>
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

        public List<double> Values(string instrument)
        {
            lock (_lock)
            {
                return _values.TryGetValue(instrument, out List<double>? list) ? [.. list] : [];
            }
        }

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

    private static string UniqueName() => "metrics-test-" + Guid.NewGuid().ToString("N");

    [Fact]
    public void ObservableInstruments_NamedBuffer_ReportItsStatistics()
    {
        string name = UniqueName();
        using var recorder = new Recorder(name);
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 3, FullMode = OverflowPolicy.Reject, Name = name });

        for (int i = 0; i < 4; i++)
        {
            buffer.TryWrite(i); // 4 accepted (capacity rounds to 4)
        }

        buffer.TryWrite(4); // rejected
        buffer.TryWrite(5, OverflowPolicy.DropIncoming); // dropped
        buffer.TryWrite(6, OverflowPolicy.DropOldest); // evicts 0
        buffer.TryWrite(7, OverflowPolicy.DropOldest); // evicts 1
        Assert.True(buffer.TryRead(out _)); // dequeued 1

        Dictionary<string, double> seen = recorder.Observe();

        Assert.Equal(4, seen["lockfree.queue.capacity"]);
        Assert.Equal(3, seen["lockfree.queue.depth"]);
        Assert.Equal(6, seen["lockfree.queue.enqueued"]);
        Assert.Equal(1, seen["lockfree.queue.dequeued"]);
        Assert.Equal(1, seen["lockfree.queue.dropped"]);
        Assert.Equal(2, seen["lockfree.queue.evicted"]);
        Assert.Equal(1, seen["lockfree.queue.rejected"]);
        Assert.Equal(0, seen["lockfree.queue.clock_failures"]);
    }

    [Fact]
    public void ClockFailures_RetryHintReadingThrows_CountedInTheMetric()
    {
        // A rejection's retry hint whose clock reading throws: the write answers Rejected (no hint) and the failure shows in
        // lockfree.queue.clock_failures (BackpressureRetryHintClockFailureTests covers the write's side).
        string name = UniqueName();
        using var recorder = new Recorder(name);
        var clock = new LockFree.Tests.Unit.Support.FailingReadingClock(new LockFree.Tests.Unit.Support.ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Reject, Name = name, TimeProvider = clock });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));

        clock.FailReading(1); // the hint's reading (a rejection reads nothing else)
        Assert.Equal(WriteOutcome.Rejected, buffer.TryWrite(2).Outcome);

        Dictionary<string, double> seen = recorder.Observe();
        Assert.Equal(1, seen["lockfree.queue.clock_failures"]);
        Assert.Equal(1, seen["lockfree.queue.rejected"]);
    }

    [Fact]
    public void OldestItemAgeGauge_ReportsOnlyForTrackingBuffers()
    {
        string tracked = UniqueName();
        string untracked = UniqueName();
        var time = new LockFree.Tests.Unit.Support.ManualTimeProvider();
        using var withAge = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4, Name = tracked, TrackItemAge = true, TimeProvider = time });
        using var withoutAge = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4, Name = untracked });
        withAge.TryWrite(1);
        withoutAge.TryWrite(1);
        time.Advance(TimeSpan.FromSeconds(4));

        using var trackedRecorder = new Recorder(tracked);
        using var untrackedRecorder = new Recorder(untracked);
        Assert.Equal(4.0, trackedRecorder.Observe()["lockfree.queue.oldest_item_age"], 6);
        Dictionary<string, double> other = untrackedRecorder.Observe();
        Assert.True(other.ContainsKey("lockfree.queue.depth"));
        Assert.False(other.ContainsKey("lockfree.queue.oldest_item_age"));
    }

    [Fact]
    public void ObservableInstruments_DisposedBuffer_StopsReporting()
    {
        string name = UniqueName();
        using var recorder = new Recorder(name);
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2, Name = name });
        buffer.TryWrite(1);
        Assert.Equal(1, recorder.Observe()["lockfree.queue.depth"]);

        buffer.Dispose();

        Assert.Empty(recorder.Observe());
    }

    [Fact]
    public void ObservableInstruments_UnnamedBuffer_IsNotReported()
    {
        string name = UniqueName();
        using var recorder = new Recorder(name);
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2 });
        buffer.TryWrite(1);
        Assert.Null(buffer.Name);
        Assert.Empty(recorder.Observe());
    }

    [Fact]
    public async Task WaitTimeHistogram_WriteThatWaited_RecordsOnce()
    {
        string name = UniqueName();
        using var recorder = new Recorder(name);
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, Name = name });
        buffer.TryWrite(0);
        Assert.Empty(recorder.Values("lockfree.queue.wait_time")); // a write that did not wait records nothing

        ValueTask<WriteResult> pending = buffer.WriteAsync(1);
        await Task.Delay(50);
        Assert.True(buffer.TryRead(out _));
        Assert.Equal(WriteResult.Accepted, await pending.AsTask().WaitAsync(Generous));

        List<double> waits = recorder.Values("lockfree.queue.wait_time");
        Assert.Single(waits);
        Assert.True(waits[0] >= 0, $"negative wait {waits[0]}");
    }

    [Fact]
    public async Task WaitTimeHistogram_SyncWriteThatWaited_Records()
    {
        string name = UniqueName();
        using var recorder = new Recorder(name);
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, Name = name });
        buffer.TryWrite(0);

        Task<WriteResult> pending = Task.Factory.StartNew(() => buffer.Write(1, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        await Task.Delay(200); // long enough that the writer has almost surely parked; the assertion below tolerates if not
        Assert.True(buffer.TryRead(out _));
        Assert.Equal(WriteResult.Accepted, await pending.WaitAsync(Generous));

        List<double> waits = recorder.Values("lockfree.queue.wait_time");
        Assert.True(waits.Count <= 1, $"{waits.Count} recordings for one write");
        Assert.All(waits, w => Assert.True(w >= 0));
    }
}
