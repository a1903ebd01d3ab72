using System.Diagnostics;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real threads hammering one <see cref="TokenBucket"/>: the accuracy bound (admitted &lt;= capacity + rate x
/// elapsed) over the whole run, with the manual clock moved by its own thread, and with the system clock.
/// Sizes scale with <see cref="StressScale"/>.
/// </summary>
public sealed class TokenBucketStressTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(64)]
    public void TryAcquire_ManualClockMovedConcurrently_NeverExceedsTheBound(int batch)
    {
        var time = new ManualTimeProvider();
        const long Capacity = 64;
        const double Rate = 1000; // one token per clock step below
        var bucket = new TokenBucket(Capacity, Rate, batch, time);
        int steps = (int)StressScale.Items(3000);
        long[] admitted = new long[3];
        long refused = 0;
        int stop = 0;
        var acquirers = Enumerable.Range(0, admitted.Length).Select(t => new Thread(() =>
        {
            int cost = 1 + t; // 1, 2 and 3 tokens
            while (Volatile.Read(ref stop) == 0)
            {
                if (bucket.TryAcquire(cost))
                {
                    admitted[t] += cost;
                }
                else
                {
                    Interlocked.Increment(ref refused);
                }
            }
        })).ToArray();
        foreach (Thread thread in acquirers)
        {
            thread.Start();
        }

        for (int i = 0; i < steps; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(1), fireTimers: false);
            Thread.SpinWait(200);
        }

        Volatile.Write(ref stop, 1);
        foreach (Thread thread in acquirers)
        {
            Assert.True(thread.Join(StressScale.Timeout(TimeSpan.FromSeconds(30))), "an acquirer hung");
        }

        long total = admitted.Sum();
        output.WriteLine($"batch {batch}: admitted {total} of at most {Capacity + steps} over {steps} ms of manual time; {refused} refusals");
        Assert.InRange(total, 1, Capacity + steps);
        Assert.Equal(total, bucket.AdmittedTokens + OpenBatchSpent(bucket, total));
    }

    [Fact]
    public void TryAcquire_SystemClock_NeverExceedsTheBound()
    {
        const long Capacity = 100;
        const double Rate = 20_000;
        long start = Stopwatch.GetTimestamp();
        var bucket = new TokenBucket(Capacity, Rate);
        long[] admitted = new long[2];
        int stop = 0;
        var acquirers = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                if (bucket.TryAcquire())
                {
                    admitted[t]++;
                }
            }
        })).ToArray();
        foreach (Thread thread in acquirers)
        {
            thread.Start();
        }

        Thread.Sleep(TimeSpan.FromMilliseconds(200 * StressScale.Factor));
        Volatile.Write(ref stop, 1);
        foreach (Thread thread in acquirers)
        {
            Assert.True(thread.Join(StressScale.Timeout(TimeSpan.FromSeconds(30))), "an acquirer hung");
        }

        double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        long total = admitted.Sum();
        double bound = Capacity + (Rate * elapsed) + 1;
        output.WriteLine($"admitted {total} in {elapsed * 1000:F1} ms; bound {bound:F0}");
        Assert.InRange(total, 1, bound);
    }

    [Fact]
    public async Task AcquireAsync_ConcurrentWaitersWithCancellations_EveryTokenAccountedFor()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1000, time);
        Assert.True(bucket.TryAcquire(10));
        int waiters = (int)StressScale.Items(400);
        long granted = 0;
        int cancelled = 0;
        var random = new Random(42);
        var tasks = new List<Task>();
        var sources = new List<CancellationTokenSource>();
        for (int i = 0; i < waiters; i++)
        {
            int tokens = 1 + random.Next(3);
            var cts = new CancellationTokenSource();
            sources.Add(cts);
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    Assert.True(await bucket.AcquireAsync(tokens, cts.Token));
                    Interlocked.Add(ref granted, tokens);
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref cancelled);
                }
            }));
        }

        // Drive the clock and cancel a third of the waiters at random moments, from another thread.
        Task canceller = Task.Run(() =>
        {
            var r = new Random(7);
            foreach (CancellationTokenSource cts in sources.Where(_ => r.Next(3) == 0))
            {
                cts.Cancel();
                Thread.SpinWait(r.Next(2000));
            }
        });
        var deadline = DateTime.UtcNow + StressScale.Timeout(TimeSpan.FromSeconds(60));
        while (tasks.Any(t => !t.IsCompleted))
        {
            Assert.True(DateTime.UtcNow < deadline, $"waiters stuck: {tasks.Count(t => !t.IsCompleted)} of {waiters}, {bucket.QueuedWaiters} queued");
            time.Advance(TimeSpan.FromMilliseconds(1));
            await Task.Yield();
        }

        await canceller.WaitAsync(TimeSpan.FromSeconds(60));
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"{waiters} waiters: {granted} tokens granted, {cancelled} cancelled");
        Assert.Equal(0, bucket.QueuedWaiters);
        Assert.Equal(10 + granted, bucket.AdmittedTokens); // grants are charged exactly; refunds of lost races cancel out
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(10)); // no waiting barrier left behind, no token lost to a cancelled waiter
    }

    /// <summary>Tokens spent from the open batch are charged when it settles: settle it by reading the available count.</summary>
    private static long OpenBatchSpent(TokenBucket bucket, long total)
    {
        long before = bucket.AdmittedTokens;
        _ = bucket.AvailableTokens; // settles the open batch
        return bucket.AdmittedTokens - before;
    }

    [Fact]
    public void TryAcquire_SystemClockRefusalsFromManyThreads_CountedExactly()
    {
        // Capacity 1 at one token per 1000 s: after the first token every answer is a refusal, nearly all of them on
        // the coarse-clock memo, whose count lives in per-thread slots. Not one may be lost, and the threads come and
        // go (so thread ids, and with them slots, are reused).
        var bucket = new TokenBucket(1, 1e-3);
        Assert.True(bucket.TryAcquire());
        int perThread = (int)StressScale.Items(100_000);
        const int Rounds = 4;
        const int Threads = 4;
        long admitted = 0;
        for (int round = 0; round < Rounds; round++)
        {
            var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
            {
                long mine = 0;
                for (int i = 0; i < perThread; i++)
                {
                    mine += (i & 1) == 0 ? (bucket.TryAcquire() ? 1 : 0) : (bucket.TryAcquire(1, out TimeSpan _) ? 1 : 0);
                }

                Interlocked.Add(ref admitted, mine);
            })).ToArray();
            foreach (Thread thread in threads)
            {
                thread.Start();
            }

            foreach (Thread thread in threads)
            {
                Assert.True(thread.Join(StressScale.Timeout(TimeSpan.FromSeconds(60))), "an acquirer hung");
            }

            Assert.Equal(0, admitted);
            Assert.Equal((long)(round + 1) * Threads * perThread, bucket.RefusedCount);
        }
    }
}
