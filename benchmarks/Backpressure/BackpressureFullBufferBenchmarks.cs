using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// The overflow path, single thread: every operation is one <c>TryWrite</c> to a buffer that is full (and
/// stays full) under <see cref="Policy"/>. Baseline: the bounded <see cref="Channel"/> twin with the same
/// capacity and single writer/reader options:
/// <list type="bullet">
/// <item>Reject: the channel has no reject mode; its twin is <see cref="BoundedChannelFullMode.Wait"/>'s
/// <c>TryWrite</c> returning false (ours also computes a retry hint, reading the clock).</item>
/// <item>DropIncoming: <see cref="BoundedChannelFullMode.DropWrite"/>.</item>
/// <item>DropOldest: <see cref="BoundedChannelFullMode.DropOldest"/> (ours: the place-or-evict step of the
/// multi-consumer engine it always uses for this policy, since session 16; before, a dequeue and an enqueue).</item>
/// </list>
/// No drop callback on either side. Every result is checked (a wrong outcome fails the benchmark) and the
/// buffer is checked to be still full after each invocation. FailEnq/op counts writes answered "not taken"
/// (ours: Rejected; the channel: TryWrite false), so it is 1 under Reject and 0 under the drop policies,
/// which report success. Target: 0 B/op.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class BackpressureFullBufferBenchmarks : FailedTryBenchmark
{
    /// <summary>Writes per invocation.</summary>
    public const int Writes = 1 << 16;

    /// <summary>Requested capacity of both buffers (a power of two: ours would round it up).</summary>
    public const int Capacity = 1024;

    private BackpressureBuffer<long> _buffer = null!;
    private Channel<long> _channel = null!;
    private ChannelWriter<long> _writer = null!;
    private WriteOutcome _expectedOutcome;
    private bool _channelExpected;

    /// <summary>The overflow policy under test (ours) and its channel twin.</summary>
    [Params(OverflowPolicy.Reject, OverflowPolicy.DropIncoming, OverflowPolicy.DropOldest)]
    public OverflowPolicy Policy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = Capacity,
            FullMode = Policy,
            SingleWriter = true,
            SingleReader = true,
        });
        (BoundedChannelFullMode mode, _expectedOutcome, _channelExpected) = Policy switch
        {
            OverflowPolicy.Reject => (BoundedChannelFullMode.Wait, WriteOutcome.Rejected, false),
            OverflowPolicy.DropIncoming => (BoundedChannelFullMode.DropWrite, WriteOutcome.DroppedIncoming, true),
            OverflowPolicy.DropOldest => (BoundedChannelFullMode.DropOldest, WriteOutcome.EvictedOldest, true),
            _ => throw new InvalidOperationException($"No channel twin for {Policy}."),
        };
        _channel = Channel.CreateBounded<long>(new BoundedChannelOptions(Capacity)
        {
            FullMode = mode,
            SingleWriter = true,
            SingleReader = true,
            AllowSynchronousContinuations = false,
        });
        _writer = _channel.Writer;
        for (long value = 1; value <= Capacity; value++)
        {
            Transfer.Check(_buffer.TryWrite(value).IsAccepted ? 1 : 0, 1, "filling the buffer");
            Transfer.Check(_writer.TryWrite(value) ? 1 : 0, 1, "filling the channel");
        }

        CheckFull();

        // Both loops at Tier 1 before anything is measured (see TierUp; session 11: a first case could be measured on
        // on-stack-replaced code). The writes keep both buffers full; not counted in the failed-try columns.
        TierUp.Run(() => ChannelWrites(), () => BufferWrites());
        CheckFull();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _buffer.Dispose();
        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Writes)]
    public long BoundedChannel()
    {
        (long unexpected, long failed) = ChannelWrites();
        return Finish(unexpected, failed);
    }

    [Benchmark(OperationsPerInvoke = Writes)]
    public long BackpressureBuffer()
    {
        (long unexpected, long failed) = BufferWrites();
        return Finish(unexpected, failed);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (long Unexpected, long Failed) ChannelWrites()
    {
        long unexpected = 0, failed = 0;
        for (long value = 1; value <= Writes; value++)
        {
            bool written = _writer.TryWrite(value);
            failed += written ? 0 : 1;
            unexpected += written == _channelExpected ? 0 : 1;
        }

        return (unexpected, failed);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (long Unexpected, long Failed) BufferWrites()
    {
        long unexpected = 0, failed = 0;
        for (long value = 1; value <= Writes; value++)
        {
            WriteOutcome outcome = _buffer.TryWrite(value).Outcome;
            failed += outcome == WriteOutcome.Rejected ? 1 : 0; // as the channel's TryWrite returning false
            unexpected += outcome == _expectedOutcome ? 0 : 1;
        }

        return (unexpected, failed);
    }

    private long Finish(long unexpected, long failed, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        Transfer.Check(unexpected, 0, $"writes with another outcome than the {Policy} policy's");
        CheckFull();
        Count(Writes, failed, 0, method);
        return failed;
    }

    private void CheckFull()
    {
        Transfer.Check(_buffer.Count, Capacity, "buffer depth");
        Transfer.Check(_channel.Reader.Count, Capacity, "channel depth");
    }
}
