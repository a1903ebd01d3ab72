using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real threads on a <see cref="TokenBucket"/> with per-thread caches, the manual clock moved in steps by its own
/// thread. Every admission is tagged with the clock step read before and after the call; every window of steps
/// [a, b] must hold at most capacity + rate x (b - a) steps' worth of the admissions certainly inside it. A cached
/// token used after the settlement that charged it breaks a short window (the whole run's total would not show it).
/// Sizes scale with <see cref="StressScale"/>.
/// </summary>
public sealed class TokenBucketThreadCacheStressTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(0)] // control: no caches
    [InlineData(2)]
    [InlineData(16)]
    public void TryAcquire_CachedManualClockMovedConcurrently_EveryWindowWithinTheBound(int threadCache)
    {
        var time = new ManualTimeProvider();
        const long Capacity = 512;
        const long PerStep = 64; // tokens refilled per 1 ms step
        var bucket = new TokenBucket(Capacity, PerStep * 1000, fastPathBatch: 128, time, threadCache);
        int steps = (int)StressScale.Items(1500);
        long step = 0; // 2 x the clock step while the clock stands, odd while it moves
        int stop = 0;
        var perStep = new long[3][];
        var acquirers = Enumerable.Range(0, perStep.Length).Select(t => new Thread(() =>
        {
            long[] mine = perStep[t] = new long[steps + 2];
            int cost = 1 + t; // 1, 2 and 3 tokens
            while (Volatile.Read(ref stop) == 0)
            {
                long before = Volatile.Read(ref step);
                if (bucket.TryAcquire(cost))
                {
                    long after = Volatile.Read(ref step);
                    if (before == after && (before & 1) == 0)
                    {
                        mine[before >> 1] += cost; // certainly inside step `before` (others are left out: a subset keeps the check sound)
                    }
                }
            }
        })).ToArray();
        foreach (Thread thread in acquirers)
        {
            thread.Start();
        }

        for (int i = 0; i < steps; i++)
        {
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + (System.Diagnostics.Stopwatch.Frequency / 20_000); // 50 µs a step
            while (System.Diagnostics.Stopwatch.GetTimestamp() < until)
            {
                Thread.SpinWait(20);
            }

            Volatile.Write(ref step, (2 * i) + 1); // odd: the clock is moving
            time.Advance(TimeSpan.FromMilliseconds(1), fireTimers: false);
            Volatile.Write(ref step, 2 * (i + 1)); // even: step i + 1
        }

        Volatile.Write(ref stop, 1);
        foreach (Thread thread in acquirers)
        {
            Assert.True(thread.Join(StressScale.Timeout(TimeSpan.FromSeconds(30))), "an acquirer hung");
        }

        long[] admitted = new long[steps + 1];
        for (int s = 0; s <= steps; s++)
        {
            admitted[s] = perStep.Sum(p => p[s]);
        }

        long worst = long.MinValue;
        for (int a = 0; a <= steps; a++)
        {
            long inside = 0;
            for (int b = a; b <= steps; b++)
            {
                inside += admitted[b];
                long slack = Capacity + (PerStep * (b - a)) - inside;
                worst = Math.Max(worst, -slack);
                Assert.True(slack >= 0, $"{inside} tokens admitted within steps [{a}, {b}], bound {Capacity + (PerStep * (b - a))}");
            }
        }

        output.WriteLine($"thread cache {threadCache}: {admitted.Sum()} tokens over {steps} steps (at most {Capacity + (PerStep * steps)}); closest window {-worst} under its bound; {bucket.CachedThreads} threads cached");
        // A cache serves requests smaller than itself (with 2, only the one-token thread); a thread the scheduler never
        // ran before the end has none.
        Assert.InRange(bucket.CachedThreads, 0, threadCache == 0 ? 0 : threadCache > 3 ? perStep.Length : 1);
    }
}
