using System.Runtime.CompilerServices;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// The <see cref="Channel{T}"/> adapter (<see cref="LockFreeChannel.CreateBounded{T}(LockFreeChannelOptions)"/>) through
/// the <see cref="ChannelWriter{T}"/>/<see cref="ChannelReader{T}"/> API only, against <see cref="Channel.CreateBounded{T}(BoundedChannelOptions)"/>
/// with the same options (acceptance audit, 2026-11-23: issue 4's benchmarks measured the buffer's own API, never the
/// adapter). Three groups: the <c>Try</c> path (one thread, <c>TryWrite</c>+<c>TryRead</c> pairs that never fail; per-op =
/// a pair), the async path 1P1C (<c>WriteAsync</c>/<c>ReadAsync</c> loops on the thread pool with the single flags,
/// capacity 64 so both sides wait; per-op = an item moved; the sum is checked) and the async path 2P2C (two writer and
/// two reader loops, <c>SingleWriter</c>/<c>SingleReader</c> false on both sides, so the adapter runs on the MPMC engine;
/// producer p writes its own range, each reader reads its share, the total sum is checked; OVERSUBSCRIBED on 2 cores).
/// FailEnq/op and FailDeq/op of the async groups count the <c>WriteAsync</c>/<c>ReadAsync</c> calls that did not complete
/// synchronously (the call had to wait), which tells the lock-step regime (about 1/64) from the flowing one (far less).
/// Not in the quick run (run it with <c>--quick --filter '*LockFreeChannelAsync*'</c>).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class LockFreeChannelAsyncBenchmarks : FailedTryBenchmark
{
    /// <summary>Pairs per invocation of the Try group.</summary>
    public const int Pairs = 1 << 16;

    /// <summary>Items per invocation of the async groups.</summary>
    public const int Items = 1 << 16;

    private const int TryCapacity = 1024;
    private const int AsyncCapacity = 64;
    private const int RoundTimeoutMilliseconds = 60_000;

    /// <summary>
    /// Items per warm-up round of the async loops: half an invocation, as in <see cref="BackpressureAsyncBenchmarks"/> (short
    /// rounds start the loops often; enough items in all promote the rarer waiting paths too).
    /// </summary>
    private const long WarmUpItems = Items / 2;

    private static bool s_warm;
    private Channel<long> _bclTry = null!, _oursTry = null!, _bclAsync = null!, _oursAsync = null!, _bclMulti = null!, _oursMulti = null!;

    [GlobalSetup]
    public void Setup()
    {
        _bclTry = Bcl(TryCapacity, single: true);
        _oursTry = Ours(TryCapacity, single: true);
        _bclAsync = Bcl(AsyncCapacity, single: true);
        _oursAsync = Ours(AsyncCapacity, single: true);
        _bclMulti = Bcl(AsyncCapacity, single: false);
        _oursMulti = Ours(AsyncCapacity, single: false);
        if (!s_warm)
        {
            s_warm = true; // once per process: every case's Setup makes channels of all three layouts, so one warm-up covers every engine
            TierUp.RunAndReport(
                nameof(LockFreeChannelAsyncBenchmarks),
                TransferTierUp.BudgetMilliseconds,
                [MethodImpl(MethodImplOptions.NoOptimization)] () => TryPairs<BclLoop>(_bclTry), // never optimized: see TierUp, "callers"
                [MethodImpl(MethodImplOptions.NoOptimization)] () => TryPairs<OursLoop>(_oursTry),
                WarmUpRound(_bclAsync, 1),
                WarmUpRound(_oursAsync, 1),
                WarmUpRound(_bclMulti, 2),
                WarmUpRound(_oursMulti, 2));
        }

        if (Environment.ProcessorCount < 4)
        {
            Console.WriteLine($"// LockFree.Note Async2P2C on {Environment.ProcessorCount} cores: OVERSUBSCRIBED (4 async loops).");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => ReportFailedTries();

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs), BenchmarkCategory("Try")]
    public long BoundedChannelTry() => TryPairs<BclLoop>(_bclTry);

    [Benchmark(OperationsPerInvoke = Pairs), BenchmarkCategory("Try")]
    public long LockFreeChannelTry() => TryPairs<OursLoop>(_oursTry);

    [Benchmark(Baseline = true, OperationsPerInvoke = Items), BenchmarkCategory("Async")]
    public long BoundedChannelAsync() => Counted(_bclAsync, 1);

    [Benchmark(OperationsPerInvoke = Items), BenchmarkCategory("Async")]
    public long LockFreeChannelAsync() => Counted(_oursAsync, 1);

    [Benchmark(Baseline = true, OperationsPerInvoke = Items), BenchmarkCategory("Async2P2C")]
    public long BoundedChannelAsync2P2C() => Counted(_bclMulti, 2);

    [Benchmark(OperationsPerInvoke = Items), BenchmarkCategory("Async2P2C")]
    public long LockFreeChannelAsync2P2C() => Counted(_oursMulti, 2);

    private static Channel<long> Bcl(int capacity, bool single) => Channel.CreateBounded<long>(new BoundedChannelOptions(capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleWriter = single,
        SingleReader = single,
        AllowSynchronousContinuations = false,
    });

    private static Channel<long> Ours(int capacity, bool single) => LockFreeChannel.CreateBounded<long>(new LockFreeChannelOptions
    {
        Capacity = capacity,
        FullMode = OverflowPolicy.Wait,
        SingleWriter = single,
        SingleReader = single,
    });

    /// <summary>
    /// The pairs loop, one instantiation per implementation (a struct type argument gets its own native code): each call
    /// site then sees one writer and one reader class, as a user's loop over one channel does, and the JIT's guarded
    /// devirtualization inlines whichever it is. Before (session 12), one loop served both: its Tier-1 code guessed the
    /// class the Tier-0 profile saw first, inlined the BCL's calls and left ours virtual (a pair 6-8.4 ns against about
    /// 4 with its own loop).
    /// </summary>
    private static long TryPairs<TImplementation>(Channel<long> channel)
        where TImplementation : struct
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

    /// <summary>Type argument of the BCL's pairs loop.</summary>
    private struct BclLoop;

    /// <summary>Type argument of the adapter's pairs loop.</summary>
    private struct OursLoop;

    private long Counted(Channel<long> channel, int pairs, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        (long sum, long writeWaits, long readWaits) = Move(channel, pairs);
        Count(Items, writeWaits, readWaits, method);
        return sum;
    }

    /// <summary>
    /// Moves 1..<see cref="Items"/> through the channel with <paramref name="pairs"/> writer and reader loops (producer p
    /// writes its own range, each reader reads its share); checks the sum and that nothing is left over.
    /// </summary>
    private (long Sum, long WriteWaits, long ReadWaits) Move(Channel<long> channel, int pairs)
    {
        long share = Items / pairs;
        var producers = new Task<long>[pairs];
        var consumers = new Task<(long Sum, long Waits)>[pairs];
        var all = new Task[2 * pairs];
        for (int i = 0; i < pairs; i++)
        {
            long first = (i * share) + 1;
            all[i] = consumers[i] = Task.Run(() => AsyncReads.FromChannel(channel.Reader, share));
            all[pairs + i] = producers[i] = Task.Run(() => Produce(channel.Writer, first, share));
        }

        if (!Task.WaitAll(all, RoundTimeoutMilliseconds)) // rethrows a loop's failure
        {
            throw new TimeoutException($"a round did not finish within {RoundTimeoutMilliseconds} ms (channel Count {channel.Reader.Count})");
        }

        (long sum, long writeWaits, long readWaits) = AsyncReads.Totals(producers, consumers);

        Transfer.Check(sum, Transfer.SumOneTo(Items), "readers' sum");
        Transfer.Check(channel.Reader.Count, 0, "items left over");
        return (sum, writeWaits, readWaits);
    }

    /// <summary>
    /// One warm-up round through the async loops (<see cref="Produce"/>, <see cref="AsyncReads.FromChannel"/>): as
    /// <see cref="Move"/> with <see cref="WarmUpItems"/> items; the sum checked, nothing counted. Before session 14 every
    /// case's Setup ran 20 full rounds of every group, with no time bound (in the one run read off
    /// <c>DOTNET_JitDisasmSummary</c> that also reached Tier 1 before measuring).
    /// </summary>
    private static Action WarmUpRound(Channel<long> channel, int pairs) => () =>
    {
        long share = WarmUpItems / pairs;
        var readers = new Task<(long Sum, long Waits)>[pairs];
        var all = new Task[2 * pairs];
        for (int i = 0; i < pairs; i++)
        {
            long first = (i * share) + 1;
            all[i] = readers[i] = Task.Run([MethodImpl(MethodImplOptions.NoOptimization)] () => AsyncReads.FromChannel(channel.Reader, share)); // see TierUp, "callers"
            all[pairs + i] = Task.Run([MethodImpl(MethodImplOptions.NoOptimization)] () => Produce(channel.Writer, first, share));
        }

        if (!Task.WaitAll(all, RoundTimeoutMilliseconds))
        {
            throw new TimeoutException($"a warm-up round did not finish within {RoundTimeoutMilliseconds} ms (channel Count {channel.Reader.Count})");
        }

        Transfer.Check(readers.Sum(r => r.Result.Sum), Transfer.SumOneTo(WarmUpItems), "warm-up sum");
    };

    private static async Task<long> Produce(ChannelWriter<long> writer, long first, long count)
    {
        long waits = 0;
        for (long value = first, end = first + count; value < end; value++)
        {
            ValueTask write = writer.WriteAsync(value);
            waits += write.IsCompleted ? 0 : 1;
            await write.ConfigureAwait(false);
        }

        return waits;
    }
}
