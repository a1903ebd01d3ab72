using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// The <see cref="Channel{T}"/> adapter (<see cref="LockFreeChannel.CreateBounded{T}(LockFreeChannelOptions)"/>) through
/// the <see cref="ChannelWriter{T}"/>/<see cref="ChannelReader{T}"/> API only, against <see cref="Channel.CreateBounded{T}(BoundedChannelOptions)"/>
/// with the same options (acceptance audit, 2026-11-23: issue 4's benchmarks measured the buffer's own API, never the
/// adapter). Two groups: the <c>Try</c> path (one thread, <c>TryWrite</c>+<c>TryRead</c> pairs that never fail; per-op =
/// a pair) and the async path (<c>WriteAsync</c>/<c>ReadAsync</c> loops on the thread pool, 1P1C with the single flags,
/// capacity 64 so both sides wait; per-op = an item moved; the sum is checked). Not in the quick run.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class LockFreeChannelAsyncBenchmarks
{
    /// <summary>Pairs per invocation of the Try group.</summary>
    public const int Pairs = 1 << 16;

    /// <summary>Items per invocation of the async group.</summary>
    public const int Items = 1 << 16;

    private const int TryCapacity = 1024;
    private const int AsyncCapacity = 64;
    private const int RoundTimeoutMilliseconds = 60_000;

    private Channel<long> _bclTry = null!, _oursTry = null!, _bclAsync = null!, _oursAsync = null!;

    [GlobalSetup]
    public void Setup()
    {
        _bclTry = Bcl(TryCapacity);
        _oursTry = Ours(TryCapacity);
        _bclAsync = Bcl(AsyncCapacity);
        _oursAsync = Ours(AsyncCapacity);
        for (int round = 0; round < 20; round++) // JIT and pools warm before the harness measures
        {
            TryPairs(_bclTry);
            TryPairs(_oursTry);
            Move(_bclAsync);
            Move(_oursAsync);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs), BenchmarkCategory("Try")]
    public long BoundedChannelTry() => TryPairs(_bclTry);

    [Benchmark(OperationsPerInvoke = Pairs), BenchmarkCategory("Try")]
    public long LockFreeChannelTry() => TryPairs(_oursTry);

    [Benchmark(Baseline = true, OperationsPerInvoke = Items), BenchmarkCategory("Async")]
    public long BoundedChannelAsync() => Move(_bclAsync);

    [Benchmark(OperationsPerInvoke = Items), BenchmarkCategory("Async")]
    public long LockFreeChannelAsync() => Move(_oursAsync);

    private static Channel<long> Bcl(int capacity) => Channel.CreateBounded<long>(new BoundedChannelOptions(capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleWriter = true,
        SingleReader = true,
        AllowSynchronousContinuations = false,
    });

    private static Channel<long> Ours(int capacity) => LockFreeChannel.CreateBounded<long>(new LockFreeChannelOptions
    {
        Capacity = capacity,
        FullMode = OverflowPolicy.Wait,
        SingleWriter = true,
        SingleReader = true,
    });

    private static long TryPairs(Channel<long> channel)
    {
        ChannelWriter<long> writer = channel.Writer;
        ChannelReader<long> reader = channel.Reader;
        long sum = 0;
        for (long i = 1; i <= Pairs; i++)
        {
            if (!writer.TryWrite(i) || !reader.TryRead(out long item))
            {
                throw new InvalidOperationException("a TryWrite or TryRead failed on a channel that never holds more than one item");
            }

            sum += item;
        }

        Transfer.Check(sum, Transfer.SumOneTo(Pairs), "sum of the pairs");
        return sum;
    }

    private static long Move(Channel<long> channel)
    {
        Task produce = Task.Run(() => Produce(channel.Writer));
        Task<(long Sum, long Waits)> consume = Task.Run(() => AsyncReads.FromChannel(channel.Reader, Items));
        if (!Task.WaitAll([produce, consume], RoundTimeoutMilliseconds))
        {
            throw new TimeoutException($"a round did not finish within {RoundTimeoutMilliseconds} ms");
        }

        Transfer.Check(consume.Result.Sum, Transfer.SumOneTo(Items), "consumer's sum");
        return consume.Result.Sum;
    }

    private static async Task Produce(ChannelWriter<long> writer)
    {
        for (long value = 1; value <= Items; value++)
        {
            await writer.WriteAsync(value).ConfigureAwait(false);
        }
    }
}
