using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// Single-threaded, uncontended cost of one enqueue + dequeue pair (per-op = one pair) for every queue
/// against ConcurrentQueue (baseline). Shows the fixed cost of each algorithm (a CAS per claim for the
/// multi-role sides, none for the single-role ones) and, with MemoryDiagnoser, that none allocates (0 B).
/// The dequeued values are checked.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class QueueUncontendedBenchmarks
{
    /// <summary>Pairs per invocation.</summary>
    public const int Pairs = 1024;

    private const int Capacity = 1024;

    private SpscOps _spsc;
    private MpscOps _mpsc;
    private SpmcOps _spmc;
    private MpmcOps _mpmc;
    private ConcurrentQueueOps _concurrentQueue;

    [GlobalSetup]
    public void Setup()
    {
        _spsc = new(new SpscQueue<long>(Capacity));
        _mpsc = new(new MpscQueue<long>(Capacity));
        _spmc = new(new SpmcQueue<long>(Capacity));
        _mpmc = new(new MpmcQueue<long>(Capacity));
        _concurrentQueue = new(new ConcurrentQueue<long>());
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public long ConcurrentQueue() => RunPairs(_concurrentQueue);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long SpscQueue() => RunPairs(_spsc);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long MpscQueue() => RunPairs(_mpsc);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long SpmcQueue() => RunPairs(_spmc);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long MpmcQueue() => RunPairs(_mpmc);

    private static long RunPairs<TQ>(TQ queue)
        where TQ : struct, IQueueOps
    {
        long sum = 0;
        for (long i = 1; i <= Pairs; i++)
        {
            if (!queue.TryEnqueue(i) || !queue.TryDequeue(out long item) || item != i)
            {
                throw new InvalidOperationException($"pair {i} failed");
            }

            sum += item;
        }

        return sum;
    }
}
