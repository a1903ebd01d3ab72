using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// The overflow path of the <see cref="Channel{T}"/> adapter, through <see cref="ChannelWriter{T}.TryWrite"/> only: one
/// thread, every operation is one <c>TryWrite</c> to a channel that is full (and stays full), for each
/// <see cref="BoundedChannelFullMode"/> the adapter has a twin for (acceptance gap B):
/// <list type="bullet">
/// <item><see cref="BoundedChannelFullMode.Wait"/>: <c>TryWrite</c> answers false on both (ours: <see cref="OverflowPolicy.Wait"/>).</item>
/// <item><see cref="BoundedChannelFullMode.DropWrite"/>: the incoming item is discarded, <c>TryWrite</c> answers true
/// (ours: <see cref="OverflowPolicy.DropIncoming"/>).</item>
/// <item><see cref="BoundedChannelFullMode.DropOldest"/>: the oldest item is evicted, <c>TryWrite</c> answers true (ours:
/// <see cref="OverflowPolicy.DropOldest"/>, which always runs on the multi-consumer engine).</item>
/// </list>
/// (<see cref="BoundedChannelFullMode.DropNewest"/> has no twin: the adapter does not offer it.) Both channels are made
/// with the same capacity (1024, a power of two so ours does not round it up), single writer and reader, no drop callback.
/// Every <c>TryWrite</c> answer is checked, the depth is checked after each invocation, and the cleanup drains the
/// channel the case wrote to and checks what is left: the first 1024 values under Wait and DropWrite, the last 1024
/// written under DropOldest. FailEnq/op counts <c>TryWrite</c> false (1 under Wait, 0 under the drop modes). Per-op = a
/// write. Not in the quick run (run it with <c>--quick --filter '*LockFreeChannelFullBuffer*'</c>).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class LockFreeChannelFullBufferBenchmarks : FailedTryBenchmark
{
    /// <summary>Writes per invocation.</summary>
    public const int Writes = 1 << 16;

    /// <summary>Capacity of both channels (a power of two: ours would round it up).</summary>
    public const int Capacity = 1024;

    private Channel<long> _bcl = null!, _ours = null!;
    private ChannelWriter<long> _bclWriter = null!, _oursWriter = null!;
    private bool _expected;
    private Channel<long>? _written;

    /// <summary>The BCL's full mode, and the adapter's twin of it.</summary>
    [Params(BoundedChannelFullMode.Wait, BoundedChannelFullMode.DropWrite, BoundedChannelFullMode.DropOldest)]
    public BoundedChannelFullMode Mode { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        (OverflowPolicy policy, _expected) = Mode switch
        {
            BoundedChannelFullMode.Wait => (OverflowPolicy.Wait, false),
            BoundedChannelFullMode.DropWrite => (OverflowPolicy.DropIncoming, true),
            BoundedChannelFullMode.DropOldest => (OverflowPolicy.DropOldest, true),
            _ => throw new InvalidOperationException($"The adapter has no twin for {Mode}."),
        };
        _bcl = Channel.CreateBounded<long>(new BoundedChannelOptions(Capacity)
        {
            FullMode = Mode,
            SingleWriter = true,
            SingleReader = true,
            AllowSynchronousContinuations = false,
        });
        _ours = LockFreeChannel.CreateBounded<long>(new LockFreeChannelOptions
        {
            Capacity = Capacity,
            FullMode = policy,
            SingleWriter = true,
            SingleReader = true,
        });
        _bclWriter = _bcl.Writer;
        _oursWriter = _ours.Writer;
        for (long value = 1; value <= Capacity; value++)
        {
            Transfer.Check(_bclWriter.TryWrite(value) ? 1 : 0, 1, "filling the BCL channel");
            Transfer.Check(_oursWriter.TryWrite(value) ? 1 : 0, 1, "filling the adapter");
        }

        CheckFull();

        // Both loops at Tier 1 before the harness measures (see TierUp): the first quick run measured the adapter's
        // DropOldest case at 383 ns/op against 25-40 ns in the next runs, code the runtime had not optimized yet.
        TierUp.Run(() => Write(_bclWriter), () => Write(_oursWriter));
        CheckFull();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_written is { } channel)
        {
            // Under DropOldest the channel holds the last Capacity values of the last invocation; otherwise the fill.
            long first = Mode == BoundedChannelFullMode.DropOldest ? Writes - Capacity + 1 : 1;
            for (long expected = first; expected < first + Capacity; expected++)
            {
                Transfer.Check(channel.Reader.TryRead(out long item) ? item : -1, expected, $"drained item under {Mode}");
            }

            Transfer.Check(channel.Reader.TryRead(out _) ? 1 : 0, 0, "an item after the drain");
            _written = null;
        }

        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Writes)]
    public long BoundedChannelFull() => Run(_bcl, _bclWriter);

    [Benchmark(OperationsPerInvoke = Writes)]
    public long LockFreeChannelFull() => Run(_ours, _oursWriter);

    private long Run(Channel<long> channel, ChannelWriter<long> writer, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        long failed = Write(writer);
        _written = channel;
        CheckFull();
        Count(Writes, failed, 0, method);
        return failed;
    }

    /// <summary>Writes 1..<see cref="Writes"/>, checks every answer; returns how many answered false.</summary>
    private long Write(ChannelWriter<long> writer)
    {
        long unexpected = 0, failed = 0;
        for (long value = 1; value <= Writes; value++)
        {
            bool written = writer.TryWrite(value);
            failed += written ? 0 : 1;
            unexpected += written == _expected ? 0 : 1;
        }

        Transfer.Check(unexpected, 0, $"TryWrite answers other than {_expected} under {Mode}");
        return failed;
    }

    private void CheckFull()
    {
        Transfer.Check(_bcl.Reader.Count, Capacity, "BCL channel depth");
        Transfer.Check(_ours.Reader.Count, Capacity, "adapter depth");
    }
}
