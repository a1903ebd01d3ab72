using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.Tests.Concurrency.PlantedBugs;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// A queue that is never empty (never full) must never answer so. Threads each take an item and put it back, so the
/// queue always holds at least <c>items - threads</c> items and has at least <c>capacity - items</c> free slots: a
/// failed <c>TryDequeue</c> (<c>TryEnqueue</c>) has no moment at which it was true, so it is not linearizable. The .NET
/// runtime's <see cref="System.Collections.Concurrent.ConcurrentQueue{T}"/> fails exactly this during a segment freeze
/// (dotnet/runtime#132736; docs/queues.md, "A note on the peer"). Ours answer empty (full) only from a read of the
/// real tail (head) behind an unready slot. The checker finds the planted twin that trusts its catch-up pause instead.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class QueueNeverEmptyStressTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(16, 8, 4)]
    [InlineData(64, 40, 4)]
    [InlineData(1024, 512, 3)]
    public void MpmcQueue_NeitherEmptyNorFull_NoTakeOrPutEverFails(int capacity, int items, int threads)
    {
        var queue = new MpmcQueue<long>(capacity);
        (long empties, long fulls) = TakeAndPut(new Real(queue), items, threads, StressScale.Items(200_000) / threads);
        Assert.Equal(0, empties);
        Assert.Equal(0, fulls);
        Assert.True(queue.IsEmpty); // the checker took every item back out, each once
    }

    /// <summary>The planted twin answers empty after its catch-up pause without reading the tail: the checker sees it.</summary>
    [Fact]
    public void PlantedTrustCatchUpPause_NeitherEmptyNorFull_FalseEmptiesAreFound()
    {
        long empties = 0, rounds = 0;
        for (int attempt = 0; attempt < 20 && empties == 0; attempt++)
        {
            var ring = new PlantedCatchUpRing<RealAtomics>(16, CatchUpBug.TrustCatchUpPause, multiConsumer: true, pollingProducers: true);
            (empties, _) = TakeAndPut(new Planted(ring), items: 8, threads: 4, rounds: 100_000);
            rounds += 100_000;
        }

        output.WriteLine($"planted: {empties} false empties within {rounds} rounds per thread");
        Assert.True(empties > 0, "the take/put checker never saw the planted false empty");
    }

    private (long Empties, long Fulls) TakeAndPut<TQueue>(TQueue queue, int items, int threads, long rounds)
        where TQueue : ITakePut
    {
        for (long i = 0; i < items; i++)
        {
            Assert.True(queue.Put(i));
        }

        long falseEmpties = 0, falseFulls = 0;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                long empties = 0, fulls = 0;
                for (long r = 0; r < rounds; r++)
                {
                    if (!queue.Take(out long item))
                    {
                        empties++;
                        continue;
                    }

                    while (!queue.Put(item))
                    {
                        fulls++;
                    }
                }

                Interlocked.Add(ref falseEmpties, empties);
                Interlocked.Add(ref falseFulls, fulls);
            });
            workers[t].Start();
        }

        foreach (Thread worker in workers)
        {
            Assert.True(worker.Join(StressScale.Timeout(TimeSpan.FromSeconds(60))));
        }

        output.WriteLine($"{threads} threads x {rounds} take/put rounds: {falseEmpties} false empties, {falseFulls} false fulls");
        var seen = new bool[items];
        for (int i = 0; i < items; i++)
        {
            Assert.True(queue.Take(out long item));
            Assert.False(seen[item]);
            seen[item] = true;
        }

        return (falseEmpties, falseFulls);
    }

    private interface ITakePut
    {
        bool Take(out long item);

        bool Put(long item);
    }

    private readonly struct Real(MpmcQueue<long> queue) : ITakePut
    {
        public bool Take(out long item) => queue.TryDequeue(out item);

        public bool Put(long item) => queue.TryEnqueue(item);
    }

    private readonly struct Planted(PlantedCatchUpRing<RealAtomics> ring) : ITakePut
    {
        public bool Take(out long item)
        {
            bool taken = ring.TryDequeue(out object? boxed);
            item = taken ? (long)boxed! : 0;
            return taken;
        }

        public bool Put(long item) => ring.TryEnqueue(item);
    }
}
