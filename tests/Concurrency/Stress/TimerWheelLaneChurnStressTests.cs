using System.Diagnostics;
using LockFree.Internal;
using LockFree.Timers;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Review of the wheel's lanes (issue 6), real threads: more wheels than a thread keeps lanes for, so every
/// scheduling thread abandons and re-creates lanes all the time (the driver retires the abandoned ones while other
/// threads still cancel the timers scheduled through them), threads that end mid-stream, and cross-thread cancels
/// (notices through the canceller's own lane). Checks at quiescence, per wheel: every timer fired xor was cancelled
/// by exactly one successful Cancel; FiredCount and CancelledCount agree with what the callbacks and the callers
/// saw (nothing lost, nothing counted twice); every lane retired; the pool audit passes.
/// </summary>
public sealed class TimerWheelLaneChurnStressTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public void ManualDriver_ThreadsChurnLanesAcrossTenWheels_CountsAndPoolStayExact()
    {
        const int Wheels = 10; // > MaxLanesPerThread (8): lanes are abandoned and re-created continually
        const int Threads = 3;
        int waves = (int)Math.Max(2, StressScale.Items(3));
        int perThread = (int)StressScale.Items(4_000);
        int total = waves * Threads * perThread;
        var wheels = Enumerable.Range(0, Wheels)
            .Select(_ => new TimerWheelEngine<RealAtomics>(TimeSpan.FromMilliseconds(1), TimeProvider.System, 1 << 16, laneRingSize: 8))
            .ToArray();
        var fired = new int[total];
        var cancelled = new int[total];
        var handles = new TimerHandle[total];
        var wheelOf = new int[total];
        var published = new int[total];
        Action<object?> callback = s => Interlocked.Increment(ref fired[(int)s!]);
        long tick = 0;
        bool done = false;
        var clock = Stopwatch.StartNew();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var driver = new Thread(() =>
        {
            try
            {
                while (!Volatile.Read(ref done) && clock.Elapsed < Deadline)
                {
                    long t = ++tick;
                    foreach (TimerWheelEngine<RealAtomics> w in wheels)
                    {
                        w.AdvanceTo(t);
                    }
                }
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        })
        { IsBackground = true };
        driver.Start();
        for (int wave = 0; wave < waves; wave++)
        {
            int waveIndex = wave;
            var threads = Enumerable.Range(0, Threads).Select(id => new Thread(() =>
            {
                try
                {
                    var rng = new Random((waveIndex * 977) + id);
                    int first = ((waveIndex * Threads) + id) * perThread;
                    for (int n = 0; n < perThread; n++)
                    {
                        int k = first + n;
                        int w = (n / 3) % Wheels; // three in a row on a wheel (a lane on the second), then the next wheel
                        wheelOf[k] = w;
                        handles[k] = wheels[w].Schedule(TimeSpan.FromMilliseconds(rng.Next(0, 4)), callback, k);
                        Volatile.Write(ref published[k], 1);
                        int roll = rng.Next(4);
                        int victim = roll == 0 ? k : roll == 1 ? k - rng.Next(1, 64) : roll == 2 ? rng.Next(0, Math.Max(1, first)) : -1;
                        if (victim >= 0 && Volatile.Read(ref published[victim]) == 1 && wheels[wheelOf[victim]].Cancel(handles[victim]))
                        {
                            Interlocked.Increment(ref cancelled[victim]);
                        }
                    }
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            foreach (Thread t in threads)
            {
                Assert.True(t.Join(Deadline), "a scheduling thread did not finish");
            }

            Assert.True(failures.IsEmpty, $"a thread failed: {(failures.TryPeek(out Exception? f) ? f : null)}");
        }

        Assert.True(SpinWait.SpinUntil(() => wheels.All(w => w.LaneCount == 0), Deadline), "lanes of ended threads were not retired");
        Volatile.Write(ref done, true);
        Assert.True(driver.Join(Deadline), "the driver did not finish");
        Assert.True(failures.IsEmpty, $"the driver failed: {(failures.TryPeek(out Exception? d) ? d : null)}");
        long firedSum = 0, cancelledSum = 0;
        foreach (TimerWheelEngine<RealAtomics> w in wheels)
        {
            w.AdvanceTo(tick + 100);
            w.AdvanceTo(tick + 101); // a cancellation's notice drained after the last one
            Assert.Equal(0, w.PendingCount);
            Assert.Null(w.AuditPool());
            firedSum += w.FiredCount;
            cancelledSum += w.CancelledCount;
        }

        for (int k = 0; k < total; k++)
        {
            Assert.True(fired[k] + cancelled[k] == 1, $"timer {k}: fired {fired[k]}, cancelled {cancelled[k]}");
        }

        Assert.Equal(fired.Sum(), firedSum);
        Assert.Equal(cancelled.Sum(), cancelledSum);
        output.WriteLine($"{waves} waves x {Threads} threads over {Wheels} wheels: {total} timers, {cancelledSum} cancelled, {tick} ticks, {clock.Elapsed.TotalMilliseconds:F0} ms");
        foreach (TimerWheelEngine<RealAtomics> w in wheels)
        {
            w.Dispose();
        }
    }
}
