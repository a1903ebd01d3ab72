using System.Runtime.CompilerServices;

namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// Warm-up for the threaded 1P1C classes (session 12). Their benchmark methods move 2^20 items per call, so
/// BenchmarkDotNet calls them only 7-20 times per 100 ms iteration, and the quick job measured their loops mostly on
/// on-stack-replaced code (Tier1-OSR), the final Tier-1 code arriving during the measured iterations or after them
/// (docs/benchmarks.md, "Which code the quick job measures"). Here each queue's producer and consumer loops
/// (<see cref="Transfer"/>, one generic instantiation per queue type, shared by every class that uses it) run short
/// rounds of <see cref="Items"/> items through <see cref="TierUp"/> first, ours and the peers alike, so the measured
/// iterations run the code the runtime keeps. Once per process: the loops are the same code for every case.
/// </summary>
public static class TransferTierUp
{
    /// <summary>Items per warm-up round: small, so a few hundred rounds take a second or two.</summary>
    public const long Items = 4096;

    /// <summary>The longest warm-up of one class: enough for the rounds and pauses two tiering steps need on the loaded VM.</summary>
    public const int BudgetMilliseconds = 6_000;

    /// <summary>One warm-up round of single-item transfers through <paramref name="queue"/>, its sum checked.</summary>
    public static Action Loop<TQ>(TQ queue, RoundWorkers producer)
        where TQ : struct, IQueueOps
    {
        // Never optimized, so they cannot inline the loops they warm (see TierUp, "callers").
        Action<int> produce = [MethodImpl(MethodImplOptions.NoOptimization)] (_) => Transfer.Produce(queue, 1, Items, producer);
        return [MethodImpl(MethodImplOptions.NoOptimization)] () =>
        {
            producer.StartRound(produce);
            (long sum, _) = Transfer.Consume(queue, Items, producer);
            producer.WaitRound();
            Transfer.Check(sum, Transfer.SumOneTo(Items), "warm-up sum");
        };
    }

    /// <summary>One warm-up round of batch transfers through <paramref name="queue"/> (the arrays' length is the batch), its sum checked.</summary>
    public static Action BatchLoop<TQ>(TQ queue, long[] producerBatch, long[] consumerBatch, RoundWorkers producer)
        where TQ : struct, IBatchQueueOps
    {
        Action<int> produce = [MethodImpl(MethodImplOptions.NoOptimization)] (_) => Transfer.ProduceBatches(queue, 1, Items, producerBatch, producer);
        return [MethodImpl(MethodImplOptions.NoOptimization)] () =>
        {
            producer.StartRound(produce);
            (long sum, _) = Transfer.ConsumeBatches(queue, Items, consumerBatch, producer);
            producer.WaitRound();
            Transfer.Check(sum, Transfer.SumOneTo(Items), "warm-up sum");
        };
    }
}
