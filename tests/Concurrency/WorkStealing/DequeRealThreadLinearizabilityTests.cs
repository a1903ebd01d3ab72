using System.Diagnostics;
using LockFree.Tests.Concurrency.Linearizability;
using Xunit;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// Deque histories recorded on real threads (real cores, the hardware memory model) and checked against
/// <see cref="DequeSpec"/>: one owner pushing and popping, two thieves mixing single steals and batch steals
/// (each batch recorded as one Steal per item, all with the batch's call/return interval). Threads meet at a
/// barrier every round, which gives the checker its quiescent split points; within a round they race on a
/// deque that starts at capacity 1, so last-item races and growth under steals are frequent.
/// </summary>
public sealed class DequeRealThreadLinearizabilityTests
{
    private const int Thieves = 2;

    private static int Rounds => 400 * Math.Max(1, int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) ? s : 1);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void OwnerAndTwoThieves_RealThreads_Linearizable(int seed)
    {
        var history = Run(seed, spuriousEmpty: false);
        LinearizabilityResult result = LinearizabilityChecker.CheckInSegments(new DequeSpec(), history);
        Assert.True(result.IsLinearizable, result.Explanation);
    }

    [Fact]
    public void PlantedSpuriousEmptySteal_RealThreads_IsFound()
    {
        // Proof of power: thieves that sometimes answer Empty without looking must be rejected.
        var history = Run(3, spuriousEmpty: true);
        Assert.False(LinearizabilityChecker.CheckInSegments(new DequeSpec(), history).IsLinearizable);
    }

    private static List<Operation<DequeInput, DequeOutput>> Run(int seed, bool spuriousEmpty)
    {
        var deque = new WorkStealingDeque<int>(1);
        var logs = new List<Operation<DequeInput, DequeOutput>>[Thieves + 1];
        for (int t = 0; t < logs.Length; t++)
        {
            logs[t] = [];
        }

        RealThreadRounds.Run(Thieves + 1, Rounds, seed, thread =>
        {
            var own = new WorkStealingDeque<int>(1);
            int next = 1;
            return random =>
            {
                int ops = random.Next(1, 5);
                for (int i = 0; i < ops; i++)
                {
                    if (thread == 0)
                    {
                        Owner(deque, logs[0], random, ref next);
                    }
                    else
                    {
                        Thief(deque, own, logs[thread], thread, random, spuriousEmpty);
                    }
                }
            };
        });

        return logs.SelectMany(l => l).ToList();
    }

    private static void Owner(WorkStealingDeque<int> deque, List<Operation<DequeInput, DequeOutput>> log, Random random, ref int next)
    {
        long start = Begin();
        if (random.Next(5) < 3)
        {
            int value = next++;
            deque.Push(value);
            log.Add(new(0, new DequeInput(DequeOpKind.Push, value), DequeOutput.Pushed, start, End()));
        }
        else
        {
            bool ok = deque.TryPop(out int item);
            log.Add(new(0, new DequeInput(DequeOpKind.Pop), ok ? DequeOutput.Item(item) : DequeOutput.Empty, start, End()));
        }
    }

    private static void Thief(WorkStealingDeque<int> victim, WorkStealingDeque<int> own, List<Operation<DequeInput, DequeOutput>> log, int thread, Random random, bool spuriousEmpty)
    {
        var steal = new DequeInput(DequeOpKind.Steal);
        long start = Begin();
        int kind = random.Next(3);
        if (kind == 0 || (spuriousEmpty && random.Next(3) == 0))
        {
            int item = 0;
            StealResult r = spuriousEmpty && kind != 0 ? StealResult.Empty : victim.Stealer.TrySteal(out item);
            log.Add(new(thread, steal, r == StealResult.Success ? DequeOutput.Item(item) : new DequeOutput(r), start, End()));
            return;
        }

        int first = 0;
        StealResult result = kind == 1
            ? victim.Stealer.TryStealBatch(own, out _)
            : victim.Stealer.TryStealBatchAndPop(own, out first);
        long end = End();
        if (result != StealResult.Success)
        {
            log.Add(new(thread, steal, new DequeOutput(result), start, end));
            return;
        }

        var items = new List<int>();
        while (own.TryPop(out int item))
        {
            items.Add(item);
        }

        items.Reverse(); // popped newest first; the batch took them oldest first
        if (kind == 2)
        {
            items.Insert(0, first);
        }

        foreach (int item in items)
        {
            log.Add(new(thread, steal, DequeOutput.Item(item), start, end));
        }
    }

    private static long Begin()
    {
        long start = Stopwatch.GetTimestamp();
        Interlocked.MemoryBarrier(); // the call's loads cannot be satisfied before the call time
        return start;
    }

    private static long End()
    {
        Interlocked.MemoryBarrier(); // the call's stores are visible before the return time (see HistoryRecorder)
        return Stopwatch.GetTimestamp();
    }
}
