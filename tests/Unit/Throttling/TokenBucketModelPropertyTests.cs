using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// Model-based properties of <see cref="TokenBucket"/> over random sequences of acquires and clock advances
/// (manual clock): against an exact GCRA bucket in the same time units, fed the same admissions.
/// Promised: (1) everything admitted, an exact bucket admits too; (2) over every window, admitted tokens &lt;=
/// capacity + rate x elapsed; (3) a refusal happens only when the exact bucket holds fewer than
/// tokens + FastPathBatch - 1; (4) after waiting the retryAfter of a refusal, the same request succeeds.
/// </summary>
public sealed class TokenBucketModelPropertyTests(ITestOutputHelper output)
{
    private const int MaxTests = 300;

    public enum OpKind
    {
        Acquire,
        Advance,
        RetryAfterWait,
    }

    public readonly record struct Op(OpKind Kind, int Value)
    {
        public override string ToString() => $"{Kind}({Value})";
    }

    public sealed record Scenario(int Capacity, double Rate, int Batch, Op[] Ops, int ThreadCache = 0)
    {
        public override string ToString() => $"capacity {Capacity}, rate {Rate}, batch {Batch}, thread cache {ThreadCache}: [{string.Join(", ", Ops)}]";
    }

    [Fact]
    public void AnySequence_SingleThreaded_MatchesExactModelWithinBatch()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(ScenarioArb(), scenario =>
        {
            Run(scenario, plantExtraToken: false);
        }));
    }

    [Fact]
    public void AnySequence_ThreadCacheSingleTokens_MatchesExactModelWithinBatch()
    {
        // One thread with a cache and one-token requests wastes nothing (it drains a batch one token at a time, its
        // cache empty), so all four promises hold as without a cache.
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(CachedScenarioArb(maxTokens: 1), scenario =>
        {
            Run(scenario, plantExtraToken: false);
        }));
    }

    [Fact]
    public void AnySequence_ThreadCacheMultiTokens_NeverOverAdmitsAndHintsAreNeverEarly()
    {
        // Multi-token requests can leave a cache's leftover to die at a settlement (charged, never admitted), so the
        // refusal promise (3) is not checked here; (1), (2) and (4) are.
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(CachedScenarioArb(maxTokens: 6), scenario =>
        {
            Run(scenario, plantExtraToken: false, checkRefusals: false);
        }));
    }

    [Fact]
    public void AnySequence_ModelThatOverAdmits_IsFalsified()
    {
        // The planted model bug: an exact bucket with one token more capacity than it claims. The window check
        // and the model comparison must catch it.
        Exception? failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(ScenarioArb(), scenario =>
        {
            Run(scenario, plantExtraToken: true);
        })));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
        output.WriteLine(failure.Message);
    }

    private static Arbitrary<Scenario> ScenarioArb()
    {
        Gen<Op> op = Gen.OneOf(
            Gen.Choose(1, 6).Select(n => new Op(OpKind.Acquire, n)),
            Gen.Choose(1, 6).Select(n => new Op(OpKind.Acquire, n)),
            Gen.Choose(0, 3_000).Select(ms => new Op(OpKind.Advance, ms)),
            Gen.Choose(1, 6).Select(n => new Op(OpKind.RetryAfterWait, n)));
        Gen<Scenario> scenario =
            from capacity in Gen.Choose(6, 64)
            from rateIndex in Gen.Choose(0, 4)
            from batch in Gen.Choose(1, 6)
            from length in Gen.Choose(0, 120)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, new[] { 0.5, 1, 3.3, 17, 1000 }[rateIndex], batch, ops);
        return Arb.From(scenario);
    }

    private static Arbitrary<Scenario> CachedScenarioArb(int maxTokens)
    {
        Gen<Op> op = Gen.OneOf(
            Gen.Choose(1, maxTokens).Select(n => new Op(OpKind.Acquire, n)),
            Gen.Choose(1, maxTokens).Select(n => new Op(OpKind.Acquire, n)),
            Gen.Choose(1, maxTokens).Select(n => new Op(OpKind.Acquire, n)),
            Gen.Choose(0, 300).Select(ms => new Op(OpKind.Advance, ms)),
            Gen.Choose(1, maxTokens).Select(n => new Op(OpKind.RetryAfterWait, n)));
        Gen<Scenario> scenario =
            from capacity in Gen.Choose(8, 96)
            from batch in Gen.Choose(4, capacity)
            from cache in Gen.Choose(2, Math.Max(2, batch / 2))
            from rateIndex in Gen.Choose(0, 3)
            from length in Gen.Choose(0, 250)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, new[] { 1, 17, 100, 1000 }[rateIndex], batch, ops, cache);
        return Arb.From(scenario);
    }

    /// <summary>Runs one scenario against the exact model; with the planted bug, the bucket under test is an over-generous exact bucket.</summary>
    private static void Run(Scenario scenario, bool plantExtraToken, bool checkRefusals = true)
    {
        var time = new ManualTimeProvider();
        long start = time.GetTimestamp();
        var bucket = new TokenBucket(scenario.Capacity, scenario.Rate, scenario.Batch, time, scenario.ThreadCache);
        Assert.Equal(scenario.ThreadCache, bucket.ThreadCache);
        long interval = bucket.IntervalUnits;
        int shift = bucket.UnitShift;
        long burst = scenario.Capacity * interval;
        long modelTat = 0;
        var planted = plantExtraToken ? new ExactModel(scenario.Capacity + 1, interval) : null;
        var admissions = new List<(long Now, long Tokens)>();

        long Now() => (time.GetTimestamp() - start) << shift;
        long ModelAvailable(long now) => (burst - (Math.Max(modelTat, now) - now)) / interval;

        foreach (Op op in scenario.Ops)
        {
            if (op.Kind == OpKind.Advance)
            {
                time.Advance(TimeSpan.FromMilliseconds(op.Value));
                continue;
            }

            int tokens = Math.Min(op.Value, scenario.Capacity);
            long now = Now();
            long available = ModelAvailable(now);
            bool admitted;
            TimeSpan retryAfter;
            if (planted is not null)
            {
                admitted = planted.TryAcquire(now, tokens, out long waitUnits);
                retryAfter = TimeSpan.FromTicks((waitUnits >> shift) + 1);
            }
            else
            {
                admitted = bucket.TryAcquire(tokens, out retryAfter);
            }

            if (admitted)
            {
                Assert.True(available >= tokens, $"admitted {tokens} while the exact bucket holds {available}");
                modelTat = Math.Max(modelTat, now) + (tokens * interval);
                admissions.Add((now, tokens));
                CheckWindows(admissions, burst, interval);
            }
            else
            {
                Assert.True(!checkRefusals || available < tokens + scenario.Batch - 1, $"refused {tokens} while the exact bucket holds {available} (batch {scenario.Batch})");
                if (op.Kind == OpKind.RetryAfterWait)
                {
                    time.Advance(retryAfter);
                    now = Now();
                    bool retried = planted?.TryAcquire(now, tokens, out _) ?? bucket.TryAcquire(tokens);
                    Assert.True(retried, $"refused again after waiting the retryAfter {retryAfter}");
                    Assert.True(ModelAvailable(now) >= tokens);
                    modelTat = Math.Max(modelTat, now) + (tokens * interval);
                    admissions.Add((now, tokens));
                    CheckWindows(admissions, burst, interval);
                }
            }
        }
    }

    /// <summary>Every window ending at the latest admission: tokens x interval &lt;= burst + elapsed (all in units).</summary>
    private static void CheckWindows(List<(long Now, long Tokens)> admissions, long burst, long interval)
    {
        long last = admissions[^1].Now;
        long tokens = 0;
        for (int i = admissions.Count - 1; i >= 0; i--)
        {
            tokens += admissions[i].Tokens;
            long elapsed = last - admissions[i].Now;
            Assert.True(tokens * interval <= burst + elapsed, $"{tokens} tokens admitted within {elapsed} units (burst {burst / interval})");
        }
    }

    /// <summary>An exact GCRA bucket in the same units (the planted over-admitting variant uses it with a wrong capacity).</summary>
    private sealed class ExactModel(long capacity, long interval)
    {
        private long _tat;

        public bool TryAcquire(long now, long tokens, out long waitUnits)
        {
            long debt = Math.Max(_tat, now) - now;
            waitUnits = debt + (tokens * interval) - (capacity * interval);
            if (waitUnits > 0)
            {
                return false;
            }

            _tat = Math.Max(_tat, now) + (tokens * interval);
            return true;
        }
    }
}
