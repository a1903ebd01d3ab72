using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// The non-blocking fast path, single thread: each operation is one <c>TryWrite</c> followed by one
/// <c>TryRead</c> on a buffer of capacity <see cref="Capacity"/> that never holds more than one item, so
/// neither call ever fails and no waiter is ever parked. Per-op = one write+read pair; the sum of the values
/// read is checked. <see cref="BackpressureBuffer{T}"/> (policy Wait: its TryWrite never waits) against a
/// bounded <see cref="Channel"/> with the same options (baseline). Target: 0 B/op for both; ours at most 0.1 of the
/// BCL on the SPSC engine (SingleWriter and SingleReader, whose TryWrite/TryRead inline the ring into this loop). The
/// other engines pay one compare-and-swap per side (about 5.5 ns each on the 2-vCPU VM), so about 0.2-0.36 is their
/// floor (docs/backpressure.md, "The floor of the other engines").
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
    private Func<(long Sum, long FailedWrites, long FailedReads)> _channelPairs = null!;
    private Func<(long Sum, long FailedWrites, long FailedReads)> _bufferPairs = null!;

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

        // One instantiation of each loop per case (a struct type argument gets its own native code): every case runs
        // code compiled and profile-guided for its own buffer, as a call site that always sees one kind of buffer does,
        // not code tuned to whichever case happened to run first in the process (the in-process toolchain runs them all
        // in one process).
        (_channelPairs, _bufferPairs) = (SingleWriter, SingleReader) switch
        {
            (false, false) => (ChannelPairs<ManyWritersManyReaders>, BufferPairs<ManyWritersManyReaders>),
            (false, true) => (ChannelPairs<ManyWritersOneReader>, BufferPairs<ManyWritersOneReader>),
            (true, false) => (ChannelPairs<OneWriterManyReaders>, BufferPairs<OneWriterManyReaders>),
            (true, true) => ((Func<(long, long, long)>)ChannelPairs<OneWriterOneReader>, (Func<(long, long, long)>)BufferPairs<OneWriterOneReader>),
        };
        WarmUp();
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
        var (sum, failedWrites, failedReads) = _channelPairs();
        return Finish(sum, failedWrites, failedReads);
    }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long BackpressureBuffer()
    {
        var (sum, failedWrites, failedReads) = _bufferPairs();
        return Finish(sum, failedWrites, failedReads);
    }

    /// <summary>
    /// Runs both loops until they have been promoted to optimized (Tier-1) code, before the harness measures anything
    /// (<see cref="TierUp"/>): a run could otherwise measure on-stack-replaced or instrumented code (SPSC 5-11 ns per
    /// pair in such runs, 2.7-3.4 once optimized). Not counted in the failed-try columns.
    /// </summary>
    private void WarmUp() => TierUp.Run(() => _channelPairs(), () => _bufferPairs());

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (long Sum, long FailedWrites, long FailedReads) ChannelPairs<TCase>()
        where TCase : struct
    {
        ChannelWriter<long> writer = _writer;
        ChannelReader<long> reader = _reader;
        long sum = 0, failedWrites = 0, failedReads = 0;
        for (long value = 1; value <= Pairs; value++)
        {
            if (!writer.TryWrite(value))
            {
                failedWrites++;
            }

            if (reader.TryRead(out long item))
            {
                sum += item;
            }
            else
            {
                failedReads++;
            }
        }

        return (sum, failedWrites, failedReads);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (long Sum, long FailedWrites, long FailedReads) BufferPairs<TCase>()
        where TCase : struct
    {
        BackpressureBuffer<long> buffer = _buffer;
        long sum = 0, failedWrites = 0, failedReads = 0;
        for (long value = 1; value <= Pairs; value++)
        {
            if (buffer.TryWrite(value).Outcome != WriteOutcome.Accepted)
            {
                failedWrites++;
            }

            if (buffer.TryRead(out long item))
            {
                sum += item;
            }
            else
            {
                failedReads++;
            }
        }

        return (sum, failedWrites, failedReads);
    }

    private long Finish(long sum, long failedWrites, long failedReads, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        // A write or read can only fail here through a bug: the buffer holds at most one item.
        Transfer.Check(failedWrites + failedReads, 0, "failed TryWrite/TryRead on a nearly empty buffer");
        Transfer.Check(sum, Transfer.SumOneTo(Pairs), "sum read");
        Count(Pairs, failedWrites, failedReads, method);
        return sum;
    }

    private struct ManyWritersManyReaders;

    private struct ManyWritersOneReader;

    private struct OneWriterManyReaders;

    private struct OneWriterOneReader;
}
