using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Throttling;

/// <summary>
/// The adaptive limiter's engine under the controlled scheduler (<see cref="TestAtomics"/>): concurrent
/// TryAcquire/Complete never let in-flight exceed the limit nor go negative, every attempt is counted once, and
/// the algorithm is never run by two threads at once. Planted bugs (check-then-increment admission; a split CAS)
/// must be found within the same budget.
/// </summary>
public sealed class AdaptiveLimiterScheduleTests(ITestOutputHelper output)
{
    private const int PerStrategy = ThrottlingStrategies.PerStrategy;

    private const int Threads = 3;
    private const int Rounds = 2;

    private static Func<Strategy>[] Strategies(int seed) => ThrottlingStrategies.All(seed);

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 3)]
    public void Explore_FixedLimit_InFlightNeverExceedsLimit(int limit, int threads)
    {
        foreach (var make in Strategies(21))
        {
            Strategy strategy = make();
            ExplorationResult r = ExploreFixedLimit(strategy, () => new EngineAdmission(new AimdLimit(new AimdLimitOptions { InitialLimit = limit }), new FrozenTime()), threads, ExplorationBudget.Schedules(PerStrategy));
            output.WriteLine($"fixed limit {limit}, {threads} threads: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Explore_MovingLimit_SingleUpdaterAndAccountingHold(int sampleEvery)
    {
        foreach (var make in Strategies(33))
        {
            Strategy strategy = make();
            ExplorationResult r = ControlledTest.Explore(
                strategy,
                ExplorationBudget.Schedules(PerStrategy),
                () => new MovingState(sampleEvery),
                Enumerable.Repeat<Action<MovingState>>(RunMoving, Threads).ToArray(),
                s =>
                {
                    Assert.Equal(0, s.Admission.InFlight);
                    Assert.Equal(Threads * Rounds, s.Admission.Acquired + s.Admission.Rejected);
                    Assert.Equal(s.Successes, s.Admission.Acquired);
                    Assert.InRange(s.Admission.Limit, 1, 3);
                },
                new ExploreOptions { Name = "adaptive limiter, moving limit" });
            output.WriteLine($"moving limit, sample every {sampleEvery}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps");
        }
    }

    /// <summary>
    /// The planted bugs (limit 1, two threads) need two preemptions: one between the other thread's check and its
    /// increment, one back to it while this thread holds the slot. PCT with depth 2 (one priority change) cannot
    /// find them by construction; the other strategies must.
    /// </summary>
    private static Func<Strategy>[] FindingStrategies(int seed) =>
    [
        () => Strategy.RandomWalk(seed),
        () => Strategy.Pct(seed, depth: 3),
        () => Strategy.BoundedPreemption(2),
    ];

    [Fact]
    public void PlantedCheckThenIncrement_IsFound()
    {
        foreach (var make in FindingStrategies(21))
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => ExploreFixedLimit(strategy, () => new CheckThenIncrementAdmission(1), threads: 2, ExplorationBudget.Schedules(PerStrategy)));
            output.WriteLine($"check-then-increment: {strategy.Name} found it at schedule {failure.Iteration + 1}");
        }
    }

    [Fact]
    public void PlantedSplitCompareExchange_OnRealEngine_IsFound()
    {
        foreach (var make in FindingStrategies(21))
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => ExploreFixedLimit(
                strategy,
                () => new EngineAdmission(new AimdLimit(new AimdLimitOptions { InitialLimit = 1 }), new FrozenTime()),
                threads: 2,
                ExplorationBudget.Schedules(PerStrategy),
                PlantedBug.SplitCompareExchange));
            output.WriteLine($"split CAS: {strategy.Name} found it at schedule {failure.Iteration + 1}");
        }
    }

    private static ExplorationResult ExploreFixedLimit(Strategy strategy, Func<IAdmission> create, int threads, int schedules, PlantedBug bugs = PlantedBug.None) =>
        ControlledTest.Explore(
            strategy,
            schedules,
            () => new FixedState(create()),
            Enumerable.Repeat<Action<FixedState>>(RunFixed, threads).ToArray(),
            s =>
            {
                Assert.Equal(0, s.Admission.InFlight);
                Assert.Equal(threads * Rounds, s.Admission.Acquired + s.Admission.Rejected);
            },
            new ExploreOptions { Name = "adaptive limiter, fixed limit", Bugs = bugs });

    private static void RunFixed(FixedState s)
    {
        for (int round = 0; round < Rounds; round++)
        {
            if (!s.Admission.TryAcquire(out long start))
            {
                continue;
            }

            s.Inside++; // test bookkeeping: only one logical thread runs at a time
            long inFlight = s.Admission.InFlight;
            if (s.Inside > s.Admission.Limit || inFlight > s.Admission.Limit)
            {
                throw new InvalidOperationException($"{s.Inside} admitted requests inside (in flight {inFlight}) with limit {s.Admission.Limit}");
            }

            s.Inside--;
            s.Admission.Complete(start, AdaptiveOutcome.Success);
            if (s.Admission.InFlight < 0)
            {
                throw new InvalidOperationException("in flight went negative");
            }
        }
    }

    private static void RunMoving(MovingState s)
    {
        for (int round = 0; round < Rounds; round++)
        {
            if (!s.Admission.TryAcquire(out long start))
            {
                continue;
            }

            s.Successes++;
            s.Inside++;
            if (s.Inside > 3)
            {
                throw new InvalidOperationException($"{s.Inside} inside with the limit never above 3");
            }

            s.Inside--;
            s.Admission.Complete(start, round == 0 ? AdaptiveOutcome.Success : AdaptiveOutcome.Dropped);
            if (s.Admission.InFlight < 0)
            {
                throw new InvalidOperationException("in flight went negative");
            }
        }
    }

    private sealed class FixedState(IAdmission admission)
    {
        public IAdmission Admission { get; } = admission;

        public int Inside { get; set; }
    }

    private sealed class MovingState(int sampleEvery)
    {
        public EngineAdmission Admission { get; } = new(new ReentrancyProbeLimit(), new RacingTime(), sampleEvery);

        public int Inside { get; set; }

        public long Successes { get; set; }
    }
}
