using System.Diagnostics.Metrics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The <c>LockFree</c> meter as a <see cref="MeterListener"/> sees it. Other tests create named buffers in
/// parallel, so every measurement is filtered by this test's unique <c>lockfree.queue.name</c>.
/// </summary>
public sealed class BackpressureMetricsTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static string UniqueName() => "metrics-test-" + Guid.NewGuid().ToString("N");

    [Fact]
    public void ObservableInstruments_NamedBuffer_ReportItsStatistics()
    {
        string name = UniqueName();
        using var recorder = new NamedMetricsRecorder(name);
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
        using var recorder = new NamedMetricsRecorder(name);
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

        using var trackedRecorder = new NamedMetricsRecorder(tracked);
        using var untrackedRecorder = new NamedMetricsRecorder(untracked);
        Assert.Equal(4.0, trackedRecorder.Observe()["lockfree.queue.oldest_item_age"], 6);
        Dictionary<string, double> other = untrackedRecorder.Observe();
        Assert.True(other.ContainsKey("lockfree.queue.depth"));
        Assert.False(other.ContainsKey("lockfree.queue.oldest_item_age"));
    }

    [Fact]
    public void ObservableInstruments_DisposedBuffer_StopsReporting()
    {
        string name = UniqueName();
        using var recorder = new NamedMetricsRecorder(name);
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
        using var recorder = new NamedMetricsRecorder(name);
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2 });
        buffer.TryWrite(1);
        Assert.Null(buffer.Name);
        Assert.Empty(recorder.Observe());
    }

    [Fact]
    public async Task WaitTimeHistogram_WriteThatWaited_RecordsOnce()
    {
        string name = UniqueName();
        using var recorder = new NamedMetricsRecorder(name);
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
        using var recorder = new NamedMetricsRecorder(name);
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
