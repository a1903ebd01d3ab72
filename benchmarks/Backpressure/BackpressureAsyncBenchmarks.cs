using System.Runtime.CompilerServices;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// Asynchronous throughput under the Wait policy: each invocation moves <see cref="Items"/> longs (1..N)
/// through a buffer of capacity <see cref="Capacity"/> (small, so writers really wait for room and readers
/// for items) with <c>WriteAsync</c>/<c>ReadAsync</c>, from <see cref="Threads"/> = 1P1C or 2P2C async loops
/// started on the thread pool (<c>Task.Run</c>; continuations are not inlined on either side). Producer p
/// writes its own range; each consumer reads exactly its share and the total sum is checked. Per-op = one
/// item moved. <see cref="BackpressureBuffer{T}"/> against a bounded <see cref="Channel"/>
/// (<see cref="BoundedChannelFullMode.Wait"/>, same SingleWriter/SingleReader: true for 1P1C, false for 2P2C)
/// as baseline.
/// FailEnq/op and FailDeq/op here count the WriteAsync/ReadAsync calls that did not complete synchronously
/// (the call had to wait), i.e. how often the slow path ran.
/// B/op: the harness itself allocates about 1-2 KB per invocation (Task.Run, the loops' async state
/// machines, the wait on them), i.e. &lt; 0.05 B/op; the target for ours is 0 B/op in steady state.
/// 2P2C is OVERSUBSCRIBED on a 2-core machine (4 loops, plus the pool's wake-up hops, on 2 cores).
/// Two regimes (docs/backpressure.md, "The asynchronous path"): lock-step, where each side waits once per
/// <see cref="Capacity"/> items (FailEnq/op and FailDeq/op about 1/64 = 0.0156) and every hand-over is a pool hop (ours
/// about 0.65 of the BCL fully optimized; whenever the loops do not both have a core, i.e. on a loaded machine), and
/// flowing, where both sides run at once and ours spins instead of parking (waits per item well under 1/64; about 0.16).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class BackpressureAsyncBenchmarks : FailedTryBenchmark
{
    /// <summary>Items per invocation.</summary>
    public const int Items = 1 << 16;

    /// <summary>Requested capacity of both buffers: small, so that both sides wait.</summary>
    public const int Capacity = 64;

    /// <summary>Longest an invocation may take before it is declared hung.</summary>
    private const int RoundTimeoutMilliseconds = 60_000;

    private BackpressureBuffer<long> _buffer = null!;
    private Channel<long> _channel = null!;
    private int _pairs;
    private Task<long>[] _producers = null!;
    private Task<(long Sum, long Waits)>[] _consumers = null!;
    private Task[] _all = null!;
    private Func<Task<long>>[] _produceBuffer = null!, _produceChannel = null!;
    private Func<Task<(long Sum, long Waits)>>[] _consumeBuffer = null!, _consumeChannel = null!;

    /// <summary>Producers and consumers: 1P1C (single writer/reader options) or 2P2C.</summary>
    [Params("1P1C", "2P2C")]
    public string Threads { get; set; } = "1P1C";

    [GlobalSetup]
    public void Setup()
    {
        _pairs = Threads switch
        {
            "1P1C" => 1,
            "2P2C" => 2,
            _ => throw new InvalidOperationException($"Unknown thread layout {Threads}."),
        };
        bool single = _pairs == 1;
        _buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = Capacity,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = single,
            SingleReader = single,
        });
        _channel = Channel.CreateBounded<long>(new BoundedChannelOptions(Capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = single,
            SingleReader = single,
            AllowSynchronousContinuations = false,
        });
        _producers = new Task<long>[_pairs];
        _consumers = new Task<(long, long)>[_pairs];
        _all = new Task[2 * _pairs];
        _produceBuffer = new Func<Task<long>>[_pairs];
        _produceChannel = new Func<Task<long>>[_pairs];
        _consumeBuffer = new Func<Task<(long, long)>>[_pairs];
        _consumeChannel = new Func<Task<(long, long)>>[_pairs];
        long share = Items / _pairs;
        for (int i = 0; i < _pairs; i++)
        {
            long first = (i * share) + 1;
            _produceBuffer[i] = () => ProduceBuffer(first, share);
            _produceChannel[i] = () => ProduceChannel(first, share);
            _consumeBuffer[i] = () => AsyncReads.FromBuffer(_buffer, share);
            _consumeChannel[i] = () => AsyncReads.FromChannel(_channel.Reader, share);
        }

        if (!single && Environment.ProcessorCount < 4)
        {
            Console.WriteLine($"// LockFree.Note 2P2C on {Environment.ProcessorCount} cores: OVERSUBSCRIBED (4 async loops).");
        }

        WarmUp();
    }

    /// <summary>
    /// Drives the four loops (<see cref="ProduceBuffer"/>, <see cref="ProduceChannel"/> and the two <see cref="AsyncReads"/>
    /// readers), ours and the BCL's, to their final Tier-1 code before the harness measures anything, once per process and
    /// thread layout (the buffer and the channel run another engine for 2P2C than for 1P1C): rounds of
    /// <see cref="WarmUpItems"/> items through <see cref="TierUp"/>, with its pauses for the tiering delay. The loops and the
    /// library's async paths are JIT-compiled at run time (System.Threading.Channels is precompiled), and under tiered PGO
    /// they ran instrumented or tier-0 code for seconds of this workload: without a warm-up the short quick job measured
    /// mostly JIT warm-up (ours 190 vs the BCL's 130 ns per item in the first second, 36 vs 41 after a few); pinned to one
    /// core nothing left tier 0 in 20 full rounds without pauses (2026-11-22). Until session 14 every case ran up to 3 s of
    /// full rounds of its own (which, read off <c>DOTNET_JitDisasmSummary</c>, also reached Tier 1 before measuring).
    /// Not counted in the failed-try columns.
    /// </summary>
    private void WarmUp()
    {
        if (!s_warmedLayouts.Add(Threads)) // [GlobalSetup] runs on the benchmark thread only
        {
            return;
        }

        long share = WarmUpItems / _pairs;
        var produceBuffer = new Func<Task<long>>[_pairs];
        var produceChannel = new Func<Task<long>>[_pairs];
        var consumeBuffer = new Func<Task<(long, long)>>[_pairs];
        var consumeChannel = new Func<Task<(long, long)>>[_pairs];
        for (int i = 0; i < _pairs; i++)
        {
            long first = (i * share) + 1;
            // Never optimized, so they cannot inline what they warm (see TierUp, "callers").
            produceBuffer[i] = [MethodImpl(MethodImplOptions.NoOptimization)] () => ProduceBuffer(first, share);
            produceChannel[i] = [MethodImpl(MethodImplOptions.NoOptimization)] () => ProduceChannel(first, share);
            consumeBuffer[i] = [MethodImpl(MethodImplOptions.NoOptimization)] () => AsyncReads.FromBuffer(_buffer, share);
            consumeChannel[i] = [MethodImpl(MethodImplOptions.NoOptimization)] () => AsyncReads.FromChannel(_channel.Reader, share);
        }

        TierUp.RunAndReport(
            $"{nameof(BackpressureAsyncBenchmarks)} {Threads}",
            WarmUpMilliseconds,
            () => WarmUpRound(produceChannel, consumeChannel),
            () => WarmUpRound(produceBuffer, consumeBuffer));
    }

    /// <summary>One warm-up round: <see cref="WarmUpItems"/> items through the given loops, the sum checked.</summary>
    private void WarmUpRound(Func<Task<long>>[] produce, Func<Task<(long Sum, long Waits)>>[] consume)
    {
        var consumers = new Task<(long Sum, long Waits)>[_pairs];
        for (int i = 0; i < _pairs; i++)
        {
            _all[i] = consumers[i] = Task.Run(consume[i]);
            _all[_pairs + i] = Task.Run(produce[i]);
        }

        if (!Task.WaitAll(_all, RoundTimeoutMilliseconds))
        {
            throw new TimeoutException("Warm-up round did not finish: " + Diagnose());
        }

        Transfer.Check(consumers.Sum(c => c.Result.Sum), Transfer.SumOneTo(WarmUpItems), "warm-up sum");
    }

    /// <summary>The thread layouts warmed up in this process (<see cref="WarmUp"/>).</summary>
    private static readonly HashSet<string> s_warmedLayouts = [];

    /// <summary>
    /// Items per warm-up round: half an invocation, so each loop is started a couple of hundred times within the budget, and
    /// enough items in all that the library's rarer waiting paths (a 2P2C waiter unlinked or abandoned) are promoted too:
    /// with rounds of 4,096 or 16,384 items some of those were still compiled during the first measured iterations of 2P2C
    /// (read off <c>DOTNET_JitDisasmSummary</c>, session 14).
    /// </summary>
    private const long WarmUpItems = Items / 2;

    /// <summary>Longest warm-up of one thread layout.</summary>
    private const int WarmUpMilliseconds = 3_000;

    [GlobalCleanup]
    public void Cleanup()
    {
        _buffer.Dispose();
        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long BoundedChannel() => Run(_produceChannel, _consumeChannel);

    [Benchmark(OperationsPerInvoke = Items)]
    public long BackpressureBuffer() => Run(_produceBuffer, _consumeBuffer);

    private long Run(Func<Task<long>>[] produce, Func<Task<(long Sum, long Waits)>>[] consume, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        for (int i = 0; i < _pairs; i++)
        {
            _all[i] = _consumers[i] = Task.Run(consume[i]);
            _all[_pairs + i] = _producers[i] = Task.Run(produce[i]);
        }

        if (!Task.WaitAll(_all, RoundTimeoutMilliseconds)) // rethrows a loop's failure
        {
            throw new TimeoutException(
                $"{method} round did not finish within {RoundTimeoutMilliseconds} ms: buffer Count {_buffer.Count}, channel Count {_channel.Reader.Count}, "
                + $"producers {string.Join(",", _producers.Select(t => t.Status))}, consumers {string.Join(",", _consumers.Select(t => t.Status))}; "
                + Diagnose());
        }

        (long sum, long writeWaits, long readWaits) = AsyncReads.Totals(_producers, _consumers);

        Transfer.Check(sum, Transfer.SumOneTo(Items), "consumers' sum");
        Transfer.Check(_buffer.Count + _channel.Reader.Count, 0, "items left over");
        Count(Items, writeWaits, readWaits, method);
        return sum;
    }

    /// <summary>The waiter lists of the buffer, for the hang message (private fields: best effort).</summary>
    private string Diagnose()
    {
        try
        {
            const System.Reflection.BindingFlags flags = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance;
            var parts = new List<string>();
            foreach (string name in new[] { "_writers", "_readers" })
            {
                object? list = typeof(BackpressureBuffer<long>).GetField(name, flags)?.GetValue(_buffer);
                object? gate = list?.GetType().GetField("_gate", flags)?.GetValue(list);
                object? count = gate?.GetType().GetField("_waiters", flags)?.GetValue(gate);
                object? head = list?.GetType().GetField("_head", flags)?.GetValue(list);
                parts.Add($"{name}: {count} parked, head {head?.GetType().GetProperty("Status")?.GetValue(head) ?? "none"}");
            }

            return string.Join("; ", parts);
        }
        catch (Exception e)
        {
            return $"waiter lists not inspectable ({e.GetType().Name})";
        }
    }

    private async Task<long> ProduceBuffer(long first, long count)
    {
        long waits = 0;
        for (long value = first, end = first + count; value < end; value++)
        {
            ValueTask<WriteResult> write = _buffer.WriteAsync(value);
            waits += write.IsCompleted ? 0 : 1;
            WriteResult result = await write.ConfigureAwait(false);
            if (result.Outcome != WriteOutcome.Accepted)
            {
                throw new InvalidOperationException($"WriteAsync under Wait answered {result}.");
            }
        }

        return waits;
    }

    private async Task<long> ProduceChannel(long first, long count)
    {
        ChannelWriter<long> writer = _channel.Writer;
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
