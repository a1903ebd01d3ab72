using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Timers;

/// <summary>
/// Steady state of a delay queue holding <see cref="Pending"/> items due an hour from now (scheduled work, pending
/// retries): each operation enqueues one item due at once and dequeues it, single thread. So each operation pays
/// the clock twice and a heap insert and removal at the depth that <see cref="Pending"/> items give. Per-op = one
/// enqueue+dequeue pair; every dequeued item is checked. <see cref="DelayQueue{T}"/> against a
/// <see cref="PriorityQueue{TElement, TPriority}"/> + lock delay queue (baseline). Target: 0 B/op.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class DelayQueuePendingBenchmarks : FailedTryBenchmark
{
    /// <summary>Enqueue+dequeue pairs per invocation.</summary>
    public const int Pairs = 1 << 12;

    private static readonly TimeSpan Far = TimeSpan.FromHours(1);

    private DelayQueue<long> _queue = null!;
    private LockedPriorityDelayQueue<long> _baseline = null!;

    /// <summary>Items pending (not yet due) in the queue while it is measured.</summary>
    [Params(1_000, 100_000, 1_000_000)]
    public int Pending { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _queue = new DelayQueue<long>(Pending + 1, new DelayQueueOptions<long> { FullMode = OverflowPolicy.Reject });
        _baseline = new LockedPriorityDelayQueue<long>(Pending + 1);
        for (int i = 0; i < Pending; i++)
        {
            Transfer.Check(_queue.TryEnqueue(-1, Far).IsAccepted ? 1 : 0, 1, "setup enqueue");
            Transfer.Check(_baseline.TryEnqueue(-1, Far) ? 1 : 0, 1, "setup enqueue (baseline)");
        }

        Transfer.Check(_queue.TryDequeue(out _) ? 1 : 0, 0, "nothing due after setup"); // moves the pending items into the heap
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Transfer.Check(_queue.Count, Pending, "pending items left");
        Transfer.Check(_baseline.Count, Pending, "pending items left (baseline)");
        _queue.Dispose();
        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public long PriorityQueueWithLock()
    {
        long sum = 0, failedEnqueues = 0, failedDequeues = 0;
        for (long value = 1; value <= Pairs; value++)
        {
            if (!_baseline.TryEnqueue(value, TimeSpan.Zero))
            {
                failedEnqueues++;
            }

            if (_baseline.TryDequeue(out long item))
            {
                sum += item;
            }
            else
            {
                failedDequeues++;
            }
        }

        return Finish(sum, failedEnqueues, failedDequeues);
    }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long DelayQueue()
    {
        long sum = 0, failedEnqueues = 0, failedDequeues = 0;
        for (long value = 1; value <= Pairs; value++)
        {
            if (!_queue.TryEnqueue(value, TimeSpan.Zero).IsAccepted)
            {
                failedEnqueues++;
            }

            if (_queue.TryDequeue(out long item))
            {
                sum += item;
            }
            else
            {
                failedDequeues++;
            }
        }

        return Finish(sum, failedEnqueues, failedDequeues);
    }

    private long Finish(long sum, long failedEnqueues, long failedDequeues, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        // Each item enqueued due now is the root at once, so it is the one dequeued: no failures, the exact sum.
        Transfer.Check(failedEnqueues + failedDequeues, 0, "failed enqueue/dequeue");
        Transfer.Check(sum, Transfer.SumOneTo(Pairs), "sum dequeued");
        Count(Pairs, failedEnqueues, failedDequeues, method);
        return sum;
    }
}
