using System.Collections.Concurrent;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// 1P1C throughput: each invocation moves <see cref="Items"/> longs (1..N) from a long-lived producer thread
/// to the consumer (the benchmark thread); per-op = one item moved. The consumer checks the sum. Every queue
/// goes through the same harness (<see cref="Transfer"/>), spinning then yielding on full/empty; the
/// multi-producer/consumer queues run here with one thread per role, measuring the cost of their generality.
/// DESIGN.md target: SpscQueue at capacity 65536 ≥ 6× ConcurrentQueue, 0 B/op; MpmcQueue ≥ 1.5×.
/// On the shared 2-vCPU VM each figure depends on whether the two threads really run at once or are time-sliced (docs/queues.md,
/// docs/benchmarks.md); since session 5 MpmcQueue polls and pauses at both boundaries, which removed its lock-step slow mode
/// when both threads run (6.7-8.1 ns an item against ConcurrentQueue's 10-17 under SCHED_FIFO).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class QueueThroughputBenchmarks : FailedTryBenchmark
{
    /// <summary>Items per invocation.</summary>
    public const int Items = 1 << 20;

    private RoundWorkers _producer = null!;
    private SpscOps _spsc;
    private MpscOps _mpsc;
    private SpmcOps _spmc;
    private MpmcOps _mpmc;
    private ConcurrentQueueOps _concurrentQueue;
    private BlockingCollection<long> _blockingCollection = null!;
    private ChannelOps _boundedChannel;
    private ChannelOps _unboundedChannel;
    private Action<int> _produceSpsc = null!, _produceMpsc = null!, _produceSpmc = null!, _produceMpmc = null!;
    private Action<int> _produceConcurrentQueue = null!, _produceBlockingCollection = null!;
    private Action<int> _produceBoundedChannel = null!, _produceUnboundedChannel = null!;
    private long _failedEnqueues;
    private static bool s_warm;

    /// <summary>Requested capacity of the bounded queues (ConcurrentQueue and the unbounded channel ignore it).</summary>
    [Params(1024, 65536)]
    public int Capacity { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _producer = new RoundWorkers(1, "producer");
        _spsc = new(new SpscQueue<long>(Capacity));
        _mpsc = new(new MpscQueue<long>(Capacity));
        _spmc = new(new SpmcQueue<long>(Capacity));
        _mpmc = new(new MpmcQueue<long>(Capacity));
        _concurrentQueue = new(new ConcurrentQueue<long>());
        _blockingCollection = new BlockingCollection<long>(new ConcurrentQueue<long>(), Capacity);
        _boundedChannel = new(Channels.Bounded(Capacity, singleWriter: true, singleReader: true));
        _unboundedChannel = new(Channels.UnboundedSpsc());
        _produceSpsc = Producer(_spsc);
        _produceMpsc = Producer(_mpsc);
        _produceSpmc = Producer(_spmc);
        _produceMpmc = Producer(_mpmc);
        _produceConcurrentQueue = Producer(_concurrentQueue);
        _produceBlockingCollection = Producer(new BlockingCollectionOps(_blockingCollection));
        _produceBoundedChannel = Producer(_boundedChannel);
        _produceUnboundedChannel = Producer(_unboundedChannel);
        if (!s_warm)
        {
            s_warm = true; // once per process: see TransferTierUp
            TierUp.Run(
                TransferTierUp.BudgetMilliseconds,
                TransferTierUp.Loop(_spsc, _producer),
                TransferTierUp.Loop(_mpsc, _producer),
                TransferTierUp.Loop(_spmc, _producer),
                TransferTierUp.Loop(_mpmc, _producer),
                TransferTierUp.Loop(_concurrentQueue, _producer),
                TransferTierUp.Loop(new BlockingCollectionOps(_blockingCollection), _producer),
                TransferTierUp.Loop(_boundedChannel, _producer),
                TransferTierUp.Loop(_unboundedChannel, _producer));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _producer.Dispose();
        _blockingCollection.Dispose();
        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long ConcurrentQueue() => Run(_concurrentQueue, _produceConcurrentQueue);

    [Benchmark(OperationsPerInvoke = Items)]
    public long SpscQueue() => Run(_spsc, _produceSpsc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long MpscQueue() => Run(_mpsc, _produceMpsc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long SpmcQueue() => Run(_spmc, _produceSpmc);

    [Benchmark(OperationsPerInvoke = Items)]
    public long MpmcQueue() => Run(_mpmc, _produceMpmc);

    /// <summary>Bounded BlockingCollection with its blocking Add/Take (failed-try columns stay 0).</summary>
    [Benchmark(OperationsPerInvoke = Items)]
    public long BlockingCollection() => Run(new BlockingCollectionOps(_blockingCollection), _produceBlockingCollection);

    /// <summary>Bounded Channel, SingleWriter/SingleReader, TryWrite/TryRead with spinning.</summary>
    [Benchmark(OperationsPerInvoke = Items)]
    public long BoundedChannel() => Run(_boundedChannel, _produceBoundedChannel);

    /// <summary>Unbounded Channel, SingleWriter/SingleReader, TryWrite/TryRead with spinning.</summary>
    [Benchmark(OperationsPerInvoke = Items)]
    public long UnboundedChannel() => Run(_unboundedChannel, _produceUnboundedChannel);

    private Action<int> Producer<TQ>(TQ queue)
        where TQ : struct, IQueueOps =>
        _ => _failedEnqueues = Transfer.Produce(queue, 1, Items, _producer);

    private long Run<TQ>(TQ queue, Action<int> produce, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
        where TQ : struct, IQueueOps
    {
        _producer.StartRound(produce);
        (long sum, long failedDequeues) = Transfer.Consume(queue, Items, _producer);
        _producer.WaitRound(); // happens-after the producer's write of _failedEnqueues
        Transfer.Check(sum, Transfer.SumOneTo(Items), "consumer sum");
        Count(Items, _failedEnqueues, failedDequeues, method);
        return sum;
    }
}
