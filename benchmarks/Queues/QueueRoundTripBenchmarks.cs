using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;
using LockFree.Internal;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// Round-trip (ping-pong) latency between the benchmark thread and a long-lived echo thread; per-op = one
/// round trip. The baseline is the floor: two 128-byte-padded fields written with Volatile.Write and polled
/// with Volatile.Read. Each queue variant sends i through one queue and waits for i back on the other; the
/// values are checked on both sides. Every variant waits the same way (<see cref="Transfer.PollPause"/>: a
/// short pause per poll, a yield every 1024). Polls that found nothing are counted (FailedDeq/op: the
/// pinger's, FailedEnq/op: the echo thread's). DESIGN.md target: SpscQueue ≤ 1.3× the raw round trip.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class QueueRoundTripBenchmarks : FailedTryBenchmark
{
    /// <summary>Round trips per invocation.</summary>
    public const int RoundTrips = 1 << 14;

    /// <summary>Round trips per warm-up round.</summary>
    private const long WarmTrips = 1024;

    private static bool s_warm;

    /// <summary>Queue capacity: a ping-pong never holds more than one item.</summary>
    private const int Capacity = 1024;

    private RoundWorkers _echo = null!;
    private Fields _fields = null!;
    private (SpscOps Ping, SpscOps Pong) _spsc;
    private (ConcurrentQueueOps Ping, ConcurrentQueueOps Pong) _concurrentQueue;
    private (ChannelOps Ping, ChannelOps Pong) _channel;
    private Action<int> _echoRaw = null!, _echoSpsc = null!, _echoConcurrentQueue = null!, _echoChannel = null!;
    private long _echoFailedPolls;

    [GlobalSetup]
    public void Setup()
    {
        _echo = new RoundWorkers(1, "echo");
        _fields = new Fields();
        _spsc = (new(new SpscQueue<long>(Capacity)), new(new SpscQueue<long>(Capacity)));
        _concurrentQueue = (new(new ConcurrentQueue<long>()), new(new ConcurrentQueue<long>()));
        _channel = (new(Channels.Bounded(Capacity, true, true)), new(Channels.Bounded(Capacity, true, true)));
        _echoRaw = _ => _echoFailedPolls = EchoRaw(_fields, _echo, RoundTrips);
        _echoSpsc = Echo(_spsc.Ping, _spsc.Pong, RoundTrips);
        _echoConcurrentQueue = Echo(_concurrentQueue.Ping, _concurrentQueue.Pong, RoundTrips);
        _echoChannel = Echo(_channel.Ping, _channel.Pong, RoundTrips);
        if (!s_warm)
        {
            // Every loop, the pinger's and the echo's, at Tier 1 before the first case (see TransferTierUp): short rounds
            // through the same methods. Once per process.
            s_warm = true;
            // The delegates are never optimized, so they cannot inline the loops they warm (see TierUp, "callers").
            Action<int> echoRaw = [MethodImpl(MethodImplOptions.NoOptimization)] (_) => EchoRaw(_fields, _echo, WarmTrips);
            Action<int> echoSpsc = Echo(_spsc.Ping, _spsc.Pong, WarmTrips);
            Action<int> echoConcurrentQueue = Echo(_concurrentQueue.Ping, _concurrentQueue.Pong, WarmTrips);
            Action<int> echoChannel = Echo(_channel.Ping, _channel.Pong, WarmTrips);
            TierUp.Run(
                TransferTierUp.BudgetMilliseconds,
                [MethodImpl(MethodImplOptions.NoOptimization)] () => PingRaw(WarmTrips, echoRaw),
                [MethodImpl(MethodImplOptions.NoOptimization)] () => Ping(_spsc.Ping, _spsc.Pong, echoSpsc, WarmTrips),
                [MethodImpl(MethodImplOptions.NoOptimization)] () => Ping(_concurrentQueue.Ping, _concurrentQueue.Pong, echoConcurrentQueue, WarmTrips),
                [MethodImpl(MethodImplOptions.NoOptimization)] () => Ping(_channel.Ping, _channel.Pong, echoChannel, WarmTrips));
            ResetFailedTries(); // the warm-up's counts are not the benchmark's
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _echo.Dispose();
        ReportFailedTries();
    }

    /// <summary>The latency floor: two padded fields, no queue.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = RoundTrips)]
    public long RawPaddedFields() => PingRaw(RoundTrips, _echoRaw);

    [Benchmark(OperationsPerInvoke = RoundTrips)]
    public long SpscQueue() => Ping(_spsc.Ping, _spsc.Pong, _echoSpsc, RoundTrips);

    [Benchmark(OperationsPerInvoke = RoundTrips)]
    public long ConcurrentQueue() => Ping(_concurrentQueue.Ping, _concurrentQueue.Pong, _echoConcurrentQueue, RoundTrips);

    /// <summary>A pair of bounded channels (SingleWriter/SingleReader), TryWrite/TryRead with spinning.</summary>
    [Benchmark(OperationsPerInvoke = RoundTrips)]
    public long BoundedChannel() => Ping(_channel.Ping, _channel.Pong, _echoChannel, RoundTrips);

    private long PingRaw(long trips, Action<int> echo, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        Fields fields = _fields;
        _echo.StartRound(echo);
        long failed = 0;
        for (long i = 1; i <= trips; i++)
        {
            Volatile.Write(ref fields.Ping.Value, i);
            while (Volatile.Read(ref fields.Pong.Value) != i)
            {
                failed++;
                if (_echo.IsAborted)
                {
                    break;
                }

                Transfer.PollPause(failed);
            }
        }

        _echo.WaitRound();
        Transfer.Check(Volatile.Read(ref fields.Pong.Value), trips, "last pong");
        // Reset for the next round: both threads are quiescent here.
        fields.Ping.Value = 0;
        fields.Pong.Value = 0;
        Count(trips, _echoFailedPolls, failed, method);
        return failed;
    }

    private long Ping<TQ>(TQ ping, TQ pong, Action<int> echo, long trips, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
        where TQ : struct, IQueueOps
    {
        _echo.StartRound(echo);
        long failed = 0;
        long checksum = 0;
        for (long i = 1; i <= trips; i++)
        {
            if (!ping.TryEnqueue(i))
            {
                _echo.Abort();
                throw new InvalidOperationException("ping queue full");
            }

            checksum += Transfer.PollOne(pong, ref failed, _echo);
        }

        _echo.WaitRound();
        Transfer.Check(checksum, Transfer.SumOneTo(trips), "pong sum");
        Count(trips, _echoFailedPolls, failed, method);
        return checksum;
    }

    private Action<int> Echo<TQ>(TQ ping, TQ pong, long trips)
        where TQ : struct, IQueueOps =>
        _ =>
        {
            long failed = 0;
            for (long i = 1; i <= trips; i++)
            {
                long value = Transfer.PollOne(ping, ref failed, _echo);
                if (value != i && !_echo.IsAborted)
                {
                    throw new InvalidOperationException($"echo: expected {i}, got {value}");
                }

                if (!pong.TryEnqueue(value))
                {
                    throw new InvalidOperationException("pong queue full");
                }
            }

            _echoFailedPolls = failed;
        };

    private static long EchoRaw(Fields fields, RoundWorkers workers, long trips)
    {
        long failed = 0;
        for (long i = 1; i <= trips; i++)
        {
            while (Volatile.Read(ref fields.Ping.Value) != i)
            {
                failed++;
                if (workers.IsAborted)
                {
                    return failed;
                }

                Transfer.PollPause(failed);
            }

            Volatile.Write(ref fields.Pong.Value, i);
        }

        return failed;
    }

    /// <summary>The two flags, each alone in a 256-byte padded region (the library's <see cref="PaddedIndex"/>).</summary>
    private sealed class Fields
    {
        public PaddedIndex Ping;
        public PaddedIndex Pong;
    }
}
