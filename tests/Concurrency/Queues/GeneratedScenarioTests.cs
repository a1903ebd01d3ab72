using LockFree.Tests.Concurrency.Linearizability;
using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using static LockFree.Tests.Concurrency.Linearizability.QueueOpKind;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// FsCheck-generated scenarios (init part = a prefill, parallel part = 2-3 thread programs in the roles the kind
/// allows, post part = drain and checks) run under the controlled scheduler. A failing scenario is shrunk (fewer
/// operations, smaller prefill and capacity) and reported with the schedule's replay line. Linearizability of each
/// history is checked once <see cref="QueueScenario.CheckLinearizability"/> is on.
/// </summary>
public sealed class GeneratedScenarioTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Generated scenarios per queue kind in CI, and schedules per scenario.</summary>
    private const int Scenarios = 100;
    private const int SchedulesPerScenario = 20;

    /// <summary>The real engines the generated scenarios run on (also under TSO: <see cref="QueueTsoScheduleTests"/>).</summary>
    public static TheoryData<QueueKind> Kinds() => [QueueKind.Spsc, QueueKind.SpscEagerBound, QueueKind.Mpsc, QueueKind.Spmc, QueueKind.Mpmc];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void GeneratedScenarios_RealEngine_PassAllChecks(QueueKind kind) =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(ExplorationBudget.Schedules(Scenarios)), Passes(kind, PlantedBug.None));

    [Fact]
    public void GeneratedScenarios_PlantedSplitCas_FailAndShrinkWithReplayLine()
    {
        var failure = Assert.ThrowsAny<Exception>(() =>
            Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Passes(QueueKind.Mpmc, PlantedBug.SplitCompareExchange)));
        output.WriteLine(failure.Message);
        Assert.Contains("replay: ControlledTest.Replay(", failure.Message);
        Assert.Contains("Mpmc cap", failure.Message);
    }

    /// <summary>
    /// The property: every generated scenario passes its schedules. With <paramref name="tso"/>, under x86-TSO store buffers,
    /// each schedule in a no-GC region (callers in <see cref="StillObjectsCollection"/> only).
    /// </summary>
    internal static Property Passes(QueueKind kind, PlantedBug bugs, bool tso = false) =>
        Prop.ForAll(Arbitrary(kind), g =>
        {
            try
            {
                g.Scenario.Explore(Strategy.RandomWalk(g.Seed), SchedulesPerScenario, new ExploreOptions { Bugs = bugs }.WithTso(tso));
                return true.Label("passes");
            }
            catch (ScheduleFailureException e)
            {
                return false.Label(e.Message);
            }
        });

    /// <summary>A generated scenario and the seed of its schedules.</summary>
    public sealed record Generated(QueueKind Kind, int Capacity, int Prefill, QueueOp[][] Threads, long Seed)
    {
        public QueueScenario Scenario => new(Kind, Capacity, Threads, Prefill);

        /// <inheritdoc/>
        public override string ToString() => $"{Scenario} (seed {Seed})";
    }

    private static Arbitrary<Generated> Arbitrary(QueueKind kind)
    {
        Gen<QueueOp> producerOp = Gen.OneOf(Gen.Constant(new QueueOp(Enqueue)), Gen.Choose(1, 3).Select(n => new QueueOp(EnqueueMany, n)));
        var consumerOps = new List<Gen<QueueOp>> { Gen.Constant(new QueueOp(Dequeue)), Gen.Choose(1, 3).Select(n => new QueueOp(DequeueMany, n)) };
        if (kind.CanPeek())
        {
            consumerOps.Add(Gen.Constant(new QueueOp(Peek)));
        }

        Gen<QueueOp> consumerOp = Gen.OneOf(consumerOps);
        Gen<QueueOp> anyOp = Gen.OneOf(producerOp, consumerOp);
        Gen<QueueOp[]> Program(Gen<QueueOp> op) => Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(op, n));

        // Roles: thread programs by kind (the single producer / consumer is one thread; MPMC threads mix both).
        Gen<QueueOp[][]> threads = kind switch
        {
            QueueKind.Spsc or QueueKind.SpscEagerBound => from p in Program(producerOp) from c in Program(consumerOp) select new[] { p, c },
            QueueKind.Mpsc => from n in Gen.Choose(1, 2) from ps in Gen.ArrayOf(Program(producerOp), n) from c in Program(consumerOp) select ps.Append(c).ToArray(),
            QueueKind.Spmc => from n in Gen.Choose(1, 2) from p in Program(producerOp) from cs in Gen.ArrayOf(Program(consumerOp), n) select cs.Prepend(p).ToArray(),
            _ => from n in Gen.Choose(2, 3) from ts in Gen.ArrayOf(Program(anyOp), n) select ts,
        };

        Gen<Generated> generated =
            from capacity in Gen.Elements(1, 2, 4)
            from prefill in Gen.Choose(0, capacity)
            from ts in threads
            from seed in Gen.Choose(0, int.MaxValue)
            select new Generated(kind, capacity, prefill, ts, seed);
        return Arb.From(generated, Shrink);
    }

    /// <summary>Fewer operations first (drop one op of one thread), then less prefill, then smaller capacity.</summary>
    private static IEnumerable<Generated> Shrink(Generated g)
    {
        for (int t = 0; t < g.Threads.Length; t++)
        {
            QueueOp[] ops = g.Threads[t];
            for (int i = 0; i < ops.Length && ops.Length > 1; i++)
            {
                var threads = (QueueOp[][])g.Threads.Clone();
                threads[t] = [.. ops[..i], .. ops[(i + 1)..]];
                yield return g with { Threads = threads };
            }

            for (int i = 0; i < ops.Length; i++)
            {
                if (ops[i].Count > 1)
                {
                    var threads = (QueueOp[][])g.Threads.Clone();
                    threads[t] = (QueueOp[])ops.Clone();
                    threads[t][i] = ops[i] with { Count = ops[i].Count - 1 };
                    yield return g with { Threads = threads };
                }
            }
        }

        if (g.Prefill > 0)
        {
            yield return g with { Prefill = g.Prefill - 1 };
        }

        if (g.Capacity > 1)
        {
            yield return g with { Capacity = g.Capacity / 2, Prefill = Math.Min(g.Prefill, g.Capacity / 2) };
        }
    }
}
