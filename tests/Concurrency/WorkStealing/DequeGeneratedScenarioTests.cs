using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using static LockFree.Tests.Concurrency.WorkStealing.DequeStep;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// FsCheck-generated deque scenarios (capacity 1-4, a prefill of 0-4 items, positions starting at 0 or just
/// below long.MaxValue, an owner program of pushes and pops, one or two thief programs of single and batch
/// steals) run under the controlled scheduler with the same post-part checks as <see cref="DequeScheduleTests"/>
/// (exactly-once, linearizability). A failing scenario shrinks and reports its replay line; the planted
/// single-CAS batch must be found that way too.
/// </summary>
public sealed class DequeGeneratedScenarioTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Scenarios = 100;
    private const int SchedulesPerScenario = 20;

    [Fact]
    public void GeneratedScenarios_RealEngine_PassAllChecks() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(ExplorationBudget.Schedules(Scenarios)), Passes(DequeKind.Real));

    [Fact]
    public void GeneratedScenarios_PlantedSingleCasBatch_FailWithReplayLine()
    {
        // FsCheck picks a fresh seed per run, so the generator is tilted towards the bug's shape (three or four
        // items, an owner that pops, a thief that batch-steals) to make finding it near-certain every run.
        var failure = Assert.ThrowsAny<Exception>(() =>
            Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Passes(DequeKind.PlantedSingleCasBatch, tilted: true)));
        output.WriteLine(failure.Message);
        Assert.Contains("replay: ControlledTest.Replay(", failure.Message);
    }

    private static Property Passes(DequeKind kind, bool tilted = false) =>
        Prop.ForAll(Arbitrary(kind, tilted), g =>
        {
            try
            {
                g.Scenario.Explore(Strategy.RandomWalk(g.Seed), SchedulesPerScenario);
                return true.Label("passes");
            }
            catch (ScheduleFailureException e)
            {
                return false.Label(e.Message);
            }
        });

    /// <summary>A generated scenario and the seed of its schedules.</summary>
    public sealed record Generated(DequeKind Kind, int Capacity, int Prefill, long Start, DequeStep[][] Threads, long Seed)
    {
        public DequeScenario Scenario => new(Kind, Capacity, Threads, Prefill, Start);

        /// <inheritdoc/>
        public override string ToString() => $"{Scenario} (seed {Seed})";
    }

    private static Arbitrary<Generated> Arbitrary(DequeKind kind, bool tilted)
    {
        Gen<DequeStep> ownerStep = tilted ? Gen.Elements(Push, Pop, Pop, Pop) : Gen.Elements(Push, Push, Pop);
        Gen<DequeStep> thiefStep = tilted ? Gen.Elements(Steal, StealBatch, StealBatch, StealBatchAndPop) : Gen.Elements(Steal, StealBatch, StealBatchAndPop);
        Gen<DequeStep[]> Program(Gen<DequeStep> step) => Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(step, n));
        Gen<DequeStep[][]> threads =
            from owner in Program(ownerStep)
            from thieves in Gen.Choose(1, 2)
            from programs in Gen.ArrayOf(Program(thiefStep), thieves)
            select programs.Prepend(owner).ToArray();
        Gen<Generated> generated =
            from capacity in Gen.Choose(1, 4)
            from prefill in tilted ? Gen.Choose(3, 4) : Gen.Choose(0, 4)
            from start in Gen.Elements(0L, long.MaxValue - 2)
            from t in threads
            from seed in Gen.Choose(0, int.MaxValue)
            select new Generated(kind, capacity, prefill, start, t, seed);
        return Arb.From(generated, Shrink);
    }

    private static IEnumerable<Generated> Shrink(Generated g)
    {
        for (int t = 0; t < g.Threads.Length; t++)
        {
            DequeStep[] program = g.Threads[t];
            for (int i = 0; i < program.Length && program.Length > 1; i++)
            {
                DequeStep[][] threads = [.. g.Threads];
                threads[t] = [.. program[..i], .. program[(i + 1)..]];
                yield return g with { Threads = threads };
            }
        }

        if (g.Threads.Length > 2)
        {
            yield return g with { Threads = g.Threads[..2] };
        }

        if (g.Prefill > 0)
        {
            yield return g with { Prefill = g.Prefill - 1 };
        }

        if (g.Capacity > 1)
        {
            yield return g with { Capacity = g.Capacity / 2 };
        }
    }
}
