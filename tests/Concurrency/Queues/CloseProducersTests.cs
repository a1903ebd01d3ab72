using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// <c>SequencedRing.CloseProducers</c> (the mark bit that completes a many-writer BackpressureBuffer) under the
/// controlled scheduler: two producers enqueue while a third thread closes and a consumer dequeues. After every
/// schedule: each item that an enqueue accepted is dequeued exactly once (during the run or in the final drain),
/// nothing else is; the final tail the close returned equals the number of accepted items (no claim after the
/// close, none lost before it); every enqueue after the close returned false. Proof of power: a split CAS
/// (PlantedBug.SplitCompareExchange) breaks the claim/close race and is found.
/// </summary>
public sealed class CloseProducersTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(5);

    private sealed class Run<TConsumers>
        where TConsumers : struct, IRolePolicy
    {
        private SequencedRing<object, TestAtomics, MultiRole, TConsumers> _ring = new(4);
        private readonly List<object>[] _accepted = [new(), new()];
        private readonly List<object> _dequeued = new();
        private bool _closed;
        private bool _acceptedAfterClose;

        public long FinalTail { get; private set; } = -1;

        public void Produce(int producer)
        {
            for (int i = 0; i < 3; i++)
            {
                object item = $"p{producer}-{i}";
                bool closedBefore = _closed; // test bookkeeping: one logical thread runs at a time
                if (_ring.TryEnqueue(item))
                {
                    _accepted[producer].Add(item);
                    _acceptedAfterClose |= closedBefore;
                }
            }
        }

        public void Close()
        {
            FinalTail = _ring.CloseProducers();
            _closed = true;
        }

        public void Consume()
        {
            for (int i = 0; i < 2; i++)
            {
                if (_ring.TryDequeue(out object? item))
                {
                    _dequeued.Add(item);
                }
            }
        }

        public void Check()
        {
            while (_ring.TryDequeue(out object? item))
            {
                _dequeued.Add(item);
            }

            var accepted = _accepted[0].Concat(_accepted[1]).ToList();
            if (_acceptedAfterClose)
            {
                throw new InvalidOperationException("an enqueue that started after the close was accepted");
            }

            if (FinalTail != accepted.Count)
            {
                throw new InvalidOperationException($"final tail {FinalTail} but {accepted.Count} items accepted");
            }

            if (_dequeued.Count != accepted.Count || !new HashSet<object>(_dequeued).SetEquals(accepted))
            {
                throw new InvalidOperationException(
                    $"accepted [{string.Join(", ", accepted)}] but dequeued [{string.Join(", ", _dequeued)}]");
            }

            if (_ring.TryEnqueue("late") || _ring.TryEnqueueMany(new object[] { "late" }) != 0)
            {
                throw new InvalidOperationException("an enqueue after the close succeeded");
            }

            if (!_ring.IsClosed || !_ring.IsEmpty || _ring.Count != 0 || _ring.EnqueuedPositions != accepted.Count)
            {
                throw new InvalidOperationException("a closed, drained ring misreports its state");
            }
        }
    }

    [Fact]
    public void Close_Mpsc_RacingProducers_AcceptedExactlyTheClaimsBeforeIt()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore<SingleRole>(make(), PlantedBug.None);
            output.WriteLine($"MPSC {result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}");
        }
    }

    [Fact]
    public void Close_Mpmc_RacingProducers_AcceptedExactlyTheClaimsBeforeIt()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore<MultiRole>(make(), PlantedBug.None);
            output.WriteLine($"MPMC {result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}");
        }
    }

    [Fact]
    public void Close_WithSplitCompareExchange_IsFound()
    {
        var found = new List<string>();
        foreach (Func<Strategy> make in Strategies)
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore<MultiRole>(strategy, PlantedBug.SplitCompareExchange));
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1} ({failure.InnerException!.GetType().Name})");
        }

        output.WriteLine("split CAS under close: found by " + string.Join("; ", found));
    }

    private static ExplorationResult Explore<TConsumers>(Strategy strategy, PlantedBug bugs)
        where TConsumers : struct, IRolePolicy =>
        ControlledTest.Explore(
            strategy,
            Budget,
            () => new Run<TConsumers>(),
            [r => r.Produce(0), r => r.Produce(1), r => r.Close(), r => r.Consume()],
            r => r.Check(),
            new ExploreOptions { Bugs = bugs, Name = $"close vs producers ({typeof(TConsumers).Name} consumers, bugs {bugs})" });
}
