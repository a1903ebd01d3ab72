using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>
/// The gradient limit's baseline (long-window latency) under a long overload with latency as the only signal (the
/// service queues without bound, no drops): the service of <see cref="AdaptiveLimitSimulationTests"/> (C = 40, base
/// latency 20 ms, processor sharing beyond C), an open-loop client at 2× capacity, capacity C for 20 s, C/4 for 60 s,
/// then C again for 30 s. The bands are the ones stated in docs/adaptive-limits.md.
/// </summary>
public sealed class GradientBaselineSimulationTests(ITestOutputHelper output)
{
    private const int C = 40;
    private const double OverloadStart = 20;
    private const double OverloadEnd = 80;
    private const double End = 110;

    [Theory]
    [InlineData(42UL)]
    [InlineData(1UL)]
    [InlineData(2UL)]
    public void GradientLimit_SustainedOverloadLatencyOnly_BaselineHoldsLimitBacksOffAndRecovers(ulong seed)
    {
        (LimiterSimulation sim, List<(double Seconds, double BaselineMs)> baseline) = Run(new GradientLimit(), seed);
        Report($"gradient, 60 s overload, latency only, seed {seed}", sim, baseline);
        AssertHolds(sim, baseline);
    }

    [Fact]
    public void Checks_UncappedBaseline_FailTheSustainedOverloadChecks()
    {
        // Proof of power: the Gradient2 rule (every window feeds the long average in full) must fail these checks.
        (LimiterSimulation sim, List<(double Seconds, double BaselineMs)> baseline) =
            Run(new GradientLimit(new GradientLimitOptions { OverloadLatencyCap = double.PositiveInfinity }), seed: 42);
        Report("gradient, uncapped baseline", sim, baseline);
        Assert.ThrowsAny<Exception>(() => AssertHolds(sim, baseline));
    }

    [Fact]
    public void GradientLimit_NoLoadLatencyDoublesForGood_BaselineFollowsAndLimitReturns()
    {
        // Not every latency rise is our own queueing: at 20 s the service's no-load latency doubles (20 -> 40 ms) at
        // the same capacity. The limit first backs off (it cannot tell yet); while it comes down the latency does not
        // follow it, so the baseline is let up (at α·OverloadLatencyCap per window) until the gradient stops cutting,
        // and the limit returns to where the service is fully used again (at least C in flight).
        var gradient = new GradientLimit();
        var service = new SimulatedService { Capacity = C, QueueLimit = 100_000 };
        var sim = new LimiterSimulation(gradient, service, seed: 42, offeredRate: 2.0 * C / service.BaseLatency.TotalSeconds);
        sim.At(20, () => service.BaseLatency = TimeSpan.FromMilliseconds(40));
        sim.RunUntil(100);
        Report("gradient, no-load latency doubles at 20 s", sim, []);
        int before = sim.LimitsBetween(10, 20).Min();
        Assert.True(sim.LimitsBetween(20, 30).Min() < before / 2, "the limit did not react to the latency rise");
        int[] after = sim.LimitsBetween(60, 100);
        AdaptiveLimitSimulationTests.AssertBand(after, C, 2.0 * C, "after the baseline caught up");
        AdaptiveLimitSimulationTests.AssertNoOscillation(after, maxStep: 0.2, maxReversalsPer10s: 25, deadband: 1);
        Assert.InRange(gradient.BaselineLatency.TotalMilliseconds, 26, 44);
    }

    private static (LimiterSimulation Sim, List<(double Seconds, double BaselineMs)> Baseline) Run(GradientLimit gradient, ulong seed)
    {
        var service = new SimulatedService { Capacity = C, QueueLimit = 100_000 };
        var sim = new LimiterSimulation(gradient, service, seed, offeredRate: 2.0 * C / service.BaseLatency.TotalSeconds);
        sim.At(OverloadStart, () => service.Capacity = C / 4);
        sim.At(OverloadEnd, () => service.Capacity = C);
        var baseline = new List<(double, double)>();
        for (int s = 5; s < End; s += 5)
        {
            int at = s;
            sim.At(at, () => baseline.Add((at, gradient.BaselineLatency.TotalMilliseconds)));
        }

        sim.RunUntil(End);
        return (sim, baseline);
    }

    private static void AssertHolds(LimiterSimulation sim, List<(double Seconds, double BaselineMs)> baseline)
    {
        // Converged: the limit settles where latency ≈ Tolerance × baseline: 1.5·C + QueueSize ≈ 64.
        int[] converged = sim.LimitsBetween(5, OverloadStart);
        AdaptiveLimitSimulationTests.AssertBand(converged, 1.25 * C, 1.8 * C, "converged phase");
        AdaptiveLimitSimulationTests.AssertNoOscillation(converged, maxStep: 0.2, maxReversalsPer10s: 25, deadband: 1);

        // Backs off within 3 s to about 1.5·C/4 + QueueSize ≈ 19, and keeps backing off for the whole minute: the
        // last 10 s of the overload are no higher than the first 10 s after settling (no creep).
        int[] reduced = sim.LimitsBetween(OverloadStart + 3, OverloadEnd);
        AdaptiveLimitSimulationTests.AssertBand(reduced, 1, 2.2 * C / 4, "overload phase");
        AdaptiveLimitSimulationTests.AssertNoOscillation(reduced, maxStep: 0.2, maxReversalsPer10s: 25, deadband: 1);
        int early = sim.LimitsBetween(OverloadStart + 3, OverloadStart + 13).Max();
        int late = sim.LimitsBetween(OverloadEnd - 10, OverloadEnd).Max();
        Assert.True(late <= early + 1, $"the limit crept up during the overload: {early} early, {late} late");

        // The baseline stays near the no-load latency (20 ms ± 10% jitter) through the overload.
        foreach ((double seconds, double ms) in baseline.Where(b => b.Seconds >= 10))
        {
            Assert.True(ms <= 20 * 1.15, $"baseline {ms:0.0} ms at {seconds} s");
        }

        // Recovers: back in the converged band within 7 s of the capacity returning, without oscillating.
        int[] recovered = sim.LimitsBetween(OverloadEnd + 7, End);
        AdaptiveLimitSimulationTests.AssertBand(recovered, 1.25 * C, 1.8 * C, "recovered phase");
        AdaptiveLimitSimulationTests.AssertNoOscillation(recovered, maxStep: 0.2, maxReversalsPer10s: 25, deadband: 1);
    }

    private void Report(string name, LimiterSimulation sim, List<(double Seconds, double BaselineMs)> baseline)
    {
        output.WriteLine($"{name}: served {sim.Service.Served}, dropped {sim.Service.Dropped}, shed {sim.Shed}");
        output.WriteLine(string.Join(' ', sim.Limits.Where((_, i) => i % 10 == 0).Select(s => $"{s.Seconds:0}:{s.Limit}")));
        output.WriteLine("baseline ms: " + string.Join(' ', baseline.Select(b => $"{b.Seconds:0}:{b.BaselineMs:0.0}")));
    }
}
