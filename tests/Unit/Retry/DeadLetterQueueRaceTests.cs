using System.Collections.Concurrent;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// A small real-thread race on a <see cref="DeadLetterQueue{T}"/> (review, 2026-11-23): adders, a replayer that takes
/// a few and refuses the rest (so put-backs race the adds), a remover and a taker, at a capacity the adds overflow.
/// Every letter added ends in exactly one place (replayed, removed, taken, evicted or still held) and the statistics
/// agree: Added = Replayed + Removed + Evicted + Count.
/// </summary>
public sealed class DeadLetterQueueRaceTests
{
    [Theory]
    [InlineData(OverflowPolicy.DropOldest)]
    [InlineData(OverflowPolicy.Reject)]
    public void ConcurrentAddsReplaysRemovesAndTakes_EveryLetterAccountedOnce(OverflowPolicy policy)
    {
        const int Adders = 2, PerAdder = 20_000;
        var places = new ConcurrentDictionary<int, string>();
        var duplicates = new ConcurrentBag<string>();
        void Place(int message, string where)
        {
            if (!places.TryAdd(message, where))
            {
                duplicates.Add($"{message}: {places[message]} and {where}");
            }
        }

        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int>
        {
            Capacity = 16,
            FullMode = policy,
            TimeProvider = new ManualTimeProvider(),
            ItemDropped = (l, r) => Place(l.Message, $"dropped {r}"),
        });

        long accepted = 0, rejected = 0;
        int addersLeft = Adders;
        var threads = new List<Thread>();
        for (int a = 0; a < Adders; a++)
        {
            int first = a * PerAdder;
            threads.Add(new Thread(() =>
            {
                for (int i = 0; i < PerAdder; i++)
                {
                    WriteResult result = queue.TryAdd(new DeadLetter<int>(first + i, "s", "r", null, 1, default, default));
                    if (result.Outcome == WriteOutcome.Rejected)
                    {
                        Interlocked.Increment(ref rejected);
                        Place(first + i, "rejected");
                    }
                    else
                    {
                        Interlocked.Increment(ref accepted);
                    }
                }

                Interlocked.Decrement(ref addersLeft);
            }));
        }

        threads.Add(new Thread(() =>
        {
            int round = 0;
            while (Volatile.Read(ref addersLeft) > 0)
            {
                int budget = round++ % 4;
                queue.Replay(l =>
                {
                    if (budget-- <= 0)
                    {
                        return false;
                    }

                    Place(l.Message, "replayed");
                    return true;
                }, l => l.Message % 3 != 0);
            }
        }));
        threads.Add(new Thread(() =>
        {
            while (Volatile.Read(ref addersLeft) > 0)
            {
                queue.RemoveWhere(l => l.Message % 7 == 0);
                if (queue.TryTake(out DeadLetter<int>? taken))
                {
                    Place(taken.Message, "taken");
                }
            }
        }));

        foreach (Thread t in threads)
        {
            t.IsBackground = true;
            t.Start();
        }

        foreach (Thread t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(60)), "a thread did not finish");
        }

        foreach (DeadLetter<int> held in queue.Snapshot())
        {
            Place(held.Message, "held");
        }

        DeadLetterStatistics stats = queue.GetStatistics();
        Assert.Empty(duplicates);
        Assert.Equal(stats.Added, stats.Replayed + stats.Removed + stats.Evicted + stats.Count);
        Assert.Equal(Adders * PerAdder, accepted + rejected);
        Assert.Equal(rejected, stats.Rejected);
        Assert.Equal(accepted, stats.Added);
        Assert.Equal(stats.Replayed, places.Values.Count(v => v == "replayed"));
        Assert.Equal(stats.Evicted, places.Values.Count(v => v == "dropped Oldest"));
        Assert.Equal(stats.Count, places.Values.Count(v => v == "held"));

        // RemoveWhere's letters are not reported anywhere: they are the ones missing, and exactly as many as counted.
        int taken = places.Values.Count(v => v == "taken");
        Assert.Equal(Adders * PerAdder - places.Count, stats.Removed - taken);
    }
}
