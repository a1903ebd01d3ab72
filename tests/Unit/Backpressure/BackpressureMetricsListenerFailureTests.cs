using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A <see cref="MeterListener"/> whose measurement callback throws on the wait-time histogram (the one instrument a
/// write records into, after the write happened) never turns a write that waited into an exception: the write answers its
/// true outcome and the exception is counted (<c>CallbackFailures</c>, the <c>lockfree.queue.callback_failures</c> metric)
/// and handed to <c>CallbackFailed</c>. Before (review s13), the listener's exception left the write after its item was
/// accepted: the parked <c>WriteAsync</c> faulted (the channel adapter's too) and the blocking <c>Write</c> threw, so a
/// caller that retried on the exception wrote twice.
/// The listener throws only for this test's buffer name (other tests record wait times in parallel).
/// </summary>
public sealed class BackpressureMetricsListenerFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>Listens to the wait-time histogram and throws for one buffer name.</summary>
    private sealed class ThrowingListener : IDisposable
    {
        private readonly MeterListener _listener = new();
        private int _thrown;

        public ThrowingListener(string name)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == BackpressureMetrics.MeterName && instrument.Name == "lockfree.queue.wait_time")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((_, _, tags, _) =>
            {
                foreach (KeyValuePair<string, object?> tag in tags)
                {
                    if (tag.Key == BackpressureMetrics.NameTag && Equals(tag.Value, name))
                    {
                        Interlocked.Increment(ref _thrown);
                        throw new InvalidTimeZoneException("listener failed");
                    }
                }
            });
            _listener.Start();
        }

        public int Thrown => Volatile.Read(ref _thrown);

        public void Dispose() => _listener.Dispose();
    }

    private static string UniqueName() => "listener-failure-" + Guid.NewGuid().ToString("N");

    /// <summary>Collects <c>lockfree.queue.callback_failures</c> once: this buffer's value, and the instrument's description.</summary>
    private static (long Value, string? Description) ObserveCallbackFailures(string name)
    {
        long value = -1;
        string? description = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName && instrument.Name == "lockfree.queue.callback_failures")
            {
                description = instrument.Description;
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, measured, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == BackpressureMetrics.NameTag && Equals(tag.Value, name))
                {
                    value = measured;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments(); // on this thread: the callback has run when it returns
        return (value, description);
    }

    [Theory]
    [InlineData("WriteAsync")]
    [InlineData("Write")]
    public async Task WriteThatWaited_ListenerThrows_AnswersAcceptedAndReportsIt(string path)
    {
        string name = UniqueName();
        using var listener = new ThrowingListener(name);
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait, Name = name });
        var reported = new List<Exception>();
        buffer.CallbackFailed += (_, error) =>
        {
            lock (reported)
            {
                reported.Add(error);
            }
        };
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));

        Task<WriteResult> write = path == "WriteAsync"
            ? buffer.WriteAsync(1).AsTask()
            : Task.Factory.StartNew(() => buffer.Write(1, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => buffer.ReadsAskWriters, Generous), "the writer never linked a waiter");
        Assert.False(write.IsCompleted);
        Assert.True(buffer.TryRead(out int first));
        Assert.Equal(0, first);

        Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Generous));
        Assert.True(buffer.TryRead(out int second));
        Assert.Equal(1, second); // written once
        Assert.Equal(1, listener.Thrown);
        Assert.Equal(1, buffer.CallbackFailures);
        Assert.IsType<InvalidTimeZoneException>(Assert.Single(reported));

        // The metric counts it too, and its description says so (before session 14 it named only the two handlers).
        (long metric, string? description) = ObserveCallbackFailures(name);
        Assert.Equal(1, metric);
        Assert.Contains("lockfree.queue.wait_time", description);
    }

    [Fact]
    public async Task ChannelWriteThatWaited_ListenerThrows_Succeeds()
    {
        string name = UniqueName();
        using var listener = new ThrowingListener(name);
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, FullMode = OverflowPolicy.Wait, Name = name });
        Assert.True(channel.Writer.TryWrite(0));
        ValueTask write = channel.Writer.WriteAsync(1);
        Assert.False(write.IsCompleted);
        Assert.True(channel.Reader.TryRead(out int first));
        Assert.Equal(0, first);

        await write.AsTask().WaitAsync(Generous); // threw the listener's exception before
        Assert.True(channel.Reader.TryRead(out int second));
        Assert.Equal(1, second);
        Assert.Equal(1, listener.Thrown);
    }
}
