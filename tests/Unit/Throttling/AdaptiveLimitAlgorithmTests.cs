using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>The arithmetic of each algorithm, one window at a time, and its option validation.</summary>
public sealed class AdaptiveLimitAlgorithmTests
{
    private static readonly TimeSpan Ms20 = TimeSpan.FromMilliseconds(20);

    internal static AdaptiveWindow Window(int limit, long samples = 100, long dropped = 0, TimeSpan? latency = null, long? maxInFlight = null, double elapsedSeconds = 1) =>
        new(limit, samples, dropped, samples == 0 ? TimeSpan.Zero : latency ?? Ms20, maxInFlight ?? limit, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(elapsedSeconds));

    [Fact]
    public void Aimd_BusyHealthyWindow_IncreasesByIncrease()
    {
        var aimd = new AimdLimit(new AimdLimitOptions { Increase = 3 });
        Assert.Equal(23, aimd.Update(Window(20)));
    }

    [Fact]
    public void Aimd_IdleWindow_Holds()
    {
        var aimd = new AimdLimit();
        Assert.Equal(20, aimd.Update(Window(20, maxInFlight: 9)));
        Assert.Equal(21, aimd.Update(Window(20, maxInFlight: 10)));
    }

    [Fact]
    public void Aimd_WindowWithDrop_MultipliesByBackoffRatio()
    {
        var aimd = new AimdLimit(new AimdLimitOptions { BackoffRatio = 0.5 });
        Assert.Equal(10, aimd.Update(Window(20, dropped: 1)));
        Assert.Equal(10, aimd.Update(Window(21, samples: 0, dropped: 5)));
    }

    [Fact]
    public void Aimd_LatencyAboveThreshold_BacksOff()
    {
        var aimd = new AimdLimit(new AimdLimitOptions { LatencyThreshold = TimeSpan.FromMilliseconds(50) });
        Assert.Equal(18, aimd.Update(Window(20, latency: TimeSpan.FromMilliseconds(51))));
        Assert.Equal(21, aimd.Update(Window(20, latency: TimeSpan.FromMilliseconds(50))));
    }

    [Fact]
    public void Aimd_AtBounds_StaysWithin()
    {
        var aimd = new AimdLimit(new AimdLimitOptions { MinLimit = 5, MaxLimit = 30, InitialLimit = 10 });
        Assert.Equal(5, aimd.Update(Window(5, dropped: 1)));
        Assert.Equal(30, aimd.Update(Window(30)));
    }

    [Fact]
    public void Gradient_LatencyAtBaseline_GrowsBySmoothedQueueSize()
    {
        var gradient = new GradientLimit(new GradientLimitOptions { QueueSize = 5, Smoothing = 0.2 });
        // First window: baseline = short, gradient = min(1, 1.5) = 1; limit = 0.8·20 + 0.2·(20 + 5) = 21.
        Assert.Equal(21, gradient.Update(Window(20)));
        Assert.Equal(Ms20, gradient.BaselineLatency);
    }

    [Fact]
    public void Gradient_LatencyFarAboveBaseline_ShrinksByAtMostMinGradient()
    {
        var gradient = new GradientLimit(new GradientLimitOptions { QueueSize = 0, Smoothing = 1, Warmup = 1, LongWindow = 1000 });
        Assert.Equal(20, gradient.Update(Window(20)));
        // short = 10× baseline: gradient clamps at 0.5; smoothing 1: limit = 20·0.5 + 0 = 10.
        Assert.Equal(10, gradient.Update(Window(20, latency: TimeSpan.FromMilliseconds(200))));
    }

    [Fact]
    public void Gradient_ModerateQueueing_ShrinksByTheRatio()
    {
        var gradient = new GradientLimit(new GradientLimitOptions { QueueSize = 0, Smoothing = 1, Warmup = 1, LongWindow = 100_000, Tolerance = 1, InitialLimit = 100 });
        gradient.Update(Window(100));
        // long ≈ 20 ms (it barely moves with α = 2e-5), short = 25 ms: gradient ≈ 0.8.
        int next = gradient.Update(Window(100, latency: TimeSpan.FromMilliseconds(25)));
        Assert.InRange(next, 79, 81);
    }

    [Fact]
    public void Gradient_OverloadThatFollowsConcurrency_NeverRaisesTheBaseline()
    {
        // A saturated callee (10 servers, 20 ms each): latency = 20 ms · in-flight / 10, i.e. our own queueing.
        // 500 windows of sustained overload must leave the baseline where the warm-up put it.
        var gradient = new GradientLimit(new GradientLimitOptions { InitialLimit = 40 });
        TimeSpan baseline = DriveSaturated(gradient, servers: 10, windows: 500, out int limit);
        Assert.InRange(baseline.TotalMilliseconds, 19.9, 20.1);
        Assert.InRange(limit, 10, 22); // backed off to about Tolerance · 10 + QueueSize = 19
    }

    [Fact]
    public void Gradient_UngatedBaseline_CreepsUnderTheSameOverload()
    {
        // The planted Gradient2 rule (OverloadLatencyCap = +∞): the same overload pulls the baseline, and the limit, up.
        var gradient = new GradientLimit(new GradientLimitOptions { InitialLimit = 40, OverloadLatencyCap = double.PositiveInfinity });
        TimeSpan baseline = DriveSaturated(gradient, servers: 10, windows: 500, out int limit);
        Assert.True(baseline.TotalMilliseconds > 30, $"baseline {baseline.TotalMilliseconds} ms");
        Assert.True(limit > 22, $"limit {limit}");
    }

    [Fact]
    public void Gradient_LatencyThatIgnoresConcurrency_RaisesTheBaselineAtTheCappedRate()
    {
        // The callee's own latency doubles (40 ms whatever the concurrency, far from saturation): once the limit has
        // moved and latency did not follow, overloaded windows may raise the baseline by at most OverloadLatencyCap.
        var gradient = new GradientLimit(new GradientLimitOptions { InitialLimit = 40, Warmup = 1 });
        int limit = gradient.Update(Window(40, latency: Ms20, maxInFlight: 40));
        double previous = gradient.BaselineLatency.TotalMilliseconds;
        double alpha = 2.0 / (600 + 1);
        for (int i = 0; i < 300; i++)
        {
            limit = gradient.Update(Window(limit, latency: TimeSpan.FromMilliseconds(40), maxInFlight: limit));
            double now = gradient.BaselineLatency.TotalMilliseconds; // 0.1 µs resolution: hence the 1e-3 ms slack below
            Assert.True(now <= (previous * (1 + (alpha * 0.5))) + 1e-3, $"baseline rose faster than the cap: {previous} -> {now} at window {i}");
            previous = now;
        }

        Assert.True(previous > 21, $"the baseline never followed a latency that ignores concurrency: {previous} ms");
    }

    private static TimeSpan DriveSaturated(GradientLimit gradient, int servers, int windows, out int limit)
    {
        limit = 40;
        for (int i = 0; i < 10; i++)
        {
            limit = gradient.Update(Window(limit, latency: Ms20, maxInFlight: Math.Min(limit, servers))); // warm-up below saturation
        }

        for (int i = 0; i < windows; i++)
        {
            double ms = 20.0 * Math.Max(1, (double)limit / servers);
            limit = gradient.Update(Window(limit, latency: TimeSpan.FromMilliseconds(ms), maxInFlight: limit));
        }

        return gradient.BaselineLatency;
    }

    [Fact]
    public void Gradient_AppLimited_Holds()
    {
        var gradient = new GradientLimit();
        Assert.Equal(20, gradient.Update(Window(20, maxInFlight: 9)));
    }

    [Fact]
    public void Gradient_Drops_CutByMinGradient()
    {
        var gradient = new GradientLimit(new GradientLimitOptions { QueueSize = 0, Smoothing = 1, MinGradient = 0.25 });
        Assert.Equal(5, gradient.Update(Window(20, samples: 0, dropped: 3)));
    }

    [Fact]
    public void Gradient_EmptyWindow_Holds()
    {
        var gradient = new GradientLimit();
        Assert.Equal(20, gradient.Update(Window(20, samples: 0)));
    }

    [Fact]
    public void Gradient_BaselineProbe_DropsToMinWaitsForDrainThenResetsBaseline()
    {
        var gradient = new GradientLimit(new GradientLimitOptions { MinLimit = 2, BaselineProbeInterval = TimeSpan.FromSeconds(10) });
        Assert.Equal(21, gradient.Update(Window(20, elapsedSeconds: 1)));
        Assert.False(gradient.IsProbing);
        Assert.Equal(2, gradient.Update(Window(21, latency: TimeSpan.FromMilliseconds(60), elapsedSeconds: 10))); // probe starts
        Assert.True(gradient.IsProbing);
        Assert.Equal(2, gradient.Update(Window(2, latency: TimeSpan.FromMilliseconds(60), maxInFlight: 21, elapsedSeconds: 10.1))); // still draining
        Assert.Equal(21, gradient.Update(Window(2, latency: TimeSpan.FromMilliseconds(10), maxInFlight: 2, elapsedSeconds: 10.2))); // measured
        Assert.False(gradient.IsProbing);
        Assert.Equal(TimeSpan.FromMilliseconds(10), gradient.BaselineLatency);
    }

    [Fact]
    public void Pid_InsideHysteresisBand_Holds()
    {
        var pid = new PidLimit(new PidLimitOptions { TargetLatency = Ms20, Hysteresis = 0.1 });
        Assert.Equal(50, pid.Update(Window(50, latency: TimeSpan.FromMilliseconds(21.9))));
        Assert.Equal(50, pid.Update(Window(50, latency: TimeSpan.FromMilliseconds(18.1))));
    }

    [Fact]
    public void Pid_LatencyBelowTarget_IncreasesProportionally()
    {
        var pid = new PidLimit(new PidLimitOptions { TargetLatency = Ms20, ProportionalGain = 1, IntegralGain = 0, Hysteresis = 0 });
        // e = (20 − 16) / 20 = 0.2 → limit · 1.2.
        Assert.Equal(60, pid.Update(Window(50, latency: TimeSpan.FromMilliseconds(16))));
    }

    [Fact]
    public void Pid_StepIsClampedToMaxStep()
    {
        var pid = new PidLimit(new PidLimitOptions { TargetLatency = Ms20, ProportionalGain = 10, MaxStep = 0.1 });
        Assert.Equal(90, pid.Update(Window(100, dropped: 1)));
    }

    [Fact]
    public void Pid_WithinCooldown_Holds()
    {
        var pid = new PidLimit(new PidLimitOptions { TargetLatency = Ms20, Cooldown = TimeSpan.FromSeconds(1) });
        int first = pid.Update(Window(50, dropped: 1, elapsedSeconds: 10));
        Assert.True(first < 50);
        Assert.Equal(first, pid.Update(Window(first, dropped: 1, elapsedSeconds: 10.5)));
        Assert.True(pid.Update(Window(first, dropped: 1, elapsedSeconds: 11)) < first);
    }

    [Fact]
    public void Pid_SaturatedAtBound_DoesNotWindUp()
    {
        var pid = new PidLimit(new PidLimitOptions { TargetLatency = Ms20, MaxLimit = 100, InitialLimit = 100, Cooldown = TimeSpan.Zero, IntegralLimit = 5 });
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(100, pid.Update(Window(100, latency: TimeSpan.FromMilliseconds(5))));
        }

        Assert.Equal(0, pid.Integral);
        // Overload now: the limit must come down at once, not after unwinding 50 windows of integral.
        Assert.True(pid.Update(Window(100, latency: TimeSpan.FromMilliseconds(60))) < 100);
    }

    [Fact]
    public void Pid_IntegralStaysWithinLimit()
    {
        var pid = new PidLimit(new PidLimitOptions { TargetLatency = Ms20, Cooldown = TimeSpan.Zero, IntegralLimit = 1.5, MinLimit = 1, MaxLimit = 1_000_000, InitialLimit = 10 });
        int limit = 10;
        for (int i = 0; i < 30; i++)
        {
            limit = pid.Update(Window(limit, latency: TimeSpan.FromMilliseconds(1)));
            Assert.InRange(pid.Integral, -1.5, 1.5);
        }
    }

    [Fact]
    public void Pid_SmallLimit_StillMovesOneStep()
    {
        var pid = new PidLimit(new PidLimitOptions { TargetLatency = Ms20, ProportionalGain = 0.01, IntegralGain = 0, MinLimit = 1, InitialLimit = 2 });
        Assert.Equal(3, pid.Update(Window(2, latency: TimeSpan.FromMilliseconds(10))));
    }

    public static TheoryData<Func<AdaptiveLimit>> BadOptions => new()
    {
        () => new AimdLimit(new AimdLimitOptions { MinLimit = 0 }),
        () => new AimdLimit(new AimdLimitOptions { MinLimit = 10, MaxLimit = 9 }),
        () => new AimdLimit(new AimdLimitOptions { InitialLimit = 2000 }),
        () => new AimdLimit(new AimdLimitOptions { MinLimit = 5, InitialLimit = 4 }),
        () => new AimdLimit(new AimdLimitOptions { Increase = 0 }),
        () => new AimdLimit(new AimdLimitOptions { BackoffRatio = 1 }),
        () => new AimdLimit(new AimdLimitOptions { BackoffRatio = 0 }),
        () => new AimdLimit(new AimdLimitOptions { BackoffRatio = double.NaN }),
        () => new AimdLimit(new AimdLimitOptions { LatencyThreshold = TimeSpan.Zero }),
        () => new GradientLimit(new GradientLimitOptions { Tolerance = 0.99 }),
        () => new GradientLimit(new GradientLimitOptions { Tolerance = double.PositiveInfinity }),
        () => new GradientLimit(new GradientLimitOptions { Smoothing = 0 }),
        () => new GradientLimit(new GradientLimitOptions { Smoothing = 1.01 }),
        () => new GradientLimit(new GradientLimitOptions { LongWindow = 0 }),
        () => new GradientLimit(new GradientLimitOptions { Warmup = 0 }),
        () => new GradientLimit(new GradientLimitOptions { Warmup = 601 }),
        () => new GradientLimit(new GradientLimitOptions { QueueSize = -1 }),
        () => new GradientLimit(new GradientLimitOptions { MinGradient = 0 }),
        () => new GradientLimit(new GradientLimitOptions { MinGradient = 1.5 }),
        () => new GradientLimit(new GradientLimitOptions { OverloadLatencyCap = -0.1 }),
        () => new GradientLimit(new GradientLimitOptions { OverloadLatencyCap = double.NaN }),
        () => new GradientLimit(new GradientLimitOptions { BaselineProbeInterval = TimeSpan.Zero }),
        () => new PidLimit(new PidLimitOptions()),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, ProportionalGain = -1 }),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, IntegralGain = double.NaN }),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, DerivativeGain = double.PositiveInfinity }),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, Hysteresis = 1 }),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, Hysteresis = -0.1 }),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, Cooldown = TimeSpan.FromTicks(-1) }),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, MaxStep = 0 }),
        () => new PidLimit(new PidLimitOptions { TargetLatency = Ms20, IntegralLimit = 0 }),
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Constructor_BadOption_ThrowsArgumentOutOfRange(Func<AdaptiveLimit> create) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => create());

    [Fact]
    public void Constructor_NullOptions_UsesDefaultsOrThrows()
    {
        Assert.Equal(20, new AimdLimit(null).InitialLimit);
        Assert.Equal(1000, new GradientLimit(null).MaxLimit);
        Assert.Throws<ArgumentNullException>(() => new PidLimit(null!));
    }
}
