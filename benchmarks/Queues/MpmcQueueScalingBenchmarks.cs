using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// Scaling with the thread count, for a many-core machine: <see cref="Pairs"/> producers and as many consumers
/// through one queue (the benchmark thread is one of the consumers). MpmcQueue against ConcurrentQueue (baseline)
/// and a bounded Channel; per-op = one item moved. On a machine with fewer cores than 2 × Pairs the threads
/// oversubscribe it (the setup prints a note), and the figures measure the scheduler more than the queue.
/// Not in the quick run; run it with <c>--filter '*QueueScaling*'</c>.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class MpmcQueueScalingBenchmarks : QueueContentionBenchmarks
{
    private MpmcOps _mpmc;
    private ConcurrentQueueOps _concurrentQueue;
    private ChannelOps _boundedChannel;
    private Action<int> _workMpmc = null!, _workConcurrentQueue = null!, _workBoundedChannel = null!;

    /// <summary>Producers, and consumers, each.</summary>
    [Params(1, 2, 4, 8)]
    public int Pairs { get; set; } = 1;

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
        _workMpmc = Work(_mpmc);
        _workConcurrentQueue = Work(_concurrentQueue);
        _workBoundedChannel = Work(_boundedChannel);
    }

    [GlobalCleanup]
    public void GlobalCleanup() => Cleanup();

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long ConcurrentQueue() => Run(_concurrentQueue, _workConcurrentQueue);

    [Benchmark(OperationsPerInvoke = Items)]
    public long MpmcQueue() => Run(_mpmc, _workMpmc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long BoundedChannel() => Run(_boundedChannel, _workBoundedChannel);
}
