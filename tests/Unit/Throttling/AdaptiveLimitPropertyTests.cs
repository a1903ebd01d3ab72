using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// Properties over generated inputs: (1) whatever windows an algorithm is fed, its limit stays within
/// [MinLimit, MaxLimit]; (2) any single-threaded sequence of acquires, completions and clock moves on the limiter
/// matches a model: an acquire succeeds exactly when in-flight is below the current limit, in-flight never exceeds
/// the limit it was admitted under and never goes negative, and the counters add up.
/// </summary>
public sealed class AdaptiveLimitPropertyTests
{
    private const int MaxTests = 300;

    public readonly record struct WindowInput(long Samples, long Dropped, int LatencyMs, long MaxInFlight, int ElapsedStepMs);

    public readonly record struct BoundsScenario(string Algorithm, int Min, int Max, int Initial, WindowInput[] Windows)
    {
        public override string ToString() => $"{Algorithm} [{Min},{Max}] init {Initial}: {string.Join(", ", Windows)}";
    }

    public enum LimiterOpKind
    {
        Acquire,
        Complete,
        Advance,
    }

    public readonly record struct LimiterOp(LimiterOpKind Kind, int Argument);

    public readonly record struct LimiterScenario(string Algorithm, int SampleEvery, LimiterOp[] Ops)
    {
        public override string ToString() => $"{Algorithm}, sample every {SampleEvery}: {string.Join(", ", Ops)}";
    }

    [Fact]
    public void Update_AnyWindowSequence_LimitStaysWithinBounds() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(BoundsArb(), scenario =>
        {
            AdaptiveLimit algorithm = Create(scenario.Algorithm, scenario.Min, scenario.Max, scenario.Initial);
            int limit = algorithm.InitialLimit;
            double elapsed = 0;
            foreach (WindowInput w in scenario.Windows)
            {
                elapsed += w.ElapsedStepMs / 1000.0;
                var window = new AdaptiveWindow(limit, w.Samples, w.Dropped, w.Samples == 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(w.LatencyMs), w.MaxInFlight, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(elapsed));
                limit = algorithm.Update(window);
                if (limit < scenario.Min || limit > scenario.Max)
                {
                    return false.Label($"limit {limit} outside [{scenario.Min}, {scenario.Max}]");
                }
            }

            return true.Label("in bounds");
        }));

    [Fact]
    public void Limiter_AnyOperationSequence_MatchesModel() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(LimiterArb(), scenario =>
        {
            string? mismatch = FirstMismatch(scenario);
            return (mismatch is null).Label(mismatch ?? "matches");
        }));

    [Fact]
    public void Limiter_ModelCheck_FindsPlantedOverAdmission()
    {
        // Proof of power: the same model check must reject a limiter that admits one request past its limit.
        var scenario = new LimiterScenario("aimd", 1, Enumerable.Repeat(new LimiterOp(LimiterOpKind.Acquire, 0), 30).ToArray());
        Assert.Null(FirstMismatch(scenario));
        Assert.NotNull(FirstMismatch(scenario, plantOverAdmission: true));
    }

    internal static AdaptiveLimit Create(string algorithm, int min, int max, int initial) => algorithm switch
    {
        "aimd" => new AimdLimit(new AimdLimitOptions { MinLimit = min, MaxLimit = max, InitialLimit = initial, LatencyThreshold = TimeSpan.FromMilliseconds(50) }),
        "gradient" => new GradientLimit(new GradientLimitOptions { MinLimit = min, MaxLimit = max, InitialLimit = initial, LongWindow = 20, Warmup = 2 }),
        _ => new PidLimit(new PidLimitOptions { MinLimit = min, MaxLimit = max, InitialLimit = initial, TargetLatency = TimeSpan.FromMilliseconds(20), Cooldown = TimeSpan.Zero, DerivativeGain = 0.5 }),
    };

    private static string? FirstMismatch(LimiterScenario scenario, bool plantOverAdmission = false)
    {
        var time = new ManualTimeProvider();
        var limiter = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = Create(scenario.Algorithm, 1, 12, 4),
            TimeProvider = time,
            MinWindow = TimeSpan.FromMilliseconds(10),
            MinSamples = 1,
            SampleEvery = scenario.SampleEvery,
        });
        var held = new List<AdaptiveLease>();
        long acquired = 0, rejected = 0;
        for (int i = 0; i < scenario.Ops.Length; i++)
        {
            LimiterOp op = scenario.Ops[i];
            switch (op.Kind)
            {
                case LimiterOpKind.Acquire:
                    int limit = limiter.Limit;
                    bool expected = held.Count < limit;
                    bool got = limiter.TryAcquire(out AdaptiveLease lease);
                    if (plantOverAdmission && !got && held.Count == limit)
                    {
                        got = true; // planted: one past the limit
                        lease = held[0];
                    }

                    if (got != expected)
                    {
                        return $"op {i}: acquire {got}, model says {expected} (in flight {held.Count}, limit {limit})";
                    }

                    if (got)
                    {
                        held.Add(lease);
                        acquired++;
                        if (held.Count > limit)
                        {
                            return $"op {i}: in flight {held.Count} above the limit {limit} it was admitted under";
                        }
                    }
                    else
                    {
                        rejected++;
                    }

                    break;
                case LimiterOpKind.Complete when held.Count > 0:
                    int index = op.Argument % held.Count;
                    held[index].Complete((AdaptiveOutcome)(op.Argument % 3));
                    held.RemoveAt(index);
                    break;
                case LimiterOpKind.Advance:
                    time.Advance(TimeSpan.FromMilliseconds(op.Argument));
                    break;
            }

            if (limiter.InFlight != held.Count || limiter.InFlight < 0)
            {
                return $"op {i}: limiter in flight {limiter.InFlight}, model {held.Count}";
            }

            if (limiter.Limit < 1 || limiter.Limit > 12)
            {
                return $"op {i}: limit {limiter.Limit} outside [1, 12]";
            }
        }

        return limiter.Acquired == acquired && limiter.Rejected == rejected
            ? null
            : $"counters acquired {limiter.Acquired}/{acquired}, rejected {limiter.Rejected}/{rejected}";
    }

    private static Arbitrary<BoundsScenario> BoundsArb()
    {
        Gen<WindowInput> window =
            from samples in Gen.OneOf(Gen.Constant(0L), Gen.Choose(1, 1000).Select(n => (long)n))
            from dropped in Gen.OneOf(Gen.Constant(0L), Gen.Constant(0L), Gen.Choose(1, 50).Select(n => (long)n))
            from latency in Gen.OneOf(Gen.Choose(0, 100), Gen.Choose(0, 100_000))
            from maxInFlight in Gen.Choose(0, 5000)
            from step in Gen.Choose(0, 2000)
            select new WindowInput(samples, dropped, latency, maxInFlight, step);
        Gen<BoundsScenario> scenario =
            from algorithm in Gen.Elements("aimd", "gradient", "pid")
            from min in Gen.Choose(1, 50)
            from span in Gen.Choose(0, 500)
            from initialOffset in Gen.Choose(0, 500)
            from length in Gen.Choose(0, 200)
            from windows in Gen.ArrayOf(window, length)
            select new BoundsScenario(algorithm, min, min + span, min + (initialOffset % (span + 1)), windows);
        return Arb.From(scenario);
    }

    private static Arbitrary<LimiterScenario> LimiterArb()
    {
        Gen<LimiterOp> op = Gen.OneOf(
            Gen.Constant(new LimiterOp(LimiterOpKind.Acquire, 0)),
            Gen.Constant(new LimiterOp(LimiterOpKind.Acquire, 0)),
            Gen.Choose(0, 1000).Select(n => new LimiterOp(LimiterOpKind.Complete, n)),
            Gen.Choose(0, 40).Select(n => new LimiterOp(LimiterOpKind.Advance, n)));
        Gen<LimiterScenario> scenario =
            from algorithm in Gen.Elements("aimd", "gradient", "pid")
            from sampleEvery in Gen.Elements(1, 1, 2, 4)
            from length in Gen.Choose(0, 300)
            from ops in Gen.ArrayOf(op, length)
            select new LimiterScenario(algorithm, sampleEvery, ops);
        return Arb.From(scenario);
    }
}
