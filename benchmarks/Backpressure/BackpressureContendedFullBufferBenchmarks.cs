using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// The overflow path under contention (session 16): <see cref="Writers"/> threads write to a buffer that is full and
/// stays full (no reader), every write one <c>TryWrite</c> under <see cref="Policy"/>, against the BCL bounded
/// <see cref="Channel"/> twin with the same capacity and many-writer options (baseline): <c>DropOldest</c> against
/// <see cref="BoundedChannelFullMode.DropOldest"/>, <c>DropIncoming</c> against <see cref="BoundedChannelFullMode.DropWrite"/>,
/// <c>Reject</c> (with its retry hint) against <see cref="BoundedChannelFullMode.Wait"/>'s <c>TryWrite</c> answering false.
/// Per-op = one write. 4 writers OVERSUBSCRIBE a 2-core machine (the benchmark thread waits on the round meanwhile).
/// Every answer is checked (an eviction under DropOldest, a drop under DropIncoming, a rejection under Reject; the channel: true, or false under Wait), and so are
/// the buffer's statistics after each round (every eviction, drop or rejection counted). No drop callback on either side.
/// Target: 0 B/op. The single-thread overflow path is <see cref="BackpressureFullBufferBenchmarks"/>.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class BackpressureContendedFullBufferBenchmarks
{
    /// <summary>Writes per invocation, shared out among the writers.</summary>
    public const int Writes = 1 << 16;

    /// <summary>Requested capacity of both buffers.</summary>
    public const int Capacity = 64;

    private BackpressureBuffer<long> _buffer = null!;
    private ChannelWriter<long> _writer = null!;
    private RoundWorkers _workers = null!;
    private Action<int> _bufferWork = null!;
    private Action<int> _channelWork = null!;
    private long _unexpected;
    private WriteOutcome _expected;
    private int _perWriter;

    /// <summary>The overflow policy under test (ours) and its channel twin.</summary>
    [Params(OverflowPolicy.Reject, OverflowPolicy.DropOldest, OverflowPolicy.DropIncoming)]
    public OverflowPolicy Policy { get; set; }

    /// <summary>Writer threads: 2 (one per core here) and 4 (oversubscribed on 2 cores).</summary>
    [Params(2, 4)]
    public int Writers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = Capacity,
            FullMode = Policy,
            SingleWriter = false,
            SingleReader = false,
        });
        _perWriter = Writes / Writers;
        _expected = Policy switch
        {
            OverflowPolicy.DropOldest => WriteOutcome.EvictedOldest,
            OverflowPolicy.DropIncoming => WriteOutcome.DroppedIncoming,
            _ => WriteOutcome.Rejected,
        };
        Channel<long> channel = Channel.CreateBounded<long>(new BoundedChannelOptions(Capacity)
        {
            FullMode = Policy switch
            {
                OverflowPolicy.DropOldest => BoundedChannelFullMode.DropOldest,
                OverflowPolicy.DropIncoming => BoundedChannelFullMode.DropWrite,
                _ => BoundedChannelFullMode.Wait, // TryWrite answers false on a full channel: the twin of a rejection
            },
            SingleWriter = false,
            SingleReader = false,
        });
        _writer = channel.Writer;
        for (long value = 1; value <= Capacity; value++)
        {
            Transfer.Check(_buffer.TryWrite(value).IsAccepted ? 1 : 0, 1, "filling the buffer");
            Transfer.Check(_writer.TryWrite(value) ? 1 : 0, 1, "filling the channel");
        }

        _workers = new RoundWorkers(Writers, "full-writer");
        _bufferWork = BufferWrites;
        _channelWork = ChannelWrites;
        TierUp.Run(() => RunRound(_channelWork), () => RunRound(_bufferWork));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _workers.Dispose();
        _buffer.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Writes)]
    public long BoundedChannel() => RunRound(_channelWork);

    [Benchmark(OperationsPerInvoke = Writes)]
    public long BackpressureBuffer()
    {
        BackpressureStatistics before = _buffer.GetStatistics();
        long result = RunRound(_bufferWork);
        BackpressureStatistics after = _buffer.GetStatistics();
        long counted = Policy switch
        {
            OverflowPolicy.DropOldest => after.Evicted - before.Evicted,
            OverflowPolicy.DropIncoming => after.DroppedIncoming - before.DroppedIncoming,
            _ => after.Rejected - before.Rejected,
        };
        Transfer.Check(counted, Writes, "evictions or drops counted in the round");
        Transfer.Check(after.Remaining, _buffer.Capacity, "the buffer still full");
        return result;
    }

    private long RunRound(Action<int> work)
    {
        Interlocked.Exchange(ref _unexpected, 0);
        _workers.StartRound(work);
        _workers.WaitRound();
        Transfer.Check(Volatile.Read(ref _unexpected), 0, "unexpected answers");
        return Writes;
    }

    private void BufferWrites(int writer)
    {
        long unexpected = 0;
        long baseValue = (writer + 1L) << 40;
        for (long i = 0; i < _perWriter; i++)
        {
            unexpected += _buffer.TryWrite(baseValue + i).Outcome == _expected ? 0 : 1;
        }

        Interlocked.Add(ref _unexpected, unexpected);
    }

    private void ChannelWrites(int writer)
    {
        long unexpected = 0;
        long baseValue = (writer + 1L) << 40;
        for (long i = 0; i < _perWriter; i++)
        {
            unexpected += _writer.TryWrite(baseValue + i) == (Policy != OverflowPolicy.Reject) ? 0 : 1;
        }

        Interlocked.Add(ref _unexpected, unexpected);
    }
}
