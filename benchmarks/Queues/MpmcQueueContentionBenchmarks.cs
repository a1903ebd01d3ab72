using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// <see cref="Pairs"/> producers and as many consumers (2P2C is OVERSUBSCRIBED on a 2-core machine: 4 spinning
/// threads; see <see cref="QueueContentionBenchmarks"/>; on a many-core machine 4 and 8 pairs give the scaling
/// figures): MpmcQueue against ConcurrentQueue (baseline), bounded and unbounded
/// Channels (multi-writer, multi-reader, TryWrite/TryRead with spinning) and a bounded BlockingCollection
/// (TryAdd/TryTake with spinning). Per-op = one item moved.
/// DESIGN.md target: ≥ 1.5× ConcurrentQueue, ≥ 10× bounded Channel.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class MpmcQueueContentionBenchmarks : QueueContentionBenchmarks
{
    private MpmcOps _mpmc;
    private ConcurrentQueueOps _concurrentQueue;
    private ChannelOps _boundedChannel;
    private ChannelOps _unboundedChannel;
    private BlockingCollectionTryOps _blockingCollection;
    private BlockingCollection<long> _collection = null!;
    private static bool s_warm;
    private Action<int> _workUnboundedChannel = null!, _workBlockingCollection = null!;
    private Action<int> _workMpmc = null!, _workConcurrentQueue = null!, _workBoundedChannel = null!;

    /// <summary>
    /// Producers, and as many consumers: 2 (the headline 2P2C, oversubscribed on 2 cores), 1, and on a machine with
    /// enough cores 4 and 8 (the scaling figures). The quick run keeps 2 only.
    /// </summary>
    [ParamsSource(nameof(PairCounts))]
    public int Pairs { get; set; } = 2;

    /// <summary>The <see cref="Pairs"/> values this machine runs: 1, 2, and the larger ones whose threads fit the cores.</summary>
    public static IEnumerable<int> PairCounts => new[] { 1, 2, 4, 8 }.Where(n => n <= 2 || 2 * n <= Environment.ProcessorCount);

    /// <inheritdoc/>
    protected override int Producers => Pairs;

    /// <inheritdoc/>
    protected override int Consumers => Pairs;

    [GlobalSetup]
    public void GlobalSetup()
    {
        Setup();
        _mpmc = new(new MpmcQueue<long>(Capacity));
        _concurrentQueue = new(new ConcurrentQueue<long>());
        _boundedChannel = new(Channels.Bounded(Capacity, singleWriter: false, singleReader: false));
        _unboundedChannel = new(Channels.Unbounded(singleWriter: false, singleReader: false));
        _collection = new BlockingCollection<long>(new ConcurrentQueue<long>(), Capacity);
        _blockingCollection = new(_collection);
        _workUnboundedChannel = Work(_unboundedChannel);
        _workBlockingCollection = Work(_blockingCollection);
        _workMpmc = Work(_mpmc);
        _workConcurrentQueue = Work(_concurrentQueue);
        _workBoundedChannel = Work(_boundedChannel);
        WarmUp(
            ref s_warm,
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
