using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// What watermarks cost the <c>Try</c> path (session 17, after the watermark check became a state-then-depth loop). One
/// thread, rounds of two <c>TryWrite</c> then two <c>TryRead</c> on single-writer single-reader buffers: without
/// watermarks, with watermarks the depth never reaches (capacity 1024, high 512), and with watermarks crossed twice per
/// round (capacity 4, high 2, low 1: the second write pauses, the first read resumes), each crossing delivering a
/// <c>PressureChanged</c> event to a counting handler. Baseline: the BCL bounded channel, same rounds. Per-op = one
/// call (four per round). Not in the quick run.
/// </summary>
[MemoryDiagnoser]
public class BackpressureWatermarkBenchmarks
{
    /// <summary>Rounds per invocation.</summary>
    public const int Rounds = 1 << 14;

    private ChannelWriter<long> _writer = null!;
    private ChannelReader<long> _reader = null!;
    private BackpressureBuffer<long> _plain = null!, _quiet = null!, _crossing = null!;
    private long _events;

    [GlobalSetup]
    public void Setup()
    {
        Channel<long> channel = Channel.CreateBounded<long>(new BoundedChannelOptions(1024) { SingleWriter = true, SingleReader = true });
        (_writer, _reader) = (channel.Writer, channel.Reader);
        _plain = Create(1024, 0, 0);
        _quiet = Create(1024, 512, 256);
        _crossing = Create(4, 2, 1);
        _crossing.PressureChanged += (_, _) => _events++;
        TierUp.Run(() => BoundedChannel(), () => Run(_plain), () => Run(_quiet), () => Run(_crossing));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine($"// pressure events delivered (all runs of the crossing buffer, warm-up included): {_events}");
        _plain.Dispose();
        _quiet.Dispose();
        _crossing.Dispose();
    }

    private static BackpressureBuffer<long> Create(int capacity, int high, int low) =>
        new(new BackpressureBufferOptions<long> { Capacity = capacity, SingleWriter = true, SingleReader = true, HighWatermark = high, LowWatermark = low });

    [Benchmark(Baseline = true, OperationsPerInvoke = Rounds * 4)]
    public long BoundedChannel()
    {
        long sum = 0;
        for (int i = 0; i < Rounds; i++)
        {
            _writer.TryWrite(i);
            _writer.TryWrite(i);
            _reader.TryRead(out long a);
            _reader.TryRead(out long b);
            sum += a + b;
        }

        return Check(sum);
    }

    [Benchmark(OperationsPerInvoke = Rounds * 4)]
    public long NoWatermarks() => Run(_plain);

    [Benchmark(OperationsPerInvoke = Rounds * 4)]
    public long WatermarksNeverCrossed() => Run(_quiet);

    [Benchmark(OperationsPerInvoke = Rounds * 4)]
    public long WatermarksCrossedTwicePerRound() => Run(_crossing);

    private static long Run(BackpressureBuffer<long> buffer)
    {
        long sum = 0;
        for (int i = 0; i < Rounds; i++)
        {
            buffer.TryWrite(i);
            buffer.TryWrite(i);
            buffer.TryRead(out long a);
            buffer.TryRead(out long b);
            sum += a + b;
        }

        return Check(sum);
    }

    private static long Check(long sum) =>
        sum == (long)Rounds * (Rounds - 1) ? sum : throw new InvalidOperationException($"lost items: sum {sum}");
}
