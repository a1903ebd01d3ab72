using System.Runtime.CompilerServices;
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
/// Before its first case in a process each class drives every queue's producer and consumer loops to Tier 1
/// (<see cref="WarmUp"/>, <see cref="WarmUpRounds{TQ}"/>), as the 1P1C classes do (<see cref="TransferTierUp"/>).
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
        _workers = NewWorkers();
        int threads = Producers + Consumers;
        if (Environment.ProcessorCount < threads)
        {
            Console.WriteLine($"// NOTE: {GetType().BaseType?.Name ?? GetType().Name} runs {threads} spinning threads on {Environment.ProcessorCount} cores: oversubscribed.");
        }
    }

    /// <summary>The worker threads of one case: every producer, and every consumer but the benchmark thread.</summary>
    private RoundWorkers NewWorkers() => new(Producers + Consumers - 1, "worker");

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

    /// <summary>
    /// Runs <paramref name="rounds"/> (one <see cref="WarmUpRounds{TQ}"/> per queue of the class, ours and the peers) through
    /// <see cref="TierUp"/>, once per process and class (<paramref name="warmed"/>: a static field of the derived class; the
    /// in-process toolchain runs each case on a type derived from it, so <c>GetType()</c> cannot key it); call last from the
    /// derived [GlobalSetup]. Like the 1P1C classes' (session 12), these benchmark methods move 2^20 items per call and the quick job called them too few times to
    /// leave on-stack-replaced code: read off <c>DOTNET_JitDisasmSummary</c> in session 14, <c>Transfer.Produce</c> and
    /// <c>Transfer.Consume</c> ran as Tier1-OSR through both MPMC 1P1C and 2P2C cases and <c>ConsumeUntilDrained</c> reached
    /// Tier 1 only after the first measured iteration. Once per class, not per case: the loops are the same code for
    /// every thread count, and each round runs both consumer loops whatever the layout of the case.
    /// </summary>
    protected void WarmUp(ref bool warmed, params Action[] rounds)
    {
        if (warmed)
        {
            return;
        }

        warmed = true;
        try
        {
            TierUp.RunAndReport(ClassName, TransferTierUp.BudgetMilliseconds, rounds);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            // A peer's round can fail (BlockingCollection<T> and ConcurrentQueue<T> over this runtime's spurious empty:
            // docs/queues.md, "A note on the peer"). The warm-up must not fail the case it runs in, which may be ours: say
            // so, and give the case fresh workers (a failed round leaves these aborted).
            Console.WriteLine($"// LockFree.Note {ClassName} warm-up stopped by a failed round, loops not all at Tier 1: {e.GetBaseException().Message}");
            _workers.Dispose();
            _workers = NewWorkers();
        }
    }

    /// <summary>The benchmark class's name (the in-process toolchain runs it as a generated type derived from it).</summary>
    private string ClassName
    {
        get
        {
            Type type = GetType();
            while (type.BaseType is { } parent && parent != typeof(QueueContentionBenchmarks))
            {
                type = parent;
            }

            return type.Name;
        }
    }

    /// <summary>
    /// The warm-up of one queue: <see cref="TransferTierUp.Items"/> items from the <see cref="Producers"/> producer workers
    /// (<c>Transfer.Produce</c>), read once by this thread alone (<c>Transfer.Consume</c>, the loop of the one-consumer
    /// layouts) and once by this thread and the <c>Consumers - 1</c> consumer workers (<c>Transfer.ConsumeUntilDrained</c>,
    /// the loop of the others); sums and counts checked, nothing counted in the failed-try columns.
    /// </summary>
    protected Action WarmUpRounds<TQ>(TQ queue)
        where TQ : struct, IQueueOps
    {
        const long items = TransferTierUp.Items;
        long share = items / Producers;
        var state = new WarmUpState();
        Action<int> work = [MethodImpl(MethodImplOptions.NoOptimization)] (index) => // never optimized: see TierUp, "callers"
        {
            if (index < Producers)
            {
                Transfer.Produce(queue, 1 + (index * share), share, _workers);
                Interlocked.Increment(ref state.ProducersDone); // release: after this producer's last enqueue
            }
            else if (state.Drain)
            {
                (long sum, long count, _) = Transfer.ConsumeUntilDrained(queue, ref state.ProducersDone, Producers, _workers);
                Interlocked.Add(ref state.WorkerSum, sum);
                Interlocked.Add(ref state.WorkerCount, count);
            }
        };
        return [MethodImpl(MethodImplOptions.NoOptimization)] () => // never optimized: see TierUp, "callers"
        {
            for (int pass = 0; pass < 2; pass++)
            {
                state.Reset(drain: pass == 1);
                _workers.StartRound(work);
                long sum, count;
                if (state.Drain)
                {
                    (sum, count, _) = Transfer.ConsumeUntilDrained(queue, ref state.ProducersDone, Producers, _workers);
                }
                else
                {
                    (sum, _) = Transfer.Consume(queue, items, _workers);
                    count = items;
                }

                _workers.WaitRound();
                Transfer.Check(count + state.WorkerCount, items, "warm-up items consumed");
                Transfer.Check(sum + state.WorkerSum, Transfer.SumOneTo(items), "warm-up sum");
            }
        };
    }

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

    /// <summary>The shared counters of one queue's warm-up rounds (a class, so the workers' delegate can pass its field by reference).</summary>
    private sealed class WarmUpState
    {
        /// <summary>Producers done with this pass (the drain loop's stop condition).</summary>
        public int ProducersDone;

        /// <summary>Sum read by the consumer workers in this pass.</summary>
        public long WorkerSum;

        /// <summary>Items read by the consumer workers in this pass.</summary>
        public long WorkerCount;

        /// <summary>Whether this pass reads with <c>ConsumeUntilDrained</c> (consumer workers too) or with <c>Consume</c> (this thread alone).</summary>
        public bool Drain;

        /// <summary>Clears the counters for a pass; written before the round starts (the workers' start semaphore publishes them).</summary>
        public void Reset(bool drain)
        {
            ProducersDone = 0;
            WorkerSum = 0;
            WorkerCount = 0;
            Drain = drain;
        }
    }
}
