using System.Reflection;
using Xunit;
using static LockFree.Tests.Unit.Throttling.AdaptiveLimitAlgorithmTests;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>Arithmetic edge cases of the adaptive limit algorithms: long-running counters, extreme inputs, the bounds.</summary>
public sealed class AdaptiveLimitEdgeTests
{
    [Fact]
    public void Gradient_WindowCounterPastIntMaxValue_BaselineKeepsFollowingLatency()
    {
        var gradient = new GradientLimit(new GradientLimitOptions { LongWindow = 9, Warmup = 1 }); // α = 2 / (9 + 1) = 0.2
        gradient.Update(Window(20, latency: TimeSpan.FromMilliseconds(1)));
        Assert.Equal(TimeSpan.FromMilliseconds(1), gradient.BaselineLatency);

        // The state after 2^31 - 1 closed windows: 24.8 days of 1 ms windows, 6.8 years of 100 ms ones. The counter used
        // to wrap to int.MinValue, which reads as "warming up" with a weight of 1 / -2^31 (the baseline froze, moving
        // backwards), and 2^31 windows later divided by zero: an infinite or NaN baseline, and the limit pinned at MinLimit.
        typeof(GradientLimit).GetField("_windows", BindingFlags.NonPublic | BindingFlags.Instance)!.SetValue(gradient, int.MaxValue);

        gradient.Update(Window(20, latency: TimeSpan.FromMilliseconds(1.2))); // within tolerance: the plain exponential step
        Assert.Equal(TimeSpan.FromMilliseconds(1.04), gradient.BaselineLatency);
        for (int i = 0; i < 50; i++)
        {
            int limit = gradient.Update(Window(20, latency: TimeSpan.FromMilliseconds(1.2)));
            Assert.InRange(limit, 1, 1000);
        }

        Assert.InRange(gradient.BaselineLatency, TimeSpan.FromMilliseconds(1.19), TimeSpan.FromMilliseconds(1.2));
    }

    [Fact]
    public void Update_ExtremeWindowsTheLimiterCanProduce_StaysWithinBoundsAndRecovers()
    {
        var random = new Random(7);
        TimeSpan[] latencies = [TimeSpan.Zero, TimeSpan.FromTicks(1), TimeSpan.FromMicroseconds(1), TimeSpan.FromMilliseconds(20), TimeSpan.FromMicroseconds((1L << 31) - 1)];
        for (int round = 0; round < 200; round++)
        {
            var algorithms = new AdaptiveLimit[]
            {
                new AimdLimit(new AimdLimitOptions { MinLimit = 2, MaxLimit = 50, InitialLimit = 10 }),
                new GradientLimit(new GradientLimitOptions { MinLimit = 2, MaxLimit = 50, InitialLimit = 10, LongWindow = random.Next(1, 20), Warmup = 1, BaselineProbeInterval = random.Next(2) == 0 ? null : TimeSpan.FromSeconds(1) }),
                new PidLimit(new PidLimitOptions { MinLimit = 2, MaxLimit = 50, InitialLimit = 10, TargetLatency = TimeSpan.FromMilliseconds(20), Cooldown = TimeSpan.Zero, DerivativeGain = 0.3 }),
            };
            foreach (AdaptiveLimit algorithm in algorithms)
            {
                int limit = algorithm.InitialLimit;
                double elapsed = 0;
                for (int step = 0; step < 60; step++)
                {
                    elapsed += random.NextDouble() * (random.Next(10) == 0 ? 1e6 : 1); // now and then a window days long
                    long samples = random.Next(4) == 0 ? 0 : random.Next(1, 1 << 20);
                    var window = new AdaptiveWindow(
                        limit,
                        samples,
                        random.Next(3) == 0 ? random.Next(0, 1000) : 0,
                        samples == 0 ? TimeSpan.Zero : latencies[random.Next(latencies.Length)],
                        random.Next(3) == 0 ? 0 : random.Next(0, 4 * limit),
                        TimeSpan.FromSeconds(random.NextDouble()),
                        TimeSpan.FromSeconds(elapsed));
                    limit = Math.Clamp(algorithm.Update(window), algorithm.MinLimit, algorithm.MaxLimit); // as the engine does
                    Assert.InRange(algorithm.Update(window with { Limit = limit }), int.MinValue, int.MaxValue); // never throws
                }

                // Then a healthy, busy stretch: every algorithm climbs off the floor (a NaN state would pin it at
                // MinLimit). Baseline probes (one per second) hold MinLimit for a window or two: look at the best of the end.
                int best = 0;
                for (int step = 0; step < 400; step++)
                {
                    elapsed += 0.1;
                    limit = Math.Clamp(algorithm.Update(new AdaptiveWindow(limit, 100, 0, TimeSpan.FromMilliseconds(1), limit, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(elapsed))), algorithm.MinLimit, algorithm.MaxLimit);
                    best = step >= 380 ? Math.Max(best, limit) : 0;
                }

                Assert.True(best > algorithm.MinLimit, $"{algorithm.GetType().Name} round {round}: stuck at {limit}");
                if (algorithm is GradientLimit gradient)
                {
                    Assert.True(gradient.BaselineLatency >= TimeSpan.Zero && gradient.BaselineLatency <= TimeSpan.FromMicroseconds(1L << 31), $"baseline {gradient.BaselineLatency}");
                }

                if (algorithm is PidLimit pid)
                {
                    Assert.True(double.IsFinite(pid.Integral));
                }
            }
        }
    }
}
