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
}
