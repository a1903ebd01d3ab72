using LockFree.Backpressure;
using Xunit;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// The operation pool (both tiers, session 13; the second a try-locked stack since session 21) hands each object to one renter at a time: threads rent up to a few objects
/// each, mark them held (an exchange that must find them free), and give them back, around the first tier's boundary, so
/// Rent and Return race on both tiers and on the second tier's creation. A double hand-out shows as a held mark found
/// set; a pool that stops handing objects back shows in the count of objects created.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class OperationPoolStressTests
{
    [Theory]
    [InlineData(2, 6)]   // 12 in flight: across the first tier's eight
    [InlineData(4, 16)]  // 64 in flight: past the overflow stack's first capacity (56)
    [InlineData(4, 200)] // 800 in flight: the stack grows under racing calls (to 1,016 at most)
    public void RentAndReturn_RacingOnBothTiers_EachObjectHasOneHolder(int threads, int perThread)
    {
        var pool = new OperationPool<Token>();
        int rounds = (int)(StressScale.Items(20_000) / threads);
        (long doubles, long created) = Run(pool.Rent, pool.Return, threads, perThread, rounds);
        Assert.Equal(0, doubles);

        // A Rent racing a Return may miss the object being put back (the pool is lock-free in its first tier and only tries its second tier's lock, so it is not exact) and create one, so
        // the count of objects is not exact; but objects are reused, and the pool keeps at most MaxSize.
        // With hundreds in flight the second tier's lock is contended and a call that finds it taken a few times gives up
        // (allocates or drops): still far fewer objects than rents (one in 16 of a thread's rents at the most here).
        long bound = (long)rounds * Math.Max(1, perThread / 16);
        Assert.True(created < bound, $"{created} objects created for {rounds} rounds of {perThread} rents per thread: the pool does not hand objects back");
        Assert.InRange(pool.Count, 1, OperationPool<Token>.MaxSize);
    }

    /// <summary>The checker finds a planted pool whose take is a read, then a separate clear (two renters can take one object).</summary>
    [Fact]
    public void PlantedReadThenClearTake_IsFound()
    {
        var slots = new Token?[8];
        Token? Rent()
        {
            for (int i = 0; i < slots.Length; i++)
            {
                Token? item = Volatile.Read(ref slots[i]);
                if (item is not null)
                {
                    Thread.Yield(); // widen the planted window
                    Volatile.Write(ref slots[i], null); // planted: not an exchange
                    return item;
                }
            }

            return null;
        }

        void Return(Token item)
        {
            for (int i = 0; i < slots.Length; i++)
            {
                if (Interlocked.CompareExchange(ref slots[i], item, null) is null)
                {
                    return;
                }
            }
        }

        long doubles = 0;
        for (int attempt = 0; attempt < 20 && doubles == 0; attempt++)
        {
            (doubles, _) = Run(Rent, Return, threads: 4, perThread: 2, rounds: 20_000);
        }

        Assert.True(doubles > 0, "the checker never saw the planted double hand-out");
    }

    private static (long Doubles, long Created) Run(Func<Token?> rent, Action<Token> giveBack, int threads, int perThread, int rounds)
    {
        long doubles = 0, created = 0;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                var held = new Token[perThread];
                for (int round = 0; round < rounds; round++)
                {
                    int count = 1 + (round % perThread);
                    for (int i = 0; i < count; i++)
                    {
                        Token? token = rent();
                        if (token is null)
                        {
                            token = new Token();
                            Interlocked.Increment(ref created);
                        }

                        Interlocked.Add(ref doubles, Interlocked.Exchange(ref token.Held, 1)); // 1: another renter holds it too
                        held[i] = token;
                    }

                    for (int i = 0; i < count; i++)
                    {
                        Volatile.Write(ref held[i].Held, 0);
                        giveBack(held[i]);
                    }
                }
            });
        }

        foreach (Thread worker in workers)
        {
            worker.Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        return (Interlocked.Read(ref doubles), Interlocked.Read(ref created));
    }

    private sealed class Token
    {
        public int Held;
    }
}
