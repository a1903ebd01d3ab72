using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Throttling;

/// <summary>
/// The client-side throttle's counting window under the controlled scheduler: concurrent records in one bucket are
/// counted exactly, and a record delayed past its bucket's turn never wipes the newer bucket's counts. The planted
/// variant (reset whenever the epoch differs, as a first version did) must be found.
/// </summary>
public sealed class SlidingCountWindowScheduleTests(ITestOutputHelper output)
{
    private const int PerStrategy = ThrottlingStrategies.PerStrategy;
    private const long Epoch = 1000;

    private static Func<Strategy>[] Strategies(int seed) => ThrottlingStrategies.All(seed);

    [Fact]
    public void Explore_SameEpoch_CountsExactly()
    {
        foreach (var make in Strategies(5))
        {
            ExplorationResult r = ControlledTest.Explore(
                make(),
                ExplorationBudget.Schedules(PerStrategy),
                () => new SlidingCountWindow<TestAtomics>(2),
                [
                    w => { w.Record(Epoch, SlidingCountWindow<TestAtomics>.Request); w.Record(Epoch, SlidingCountWindow<TestAtomics>.Accept); },
                    w => { w.Record(Epoch, SlidingCountWindow<TestAtomics>.Request); w.Record(Epoch, SlidingCountWindow<TestAtomics>.Request); },
                    w => { w.Record(Epoch, SlidingCountWindow<TestAtomics>.Accept); w.Record(Epoch, SlidingCountWindow<TestAtomics>.Request); },
                ],
                w => Assert.Equal((4L, 2L), w.Sum(Epoch)),
                new ExploreOptions { Name = "sliding window, same epoch" });
            output.WriteLine($"same epoch: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}");
        }
    }

    [Fact]
    public void Explore_DelayedOlderRecord_NeverWipesNewerBucket()
    {
        foreach (var make in Strategies(9))
        {
            ExplorationResult r = ExploreDelayed(make(), () => new RealWindow());
            output.WriteLine($"delayed record: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}");
        }
    }

    [Fact]
    public void PlantedResetOnAnyEpochChange_IsFound()
    {
        foreach (var make in Strategies(9))
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => ExploreDelayed(strategy, () => new PlantedWindow()));
            output.WriteLine($"reset on any epoch change: {strategy.Name} found it at schedule {failure.Iteration + 1}");
        }
    }

    // One bucket, so epochs E and E + 1 share it: the newer thread records twice at E + 1, the delayed one twice
    // at E. Whatever the interleaving, both E + 1 records must be in the bucket at the end, under epoch E + 1.
    private static ExplorationResult ExploreDelayed(Strategy strategy, Func<IWindow> create) =>
        ControlledTest.Explore(
            strategy,
            ExplorationBudget.Schedules(PerStrategy),
            create,
            [
                w => { w.Record(Epoch, SlidingCountWindow<TestAtomics>.Request); w.Record(Epoch, SlidingCountWindow<TestAtomics>.Request); },
                w => { w.Record(Epoch + 1, SlidingCountWindow<TestAtomics>.Request); w.Record(Epoch + 1, SlidingCountWindow<TestAtomics>.Request); },
            ],
            w =>
            {
                (long requests, _) = w.Sum(Epoch + 1);
                Assert.InRange(requests, 2, 4);
            },
            new ExploreOptions { Name = "sliding window, delayed record" });

    private interface IWindow
    {
        void Record(long epoch, long increment);

        (long Requests, long Accepts) Sum(long epoch);
    }

    private sealed class RealWindow : IWindow
    {
        private readonly SlidingCountWindow<TestAtomics> _window = new(1);

        public void Record(long epoch, long increment) => _window.Record(epoch, increment);

        public (long Requests, long Accepts) Sum(long epoch) => _window.Sum(epoch);
    }

    /// <summary>Planted bug: a record whose epoch differs from the bucket's resets it, even when the bucket is newer.</summary>
    private sealed class PlantedWindow : IWindow
    {
        private readonly SlidingCountWindow<TestAtomics> _reader = new(1);
        private long _word;

        public void Record(long epoch, long increment)
        {
            long tag = epoch & ((1L << 20) - 1);
            long seen = TestAtomics.LoadAcquire(ref _word);
            while (true)
            {
                long next = ((seen >>> 44) & ((1L << 20) - 1)) != tag ? (tag << 44) + increment : seen + increment;
                long prior = TestAtomics.CompareExchange(ref _word, next, seen);
                if (prior == seen)
                {
                    return;
                }

                seen = prior;
            }
        }

        public (long Requests, long Accepts) Sum(long epoch)
        {
            long tag = epoch & ((1L << 20) - 1);
            long word = _word;
            return ((word >>> 44) & ((1L << 20) - 1)) == tag ? ((word >> 22) & ((1L << 22) - 1), word & ((1L << 22) - 1)) : (0, 0);
        }
    }
}
