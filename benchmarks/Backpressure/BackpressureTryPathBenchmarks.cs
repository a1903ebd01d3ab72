using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// The non-blocking fast path, single thread: each operation is one <c>TryWrite</c> followed by one
/// <c>TryRead</c> on a buffer of capacity <see cref="Capacity"/> that never holds more than one item, so
/// neither call ever fails and no waiter is ever parked. Per-op = one write+read pair; the sum of the values
/// read is checked. <see cref="BackpressureBuffer{T}"/> (policy Wait: its TryWrite never waits) against a
/// bounded <see cref="Channel"/> with the same options (baseline). Target: 0 B/op for both.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class BackpressureTryPathBenchmarks : FailedTryBenchmark
{
    /// <summary>Write+read pairs per invocation.</summary>
    public const int Pairs = 1 << 16;

    /// <summary>Requested capacity of both buffers.</summary>
    public const int Capacity = 1024;

    private BackpressureBuffer<long> _buffer = null!;
    private ChannelWriter<long> _writer = null!;
    private ChannelReader<long> _reader = null!;

    /// <summary>SingleWriter option of both buffers (ours: picks a single-producer engine).</summary>
    [Params(true, false)]
    public bool SingleWriter { get; set; }

    /// <summary>SingleReader option of both buffers (ours: picks a single-consumer engine).</summary>
    [Params(true, false)]
    public bool SingleReader { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = Capacity,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = SingleWriter,
            SingleReader = SingleReader,
        });
        Channel<long> channel = Channel.CreateBounded<long>(new BoundedChannelOptions(Capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = SingleWriter,
            SingleReader = SingleReader,
            AllowSynchronousContinuations = false,
        });
        _writer = channel.Writer;
        _reader = channel.Reader;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _buffer.Dispose();
        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public long BoundedChannel()
    {
        long sum = 0, failedWrites = 0, failedReads = 0;
        for (long value = 1; value <= Pairs; value++)
        {
            if (!_writer.TryWrite(value))
            {
                failedWrites++;
            }

            if (_reader.TryRead(out long item))
            {
                sum += item;
            }
            else
            {
                failedReads++;
            }
        }

        return Finish(sum, failedWrites, failedReads);
    }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long BackpressureBuffer()
    {
        long sum = 0, failedWrites = 0, failedReads = 0;
        for (long value = 1; value <= Pairs; value++)
        {
            if (_buffer.TryWrite(value).Outcome != WriteOutcome.Accepted)
            {
                failedWrites++;
            }

            if (_buffer.TryRead(out long item))
            {
                sum += item;
            }
            else
            {
                failedReads++;
            }
        }

        return Finish(sum, failedWrites, failedReads);
    }

    private long Finish(long sum, long failedWrites, long failedReads, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        // A write or read can only fail here through a bug: the buffer holds at most one item.
        Transfer.Check(failedWrites + failedReads, 0, "failed TryWrite/TryRead on a nearly empty buffer");
        Transfer.Check(sum, Transfer.SumOneTo(Pairs), "sum read");
        Count(Pairs, failedWrites, failedReads, method);
        return sum;
    }
}
