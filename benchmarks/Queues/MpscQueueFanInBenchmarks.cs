using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// 2 producers, 1 consumer (3 spinning threads: OVERSUBSCRIBED on a 2-core machine; see
/// <see cref="QueueContentionBenchmarks"/>): MpscQueue and MpmcQueue against ConcurrentQueue (baseline) and
/// bounded and unbounded Channels (multi-writer, single reader, TryWrite/TryRead with spinning) and a bounded
/// BlockingCollection (TryAdd/TryTake with spinning). Per-op = one item moved.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class MpscQueueFanInBenchmarks : QueueContentionBenchmarks
{
    private MpscOps _mpsc;
    private MpmcOps _mpmc;
    private ConcurrentQueueOps _concurrentQueue;
    private ChannelOps _boundedChannel;
    private ChannelOps _unboundedChannel;
    private BlockingCollectionTryOps _blockingCollection;
    private BlockingCollection<long> _collection = null!;
    private static bool s_warm;
    private Action<int> _workUnboundedChannel = null!, _workBlockingCollection = null!;
    private Action<int> _workMpsc = null!, _workMpmc = null!, _workConcurrentQueue = null!, _workBoundedChannel = null!;

    /// <summary>
    /// Producer threads: 2 (the headline 2P1C), 1, and on a machine with enough cores 4 and 8 (the fan-in scaling
    /// figures). The quick run keeps 2 only.
    /// </summary>
    [ParamsSource(nameof(ProducerCounts))]
    public int ProducerCount { get; set; } = 2;

    /// <summary>The <see cref="ProducerCount"/> values this machine runs: 1, 2, and the larger ones whose threads fit the cores.</summary>
    public static IEnumerable<int> ProducerCounts => new[] { 1, 2, 4, 8 }.Where(n => n <= 2 || n + 1 <= Environment.ProcessorCount);

    /// <inheritdoc/>
    protected override int Producers => ProducerCount;

    /// <inheritdoc/>
    protected override int Consumers => 1;

    [GlobalSetup]
    public void GlobalSetup()
    {
        Setup();
        _mpsc = new(new MpscQueue<long>(Capacity));
        _mpmc = new(new MpmcQueue<long>(Capacity));
        _concurrentQueue = new(new ConcurrentQueue<long>());
        _boundedChannel = new(Channels.Bounded(Capacity, singleWriter: false, singleReader: true));
        _unboundedChannel = new(Channels.Unbounded(singleWriter: false, singleReader: true));
        _collection = new BlockingCollection<long>(new ConcurrentQueue<long>(), Capacity);
        _blockingCollection = new(_collection);
        _workUnboundedChannel = Work(_unboundedChannel);
        _workBlockingCollection = Work(_blockingCollection);
        _workMpsc = Work(_mpsc);
        _workMpmc = Work(_mpmc);
        _workConcurrentQueue = Work(_concurrentQueue);
        _workBoundedChannel = Work(_boundedChannel);
        WarmUp(
            ref s_warm,
            WarmUpRounds(_mpsc),
            WarmUpRounds(_mpmc),
            WarmUpRounds(_concurrentQueue),
            WarmUpRounds(_boundedChannel),
            WarmUpRounds(_unboundedChannel),
            WarmUpRounds(_blockingCollection));
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        Cleanup();
        _collection.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long ConcurrentQueue() => Run(_concurrentQueue, _workConcurrentQueue);

    [Benchmark(OperationsPerInvoke = Items)]
    public long MpscQueue() => Run(_mpsc, _workMpsc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long MpmcQueue() => Run(_mpmc, _workMpmc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long BoundedChannel() => Run(_boundedChannel, _workBoundedChannel);

    /// <summary>Unbounded Channel, TryWrite/TryRead with spinning.</summary>
    [Benchmark(OperationsPerInvoke = Items)]
    public long UnboundedChannel() => Run(_unboundedChannel, _workUnboundedChannel);

    /// <summary>Bounded BlockingCollection, non-blocking TryAdd/TryTake with spinning.</summary>
    [Benchmark(OperationsPerInvoke = Items)]
    public long BlockingCollection() => Run(_blockingCollection, _workBlockingCollection);
}
