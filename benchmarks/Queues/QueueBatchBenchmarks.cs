using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// 1P1C batch throughput at capacity 65536: TryEnqueueMany/TryDequeueMany with <see cref="BatchSize"/>
/// items per call against single-item calls on the same queue; per-op = one item moved, the consumer checks
/// the sum. Every case moves the same <see cref="Items"/> values 1..N through a queue of the same capacity with the
/// same long-lived producer thread, spinning then yielding on a failed call (one that moved nothing); the batch
/// producer fills its batch array, the batch consumer sums its array, as a caller of the batch API would. Two groups,
/// each against its own queue's single-item calls: SPSC and MPMC. DESIGN.md target: batch ≥ 2× single-item (ratio
/// ≤ 0.5). Session 5 (2-vCPU VM): the SPSC batch paths publish one run per batch and copy in contiguous segments, the
/// MPMC consumers pause at the empty end; see docs/queues.md "Batches" for the figures and why SPSC stays short of 2×
/// when its single-item path streams at full speed.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class QueueBatchBenchmarks : FailedTryBenchmark
{
    /// <summary>Items per invocation.</summary>
    public const int Items = 1 << 20;

    private const int Capacity = 65536;

    private RoundWorkers _producer = null!;
    private SpscOps _spsc;
    private MpmcOps _mpmc;
    private long[] _producerBatch = null!;
    private long[] _consumerBatch = null!;
    private Action<int> _produceSpsc = null!, _produceSpscBatches = null!, _produceMpmc = null!, _produceMpmcBatches = null!;
    private long _failedEnqueues;
    private static bool s_warm;

    /// <summary>Items per TryEnqueueMany / TryDequeueMany call (the single-item methods ignore it).</summary>
    [Params(16, 64)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _producer = new RoundWorkers(1, "producer");
        _spsc = new(new SpscQueue<long>(Capacity));
        _mpmc = new(new MpmcQueue<long>(Capacity));
        _producerBatch = new long[BatchSize];
        _consumerBatch = new long[BatchSize];
        _produceSpsc = _ => _failedEnqueues = Transfer.Produce(_spsc, 1, Items, _producer);
        _produceMpmc = _ => _failedEnqueues = Transfer.Produce(_mpmc, 1, Items, _producer);
        _produceSpscBatches = _ => _failedEnqueues = Transfer.ProduceBatches(_spsc, 1, Items, _producerBatch, _producer);
        _produceMpmcBatches = _ => _failedEnqueues = Transfer.ProduceBatches(_mpmc, 1, Items, _producerBatch, _producer);
        if (!s_warm)
        {
            s_warm = true; // once per process (the batch loops' code does not depend on the batch size): see TransferTierUp
            TierUp.Run(
                TransferTierUp.BudgetMilliseconds,
                TransferTierUp.Loop(_spsc, _producer),
                TransferTierUp.BatchLoop(_spsc, new long[BatchSize], new long[BatchSize], _producer),
                TransferTierUp.Loop(_mpmc, _producer),
                TransferTierUp.BatchLoop(_mpmc, new long[BatchSize], new long[BatchSize], _producer));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _producer.Dispose();
        ReportFailedTries();
    }

    [BenchmarkCategory("Spsc")]
    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long SpscSingle()
    {
        _producer.StartRound(_produceSpsc);
        (long sum, long failed) = Transfer.Consume(_spsc, Items, _producer);
        return Finish(sum, failed);
    }

    [BenchmarkCategory("Spsc")]
    [Benchmark(OperationsPerInvoke = Items)]
    public long SpscBatch()
    {
        _producer.StartRound(_produceSpscBatches);
        (long sum, long failed) = Transfer.ConsumeBatches(_spsc, Items, _consumerBatch, _producer);
        return Finish(sum, failed);
    }

    [BenchmarkCategory("Mpmc")]
    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long MpmcSingle()
    {
        _producer.StartRound(_produceMpmc);
        (long sum, long failed) = Transfer.Consume(_mpmc, Items, _producer);
        return Finish(sum, failed);
    }

    [BenchmarkCategory("Mpmc")]
    [Benchmark(OperationsPerInvoke = Items)]
    public long MpmcBatch()
    {
        _producer.StartRound(_produceMpmcBatches);
        (long sum, long failed) = Transfer.ConsumeBatches(_mpmc, Items, _consumerBatch, _producer);
        return Finish(sum, failed);
    }

    private long Finish(long sum, long failedDequeues, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        _producer.WaitRound();
        Transfer.Check(sum, Transfer.SumOneTo(Items), "consumer sum");
        Count(Items, _failedEnqueues, failedDequeues, method);
        return sum;
    }
}
