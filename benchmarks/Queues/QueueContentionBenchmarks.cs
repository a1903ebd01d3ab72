using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Queues;

/// <summary>
/// Shared harness of the multi-producer / multi-consumer benchmarks: <see cref="Producers"/> worker threads
/// each enqueue their share of <see cref="Items"/>, the benchmark thread consumes, and
/// <c>Consumers - 1</c> more worker threads consume beside it until every producer is done and the queue is
/// empty. Sums and counts are checked. With 2 producers and 2 consumers that is 4 spinning threads: on a
/// machine with fewer than 4 cores (this project's 2-vCPU VMs) the figures are OVERSUBSCRIBED and measure
/// scheduling as much as the queues; <see cref="Setup"/> prints a note when that is the case.
/// </summary>
public abstract class QueueContentionBenchmarks : FailedTryBenchmark
{
    /// <summary>Items per invocation, all producers together.</summary>
    public const int Items = 1 << 20;

    /// <summary>Requested capacity of the bounded queues.</summary>
    protected const int Capacity = 65536;

    private RoundWorkers _workers = null!;
    private long _failedEnqueues;
    private long _failedDequeues;
    private long _workerSum;
    private long _workerCount;
    private int _producersDone;

    /// <summary>Producer threads.</summary>
    protected abstract int Producers { get; }

    /// <summary>Consumer threads, the benchmark thread included.</summary>
    protected abstract int Consumers { get; }

    /// <summary>Creates the worker threads; call first from the derived [GlobalSetup].</summary>
    protected void Setup()
    {
        _workers = new RoundWorkers(Producers + Consumers - 1, "worker");
        int threads = Producers + Consumers;
        if (Environment.ProcessorCount < threads)
        {
            Console.WriteLine($"// NOTE: {GetType().BaseType?.Name ?? GetType().Name} runs {threads} spinning threads on {Environment.ProcessorCount} cores: oversubscribed.");
        }
    }

    /// <summary>Stops the worker threads and reports the failed-try counts; the derived [GlobalCleanup].</summary>
    protected void Cleanup()
    {
        _workers.Dispose();
        ReportFailedTries();
    }

    /// <summary>Builds the per-round worker delegate for a queue (once, at setup).</summary>
    protected Action<int> Work<TQ>(TQ queue)
        where TQ : struct, IQueueOps =>
        index =>
        {
            if (index < Producers)
            {
                long share = Items / Producers;
                long failed = Transfer.Produce(queue, 1 + (index * share), share, _workers);
                Interlocked.Add(ref _failedEnqueues, failed);
                Interlocked.Increment(ref _producersDone); // release: after this producer's last enqueue
            }
            else
            {
                (long sum, long count, long failed) = Transfer.ConsumeUntilDrained(queue, ref _producersDone, Producers, _workers);
                Interlocked.Add(ref _workerSum, sum);
                Interlocked.Add(ref _workerCount, count);
                Interlocked.Add(ref _failedDequeues, failed);
            }
        };

    /// <summary>One round: start the workers, consume on this thread, check the totals.</summary>
    protected long Run<TQ>(TQ queue, Action<int> work, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
        where TQ : struct, IQueueOps
    {
        _failedEnqueues = _failedDequeues = _workerSum = _workerCount = 0;
        _producersDone = 0;
        _workers.StartRound(work);
        long sum, count, failed;
        if (Consumers == 1)
        {
            (sum, failed) = Transfer.Consume(queue, Items, _workers);
            count = Items;
        }
        else
        {
            (sum, count, failed) = Transfer.ConsumeUntilDrained(queue, ref _producersDone, Producers, _workers);
        }

        _workers.WaitRound();
        Transfer.Check(count + _workerCount, Items, "items consumed");
        Transfer.Check(sum + _workerSum, Transfer.SumOneTo(Items), "consumer sum");
        Count(Items, _failedEnqueues, failed + _failedDequeues, method);
        return sum;
    }
}
