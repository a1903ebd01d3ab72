using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real-thread stress of <see cref="WorkStealingDeque{T}"/>: one owner pushing bursts and popping part of them,
/// 1-3 thieves mixing TrySteal, TryStealBatch and TryStealBatchAndPop, every item boxed (so the slot clearing
/// runs) and accounted for exactly once by <see cref="ExactlyOnceChecker"/>. Runs in rounds with a fresh deque of
/// a small initial capacity each round, so the buffer grows many times under steals. Sizes scale with
/// <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class DequeStressTests(ITestOutputHelper output)
{
    private const long ItemsPerTest = 200_000;
    private const int Rounds = 40;
    private static readonly TimeSpan TimeoutAtScaleOne = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(3, 4)]
    [InlineData(1, 64)]
    public void OwnerAndThieves_EveryItemTakenExactlyOnce(int thieves, int initialCapacity)
    {
        long total = StressScale.Items(ItemsPerTest);
        long perRound = total / Rounds;
        total = perRound * Rounds;
        var logs = new List<long>[thieves + 1];
        for (int i = 0; i < logs.Length; i++)
        {
            logs[i] = [];
        }

        WorkStealingDeque<object>? current = null;
        bool done = false;
        long steals = 0, batches = 0, retries = 0, empties = 0, grows = 0;
        var clock = Stopwatch.StartNew();
        using var start = new Barrier(thieves + 1); // everyone running before the first push (thread start-up is slow on busy cores)

        var owner = new Thread(() =>
        {
            var rng = new Random(12345 + thieves);
            start.SignalAndWait();
            long next = 0;
            for (int round = 0; round < Rounds; round++)
            {
                var deque = new WorkStealingDeque<object>(initialCapacity);
                Volatile.Write(ref current, deque);
                long end = next + perRound;
                while (next < end)
                {
                    // A random walk biased towards pushing, so the deque keeps growing and shrinking around
                    // the thieves; short pauses let the thieves catch up (and race for the last items).
                    int r = rng.Next(100);
                    if (r < 55)
                    {
                        deque.Push(ExactlyOnceChecker.Encode(0, next++));
                    }
                    else if (deque.TryPop(out object? item))
                    {
                        logs[0].Add((long)item);
                    }

                    if (r < 4)
                    {
                        Thread.SpinWait(rng.Next(1, 400));
                    }
                    else if ((next & 255) == 0 && r == 4)
                    {
                        Thread.Yield(); // on oversubscribed cores, hand the thieves a time slice now and then
                    }
                }

                while (deque.TryPop(out object? item))
                {
                    logs[0].Add((long)item);
                }

                Interlocked.Add(ref grows, deque.Capacity);
            }

            Volatile.Write(ref done, true);
        });

        var thiefThreads = new Thread[thieves];
        for (int t = 0; t < thieves; t++)
        {
            int id = t + 1;
            thiefThreads[t] = new Thread(() =>
            {
                var own = new WorkStealingDeque<object>(1);
                start.SignalAndWait();
                var batch = new List<long>();
                var spinner = default(SpinWait);
                long k = 0, myRetries = 0, mySteals = 0, myBatches = 0, myEmpties = 0;
                while (true)
                {
                    bool finished = Volatile.Read(ref done);
                    WorkStealingDeque<object>? victim = Volatile.Read(ref current);
                    if (victim is null)
                    {
                        Thread.Yield();
                        continue;
                    }

                    StealResult r;
                    switch (k++ % 3)
                    {
                        case 0:
                            r = victim.Stealer.TrySteal(out object? item);
                            if (r == StealResult.Success)
                            {
                                logs[id].Add((long)item!);
                                mySteals++;
                            }

                            break;
                        case 1:
                            r = victim.Stealer.TryStealBatch(own, out int moved);
                            if (r == StealResult.Success)
                            {
                                Assert.InRange(moved, 1, 32);
                                Drain(own, batch, logs[id], moved);
                                myBatches++;
                            }

                            break;
                        default:
                            r = victim.Stealer.TryStealBatchAndPop(own, out object? first);
                            if (r == StealResult.Success)
                            {
                                logs[id].Add((long)first!);
                                Drain(own, batch, logs[id], -1);
                                myBatches++;
                            }

                            break;
                    }

                    if (r == StealResult.Retry)
                    {
                        myRetries++;
                    }
                    else if (r == StealResult.Empty)
                    {
                        myEmpties++;
                        if (finished)
                        {
                            break;
                        }

                        spinner.SpinOnce(sleep1Threshold: -1);
                    }
                }

                Interlocked.Add(ref steals, mySteals);
                Interlocked.Add(ref batches, myBatches);
                Interlocked.Add(ref retries, myRetries);
                Interlocked.Add(ref empties, myEmpties);
            });
        }

        owner.Start();
        foreach (Thread t in thiefThreads)
        {
            t.Start();
        }

        TimeSpan timeout = StressScale.Timeout(TimeoutAtScaleOne);
        Assert.True(owner.Join(timeout), $"owner did not finish within {timeout}");
        foreach (Thread t in thiefThreads)
        {
            Assert.True(t.Join(timeout), $"a thief did not finish within {timeout}");
        }

        // The owner pops LIFO, so only the thieves' logs are in push order; the owner's is checked for exactly-once only.
        logs[0].Sort();
        var report = new ExactlyOnceChecker(1, total).Check(logs);
        output.WriteLine($"{total} items, {thieves} thieves, initial capacity {initialCapacity}: owner popped {logs[0].Count}, " +
            $"{steals} single steals, {batches} batch steals, {retries} retries, {empties} empty, thieves took {logs.Skip(1).Sum(l => l.Count)}, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(report.IsExact, report.ToString());
    }

    /// <summary>Pops what a batch steal moved into the thief's own deque and logs it oldest first.</summary>
    private static void Drain(WorkStealingDeque<object> own, List<long> scratch, List<long> log, int expected)
    {
        scratch.Clear();
        while (own.TryPop(out object? item))
        {
            scratch.Add((long)item);
        }

        Assert.True(expected < 0 || scratch.Count == expected, $"moved {expected} but the thief's deque held {scratch.Count}");
        for (int i = scratch.Count - 1; i >= 0; i--)
        {
            log.Add(scratch[i]);
        }
    }
}
