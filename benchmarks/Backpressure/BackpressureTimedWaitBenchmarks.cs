using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// "Wait with a timeout, then reject" (issue 4's hybrid mode), asynchronously: one producer loop writes
/// <see cref="Items"/> longs with a 1 s timeout per write into a buffer of capacity <see cref="Capacity"/> (small, so
/// the writer really parks), one consumer loop reads them; per-op = one item moved. Ours:
/// <c>WriteAsync(item, OverflowPolicy.Wait, timeout)</c>, whose parked waits arm their timeout on the library's shared
/// timer wheel. Baseline: the bounded <see cref="Channel"/> (Wait, single writer/reader) written the way a careful BCL
/// user bounds a wait: <c>TryWrite</c> first, and only when it fails a reusable <see cref="CancellationTokenSource"/>
/// armed with <c>CancelAfter</c> (reset with <c>TryReset</c>, replaced only after it fired) for <c>WriteAsync</c>.
/// No timeout fires in a healthy run (checked: every write is accepted). B/op: the harness allocates ~1-2 KB per
/// invocation (&lt; 0.05 B/op); before the shared wheel each parked timed write of ours created an ITimer
/// (about 0.6 B/op at this park rate, with the timer-queue insertion on the path).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class BackpressureTimedWaitBenchmarks : FailedTryBenchmark
{
    /// <summary>Items per invocation.</summary>
    public const int Items = 1 << 16;

    /// <summary>Capacity of both buffers: small, so that the writer parks.</summary>
    public const int Capacity = 64;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);
    private const int RoundTimeoutMilliseconds = 60_000;

    private BackpressureBuffer<long> _buffer = null!;
    private Channel<long> _channel = null!;
    private CancellationTokenSource _cts = new();

    [GlobalSetup]
    public void Setup()
    {
        _buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = Capacity,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = true,
            SingleReader = true,
        });
        _channel = Channel.CreateBounded<long>(new BoundedChannelOptions(Capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = true,
            SingleReader = true,
            AllowSynchronousContinuations = false,
        });
        for (int i = 0; i < 20; i++) // JIT warm-up of both paths (tiered PGO, see BackpressureAsyncBenchmarks.WarmUp)
        {
            Run(ProduceChannel, ConsumeChannel, "warm-up");
            Run(ProduceBuffer, ConsumeBuffer, "warm-up");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _buffer.Dispose();
        _cts.Dispose();
        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long BoundedChannelWithCancelAfter() => Run(ProduceChannel, ConsumeChannel);

    [Benchmark(OperationsPerInvoke = Items)]
    public long BackpressureBufferWithTimeout() => Run(ProduceBuffer, ConsumeBuffer);

    private Task<(long Sum, long Waits)> ConsumeBuffer() => AsyncReads.FromBuffer(_buffer, Items);

    private Task<(long Sum, long Waits)> ConsumeChannel() => AsyncReads.FromChannel(_channel.Reader, Items);

    private long Run(Func<Task<long>> produce, Func<Task<(long Sum, long Waits)>> consume, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        Task<(long Sum, long Waits)> consumer = Task.Run(consume);
        Task<long> producer = Task.Run(produce);
        if (!Task.WaitAll([consumer, producer], RoundTimeoutMilliseconds))
        {
            throw new TimeoutException($"{method} round did not finish within {RoundTimeoutMilliseconds} ms.");
        }

        Transfer.Check(consumer.Result.Sum, Transfer.SumOneTo(Items), "consumer's sum");
        if (method != "warm-up")
        {
            Count(Items, producer.Result, consumer.Result.Waits, method);
        }

        return consumer.Result.Sum;
    }

    /// <summary>Returns how many writes did not complete synchronously (parked).</summary>
    private async Task<long> ProduceBuffer()
    {
        long waits = 0;
        for (long value = 1; value <= Items; value++)
        {
            ValueTask<WriteResult> write = _buffer.WriteAsync(value, OverflowPolicy.Wait, Timeout);
            waits += write.IsCompleted ? 0 : 1;
            WriteResult result = await write.ConfigureAwait(false);
            if (result.Outcome != WriteOutcome.Accepted)
            {
                throw new InvalidOperationException($"A timed write answered {result} (a 1 s timeout fired).");
            }
        }

        return waits;
    }

    private async Task<long> ProduceChannel()
    {
        ChannelWriter<long> writer = _channel.Writer;
        long waits = 0;
        for (long value = 1; value <= Items; value++)
        {
            if (writer.TryWrite(value))
            {
                continue;
            }

            waits++;
            _cts.CancelAfter(Timeout);
            await writer.WriteAsync(value, _cts.Token).ConfigureAwait(false); // a fired timeout throws: the benchmark fails
            if (!_cts.TryReset())
            {
                _cts.Dispose();
                _cts = new CancellationTokenSource();
            }
        }

        return waits;
    }
}
