using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// <see cref="DelayQueue{T}"/>'s <see cref="OverflowPolicy.DropOldest"/> step (session 16: the root out and the incoming
/// item into the heap under one hold of the consumer lock) under the controlled scheduler, on the real
/// <c>DelayQueueCore</c> called as the queue calls it (<see cref="CoreUnderTest.EnqueueEvicting"/>). Checked after every
/// schedule: every item placed comes out exactly once, taken or evicted; a write evicts at most one item; and, on a full
/// queue of one due item, a take racing the step always finds an item (there is one due at every moment). Planted:
/// <see cref="PlantedFault.DelayEvictThenPublish"/>, the step before session 16 (pop under the lock, publish through the
/// inbox after it), which a take in between finds empty.
/// </summary>
public sealed class DelayEvictScheduleTests(ITestOutputHelper output)
{
    private const int Budget = 600;

    [Fact]
    public void EvictRacingATake_FullQueueOfOne_TheTakeAlwaysFindsAnItem()
    {
        foreach (Func<Strategy> make in CiStrategies.Standard(41))
        {
            ExplorationResult r = Explore(make(), capacity: 1, writers: 1, takes: 1, PlantedFault.None, ExplorationBudget.Schedules(Budget));
            output.WriteLine($"{r.Strategy}: {r.Iterations} schedules, max {r.MaxSteps} steps");
        }
    }

    [Fact]
    public void TwoEvictorsAndTwoTakes_FullQueueOfTwo_EveryItemOnce()
    {
        foreach (Func<Strategy> make in CiStrategies.Standard(42))
        {
            ExplorationResult r = Explore(make(), capacity: 2, writers: 2, takes: 2, PlantedFault.None, ExplorationBudget.Schedules(Budget));
            output.WriteLine($"{r.Strategy}: {r.Iterations} schedules, max {r.MaxSteps} steps");
        }
    }

    [Fact]
    public void PlantedEvictThenPublish_IsFound()
    {
        var found = new List<string>();
        foreach (Func<Strategy> make in CiStrategies.Standard(43))
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(strategy, capacity: 1, writers: 1, takes: 1, PlantedFault.DelayEvictThenPublish, 2000));
            Assert.Contains("found nothing", failure.InnerException!.Message, StringComparison.Ordinal);
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1}");
        }

        output.WriteLine("two-step DropOldest: found by " + string.Join("; ", found));
    }

    private static ExplorationResult Explore(Strategy strategy, int capacity, int writers, int takes, PlantedFault faults, int budget)
    {
        var threads = new List<Action<Run>>();
        for (int w = 0; w < writers; w++)
        {
            int writer = w;
            threads.Add(run => run.Write(writer));
        }

        threads.Add(run => run.Take(takes, mustFind: capacity == 1));
        return ControlledTest.Explore(
            strategy,
            budget,
            () => new Run(capacity),
            threads,
            run => run.Check(),
            new ExploreOptions { Faults = faults, Name = $"delay queue DropOldest: capacity {capacity}, {writers} evicting writer(s), {takes} take(s), faults {faults}" });
    }

    private sealed class Run
    {
        private readonly CoreUnderTest _queue;
        private readonly List<int> _placed = [];
        private readonly List<int> _out = [];

        public Run(int capacity)
        {
            _queue = new CoreUnderTest(capacity, new ManualTimeProvider());
            for (int i = 0; i < capacity; i++)
            {
                Assert(_queue.TryEnqueue(i, 0), "prefill");
                _placed.Add(i);
            }
        }

        public void Write(int writer)
        {
            int value = 100 * (writer + 1);
            int? evicted = _queue.EnqueueEvicting(value, 0);
            _placed.Add(value);
            if (evicted is { } e)
            {
                _out.Add(e);
            }
        }

        public void Take(int takes, bool mustFind)
        {
            for (int i = 0; i < takes; i++)
            {
                if (_queue.TryDequeue(parking: false, out int value))
                {
                    _out.Add(value);
                }
                else if (mustFind)
                {
                    throw new InvalidOperationException("a take found nothing while the full queue held a due item at every moment");
                }
            }
        }

        public void Check()
        {
            while (_queue.TryDequeue(parking: false, out int value))
            {
                _out.Add(value);
            }

            foreach (var group in _out.GroupBy(v => v))
            {
                Assert(group.Count() == 1, $"item {group.Key} came out {group.Count()} times");
                Assert(_placed.Contains(group.Key), $"item {group.Key} came out but was never placed");
            }

            foreach (int value in _placed)
            {
                Assert(_out.Contains(value), $"item {value} was placed but lost");
            }
        }

        private static void Assert(bool condition, string message)
        {
            if (!condition)
            {
                throw new InvalidOperationException(message);
            }
        }
    }
}
