using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// Fan-in scaling: <see cref="ProducerCount"/> producers, one consumer (the benchmark thread). MpscQueue and
/// MpmcQueue against ConcurrentQueue (baseline) and a bounded single-reader Channel. Oversubscribed when the
/// machine has fewer cores than producers + 1. Not in the quick run; <c>--filter '*QueueScaling*'</c>.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class MpscQueueScalingBenchmarks : QueueContentionBenchmarks
{
    private MpscOps _mpsc;
    private MpmcOps _mpmc;
    private ConcurrentQueueOps _concurrentQueue;
    private ChannelOps _boundedChannel;
    private Action<int> _workMpsc = null!, _workMpmc = null!, _workConcurrentQueue = null!, _workBoundedChannel = null!;

    /// <summary>Producer threads.</summary>
    [Params(1, 2, 4, 8)]
    public int ProducerCount { get; set; } = 1;

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
        _workMpsc = Work(_mpsc);
        _workMpmc = Work(_mpmc);
        _workConcurrentQueue = Work(_concurrentQueue);
        _workBoundedChannel = Work(_boundedChannel);
    }

    [GlobalCleanup]
    public void GlobalCleanup() => Cleanup();

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long ConcurrentQueue() => Run(_concurrentQueue, _workConcurrentQueue);

    [Benchmark(OperationsPerInvoke = Items)]
    public long MpscQueue() => Run(_mpsc, _workMpsc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long MpmcQueue() => Run(_mpmc, _workMpmc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long BoundedChannel() => Run(_boundedChannel, _workBoundedChannel);
}
