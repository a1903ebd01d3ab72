using LockFree.Internal;
using Xunit;

namespace LockFree.Tests.Unit.Internal;

public sealed class ThreadOwnedCounterTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public void Increment_OneThread_SumCountsEveryCall()
    {
        var counter = new ThreadOwnedCounter();
        Assert.Equal(0, counter.Sum());
        for (int i = 1; i <= 1000; i++)
        {
            counter.Increment();
            Assert.Equal(i, counter.Sum());
        }
    }

    [Fact]
    public void Increment_ManyThreadsAtOnce_NoIncrementLostAndReadsNeverGoDown()
    {
        var counter = new ThreadOwnedCounter();
        const int Threads = 8;
        const int PerThread = 200_000;
        int running = Threads;
        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < PerThread; i++)
            {
                counter.Increment();
            }

            Interlocked.Decrement(ref running);
        })).ToArray();
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        long last = 0;
        while (Volatile.Read(ref running) > 0)
        {
            long now = counter.Sum();
            Assert.True(now >= last, $"the sum went down from {last} to {now}");
            last = now;
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(Generous), "an incrementing thread hung");
        }

        Assert.Equal((long)Threads * PerThread, counter.Sum());
    }

    [Fact]
    public void Increment_ThreadsComeAndGo_ReusedIdsContinueTheirSlots()
    {
        // Short-lived threads, a few at a time: the runtime reuses their managed ids, so later threads count on slots
        // that dead threads wrote. Every count must survive the hand-over.
        var counter = new ThreadOwnedCounter();
        const int Generations = 50;
        const int Width = 3;
        const int PerThread = 1000;
        for (int g = 0; g < Generations; g++)
        {
            var threads = Enumerable.Range(0, Width).Select(_ => new Thread(() =>
            {
                for (int i = 0; i < PerThread; i++)
                {
                    counter.Increment();
                }
            })).ToArray();
            foreach (Thread thread in threads)
            {
                thread.Start();
            }

            foreach (Thread thread in threads)
            {
                Assert.True(thread.Join(Generous), "an incrementing thread hung");
            }
        }

        Assert.Equal((long)Generations * Width * PerThread, counter.Sum());
    }

    [Fact]
    public void SharedPlainCell_ManyThreads_LosesIncrements()
    {
        // The planted bug the exact-sum checks above exist for: threads sharing one cell with a plain
        // read-then-write (what a processor-striped counter without atomics would do when two threads meet on a
        // stripe) lose updates, and an exact total catches it. Lost updates are a race, so try a few times.
        const int Threads = 4;
        const int PerThread = 5_000_000;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            var cell = new long[1];
            using var gate = new Barrier(Threads); // all at once: a thread started late would just run alone
            var threads = Enumerable.Range(0, Threads).Select(n => new Thread(() =>
            {
                _ = gate.SignalAndWait(Generous); // bounded; a late start only makes a loss less likely
                for (int i = 0; i < PerThread; i++)
                {
                    Volatile.Write(ref cell[0], Volatile.Read(ref cell[0]) + 1);
                }
            })).ToArray();
            foreach (Thread thread in threads)
            {
                thread.Start();
            }

            foreach (Thread thread in threads)
            {
                Assert.True(thread.Join(Generous), "an incrementing thread hung");
            }

            if (cell[0] < (long)Threads * PerThread)
            {
                return; // the exact-total check sees the loss
            }
        }

        Assert.Fail("a shared plain cell never lost an increment in 10 attempts: the exact-total check would not catch the bug");
    }
}
