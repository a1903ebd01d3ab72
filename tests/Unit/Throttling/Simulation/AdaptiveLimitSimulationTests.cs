using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>
/// Each algorithm against the simulated service (capacity C = 40, base latency 20 ms, drops above 1.25·C in the
/// service) with an open-loop client offering twice what the service can serve. Phases: [0, 20) s capacity C;
/// [20, 35) s capacity C/4 (drops above 13); [35, 55) s capacity C again. The bands asserted here are the ones
/// stated in docs/adaptive-limits.md. Deterministic (seeded), about half a second of CPU per scenario.
/// </summary>
public sealed class AdaptiveLimitSimulationTests(ITestOutputHelper output)
{
    private const int C = 40;

    public static TheoryData<string> Algorithms => new() { "aimd", "gradient", "pid" };

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Limit_AgainstSimulatedService_ConvergesStaysInBandBacksOffAndRecovers(string algorithm)
    {
        LimiterSimulation sim = RunScenario(Create(algorithm), seed: 42, queueLimit: C / 4, reducedQueueLimit: 3);
        Report(algorithm, sim);

        // Converges: from the initial limit 20 (C/2) into the band within 5 s, and stays there.
        int[] converged = sim.LimitsBetween(5, 20);
        AssertBand(converged, 0.9 * C, 1.3 * C, "converged phase");
        AssertNoOscillation(converged, maxStep: 0.2, maxReversalsPer10s: 25);

        // Backs off: capacity drops to C/4 at 20 s; within 3 s (30 windows) the limit is at most 2·C/4, and stays so.
        AssertBand(sim.LimitsBetween(23, 35), 1, 2 * C / 4, "reduced-capacity phase");

        // Recovers: capacity back to C at 35 s; within 7 s the limit is back in the converged band.
        int[] recovered = sim.LimitsBetween(42, 55);
        AssertBand(recovered, 0.9 * C, 1.3 * C, "recovered phase");
        AssertNoOscillation(recovered, maxStep: 0.2, maxReversalsPer10s: 25);

        // The service is kept busy: goodput over the run is at least 85% of what it could serve (2000/s at C, 500/s at C/4).
        double capacityWork = ((20 + 20) * C / 0.02) + (15 * (C / 4) / 0.02);
        Assert.True(sim.Service.Served >= 0.85 * capacityWork, $"served {sim.Service.Served} of {capacityWork}");
    }

    [Fact]
    public void Checks_NonAdaptiveLimit_FailBackoff()
    {
        // Proof of power: a limit that never moves (set inside the converged band) passes the convergence band but
        // must fail the back-off check, and one that only grows must fail the band.
        LimiterSimulation fixedLimit = RunScenario(new FixedLimit(48), seed: 42, queueLimit: C / 4, reducedQueueLimit: 3);
        AssertBand(fixedLimit.LimitsBetween(5, 20), 0.9 * C, 1.3 * C, "converged phase");
        Assert.ThrowsAny<Exception>(() => AssertBand(fixedLimit.LimitsBetween(23, 35), 1, 2 * C / 4, "reduced-capacity phase"));

        LimiterSimulation greedy = RunScenario(new GreedyLimit(), seed: 42, queueLimit: C / 4, reducedQueueLimit: 3);
        Assert.ThrowsAny<Exception>(() => AssertBand(greedy.LimitsBetween(5, 20), 0.9 * C, 1.3 * C, "converged phase"));

        int[] sawtooth = Enumerable.Range(0, 100).Select(i => i % 2 == 0 ? 40 : 52).ToArray();
        Assert.ThrowsAny<Exception>(() => AssertNoOscillation(sawtooth, maxStep: 0.2, maxReversalsPer10s: 25));
    }

    [Fact]
    public void PidLimit_AgainstSimulatedService_SettlesWithoutOscillating()
    {
        // The controller's point: a steady limit. After convergence the limit changes at most twice in 15 s.
        LimiterSimulation sim = RunScenario(Create("pid"), seed: 7, queueLimit: C / 4, reducedQueueLimit: 3);
        int[] converged = sim.LimitsBetween(5, 20);
        int changes = converged.Zip(converged.Skip(1)).Count(p => p.First != p.Second);
        Assert.True(changes <= 2, $"{changes} changes");
        AssertBand(converged, 1.0 * C, 1.3 * C, "converged phase");
    }

    [Fact]
    public void GradientLimit_WithoutDropSignal_FollowsLatencyAlone()
    {
        // No drops at all (the service queues without bound): only the latency gradient moves the limit. The band is
        // higher: the limit settles where latency ≈ Tolerance × baseline (≈ 1.5·C + QueueSize ≈ 64). The baseline does
        // not creep up under the queueing (GradientBaselineSimulationTests holds it over a minute of overload).
        LimiterSimulation sim = RunScenario(Create("gradient"), seed: 42, queueLimit: 100_000, reducedQueueLimit: 100_000);
        Report("gradient (no drops)", sim);
        AssertBand(sim.LimitsBetween(5, 20), 1.25 * C, 1.8 * C, "converged phase");
        int before = sim.LimitsBetween(19, 20).Max();
        int after = sim.LimitsBetween(22.5, 35).Max();
        Assert.True(after <= before / 2, $"backed off from {before} to only {after} within 2.5 s of the capacity drop");
        AssertBand(sim.LimitsBetween(22.5, 35), 1, 2.2 * C / 4, "reduced-capacity phase");
        AssertBand(sim.LimitsBetween(42, 55), 1.25 * C, 1.8 * C, "recovered phase");
    }

    [Fact]
    public void GradientLimit_WithBaselineProbe_DoesNotDrift()
    {
        // The same latency-only scenario with a baseline probe every 5 s: the limit outside probes stays near
        // Tolerance·C + QueueSize instead of creeping up with the baseline.
        var gradient = new GradientLimit(new GradientLimitOptions { BaselineProbeInterval = TimeSpan.FromSeconds(5) });
        LimiterSimulation sim = RunScenario(gradient, seed: 42, queueLimit: 100_000, reducedQueueLimit: 100_000);
        Report("gradient (no drops, probe every 5 s)", sim);
        int[] converged = sim.LimitsBetween(5, 20).Where(l => l > 1).ToArray();
        int probing = sim.LimitsBetween(5, 20).Count(l => l == 1);
        AssertBand(converged, 1.25 * C, 2.0 * C, "converged phase outside probes");
        Assert.InRange(probing, 1, 15); // three probes in 15 s, a few 100 ms samples each
        int[] reduced = sim.LimitsBetween(25, 35).Where(l => l > 1).ToArray();
        AssertBand(reduced, 1, 2.5 * C / 4, "reduced-capacity phase outside probes");
        AssertBand(sim.LimitsBetween(42, 55).Where(l => l > 1).ToArray(), 1.25 * C, 2.0 * C, "recovered phase outside probes");
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Simulation_SameSeed_IsDeterministic(string algorithm)
    {
        LimiterSimulation a = RunScenario(Create(algorithm), seed: 5, queueLimit: C / 4, reducedQueueLimit: 3, seconds: 25);
        LimiterSimulation b = RunScenario(Create(algorithm), seed: 5, queueLimit: C / 4, reducedQueueLimit: 3, seconds: 25);
        Assert.Equal(a.Limits, b.Limits);
        Assert.Equal(a.Service.Served, b.Service.Served);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Limit_OtherSeeds_StayInBand(string algorithm)
    {
        foreach (ulong seed in new ulong[] { 1, 2, 3 })
        {
            LimiterSimulation sim = RunScenario(Create(algorithm), seed, queueLimit: C / 4, reducedQueueLimit: 3, seconds: 25);
            AssertBand(sim.LimitsBetween(5, 20), 0.9 * C, 1.3 * C, $"seed {seed}");
            AssertBand(sim.LimitsBetween(23, 25), 1, 2 * C / 4, $"seed {seed} reduced");
        }
    }

    internal static AdaptiveLimit Create(string algorithm) => algorithm switch
    {
        "aimd" => new AimdLimit(),
        "gradient" => new GradientLimit(),
        "pid" => new PidLimit(new PidLimitOptions { TargetLatency = TimeSpan.FromMilliseconds(24) }),
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm)),
    };

    private static LimiterSimulation RunScenario(AdaptiveLimit algorithm, ulong seed, int queueLimit, int reducedQueueLimit, double seconds = 55)
    {
        var service = new SimulatedService { Capacity = C, QueueLimit = queueLimit };
        var sim = new LimiterSimulation(algorithm, service, seed, offeredRate: 2.0 * C / service.BaseLatency.TotalSeconds);
        sim.At(20, () => { service.Capacity = C / 4; service.QueueLimit = reducedQueueLimit; });
        sim.At(35, () => { service.Capacity = C; service.QueueLimit = queueLimit; });
        sim.RunUntil(seconds);
        return sim;
    }

    private sealed class FixedLimit(int limit) : AdaptiveLimit(new AimdLimitOptions { InitialLimit = limit })
    {
        public override int Update(in AdaptiveWindow window) => window.Limit;
    }

    private sealed class GreedyLimit() : AdaptiveLimit(new AimdLimitOptions())
    {
        public override int Update(in AdaptiveWindow window) => window.Limit + 1;
    }

    internal static void AssertBand(int[] limits, double low, double high, string what)
    {
        Assert.NotEmpty(limits);
        Assert.True(limits.Min() >= low && limits.Max() <= high, $"{what}: limit in [{limits.Min()}, {limits.Max()}], band [{low}, {high}]");
    }

    /// <summary>No single 100 ms step larger than <paramref name="maxStep"/> of the limit, and few direction reversals (among steps larger than <paramref name="deadband"/>).</summary>
    internal static void AssertNoOscillation(int[] limits, double maxStep, int maxReversalsPer10s, int deadband = 0)
    {
        int reversals = 0, lastSign = 0;
        for (int i = 1; i < limits.Length; i++)
        {
            int delta = limits[i] - limits[i - 1];
            Assert.True(Math.Abs(delta) <= maxStep * limits[i - 1], $"step {limits[i - 1]} -> {limits[i]} at sample {i}");
            int sign = Math.Abs(delta) <= deadband ? 0 : Math.Sign(delta); // moves within the deadband are dither, not reversals
            if (sign != 0)
            {
                if (lastSign != 0 && sign != lastSign)
                {
                    reversals++;
                }

                lastSign = sign;
            }
        }

        double per10s = reversals * 100.0 / limits.Length;
        Assert.True(per10s <= maxReversalsPer10s, $"{reversals} reversals in {limits.Length} samples ({per10s:0.0} per 10 s)");
    }

    private void Report(string name, LimiterSimulation sim)
    {
        output.WriteLine($"{name}: served {sim.Service.Served}, dropped {sim.Service.Dropped}, shed {sim.Shed}");
        output.WriteLine(string.Join(' ', sim.Limits.Where((_, i) => i % 5 == 0).Select(s => $"{s.Seconds:0.0}:{s.Limit}")));
    }
}
