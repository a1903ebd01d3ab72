using System.Text;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>One call in a logical thread's program.</summary>
public enum DequeStep
{
    /// <summary>Owner: push the next value.</summary>
    Push,

    /// <summary>Owner: TryPop.</summary>
    Pop,

    /// <summary>Thief: TrySteal.</summary>
    Steal,

    /// <summary>Thief: TryStealBatch into its own deque, then pops what moved (to record it).</summary>
    StealBatch,

    /// <summary>Thief: TryStealBatchAndPop into its own deque, then pops what moved.</summary>
    StealBatchAndPop,
}

/// <summary>A failed post-part check of a deque scenario.</summary>
public sealed class DequeCheckException(string message) : Exception(message);

/// <summary>
/// A deque scenario: logical thread 1 is the owner (Push/Pop), the others are thieves. The init part builds the
/// deque (capacity <see cref="Capacity"/>, positions starting at <see cref="Start"/>) and pushes
/// <see cref="Prefill"/> items; the post part drains it and checks exactly-once delivery (every pushed value taken
/// once, no null or foreign value) and linearizability against <see cref="DequeSpec"/> (a batch steal recorded as
/// one Steal per item, all with the batch's interval).
/// </summary>
public sealed class DequeScenario(DequeKind kind, int capacity, IReadOnlyList<DequeStep[]> threads, int prefill = 0, long start = 0)
{
    public DequeKind Kind { get; } = kind;

    public int Capacity { get; } = capacity;

    public IReadOnlyList<DequeStep[]> Threads { get; } = threads;

    public int Prefill { get; } = prefill;

    public long Start { get; } = start;

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder().Append(Kind).Append(" cap ").Append(Capacity);
        if (Prefill > 0)
        {
            sb.Append(" prefill ").Append(Prefill);
        }

        if (Start != 0)
        {
            sb.Append(" start ").Append(Start);
        }

        return sb.AppendThreads(Threads).ToString();
    }

    /// <summary>Explores the scenario; throws <see cref="ScheduleFailureException"/> on a failing schedule.</summary>
    public ExplorationResult Explore(Strategy strategy, int iterations, ExploreOptions? options = null) =>
        ScenarioRunner.Explore(ToString(), Threads.Count, () => new RunState(this), static (state, t) => state.RunThread(t), static state => state.Check(), strategy, iterations, options);

    internal sealed class RunState
    {
        private readonly DequeScenario _scenario;
        private readonly ITestDeque _deque;
        private readonly ITestDeque[] _own; // each thief's own deque (destination of its batch steals)
        private readonly List<int> _pushed = [];
        private readonly List<int> _taken = [];
        private readonly List<Operation<DequeInput, DequeOutput>> _history = [];

        public RunState(DequeScenario scenario)
        {
            _scenario = scenario;
            _deque = TestDeques.Create(scenario.Kind, scenario.Capacity, scenario.Start);
            _own = new ITestDeque[scenario.Threads.Count + 1];
            for (int t = 2; t <= scenario.Threads.Count; t++)
            {
                _own[t] = TestDeques.Create(scenario.Kind, 1, scenario.Start);
            }

            for (int i = 0; i < scenario.Prefill; i++)
            {
                _deque.Push(i);
                _pushed.Add(i);
                _history.Add(new(0, new DequeInput(DequeOpKind.Push, i), DequeOutput.Pushed, -2 * (scenario.Prefill - i) - 1, -2 * (scenario.Prefill - i)));
            }
        }

        public void RunThread(int thread)
        {
            int next = thread * 1000;
            foreach (DequeStep step in _scenario.Threads[thread - 1])
            {
                long call = ControlledScheduler.Now;
                switch (step)
                {
                    case DequeStep.Push:
                    {
                        int value = next++;
                        _deque.Push(value);
                        _pushed.Add(value);
                        Record(thread, new DequeInput(DequeOpKind.Push, value), DequeOutput.Pushed, call);
                        break;
                    }

                    case DequeStep.Pop:
                    {
                        bool ok = _deque.TryPop(out object? item);
                        Record(thread, new DequeInput(DequeOpKind.Pop), ok ? Take(thread, item) : DequeOutput.Empty, call);
                        break;
                    }

                    case DequeStep.Steal:
                    {
                        StealResult r = _deque.TrySteal(out object? item);
                        Record(thread, new DequeInput(DequeOpKind.Steal), r == StealResult.Success ? Take(thread, item) : new DequeOutput(r), call);
                        break;
                    }

                    default:
                    {
                        ITestDeque own = _own[thread];
                        bool popOne = step == DequeStep.StealBatchAndPop;
                        StealResult r = _deque.TryStealBatch(own, popOne, out int moved, out object? first);
                        Check(r == StealResult.Success ? moved >= 1 && moved <= 32 : moved == 0, $"T{thread} {step} answered {r} with moved = {moved}");
                        var items = new List<object?>();
                        if (r == StealResult.Success && popOne)
                        {
                            items.Add(first);
                        }

                        int pushed = popOne && r == StealResult.Success ? moved - 1 : moved;
                        var fromOwn = new List<object?>();
                        for (int i = 0; i < pushed; i++)
                        {
                            Check(own.TryPop(out object? o), $"T{thread} {step} moved {moved} but its deque holds fewer");
                            fromOwn.Add(o);
                        }

                        Check(!own.TryPop(out _), $"T{thread} {step} left more in its deque than it reported");
                        fromOwn.Reverse(); // popped newest first; the batch took them oldest first
                        items.AddRange(fromOwn);
                        long ret = ControlledScheduler.ReturnTime();
                        if (r != StealResult.Success)
                        {
                            Record(thread, new DequeInput(DequeOpKind.Steal), new DequeOutput(r), call);
                        }

                        foreach (object? o in items)
                        {
                            _history.Add(new(thread, new DequeInput(DequeOpKind.Steal), Take(thread, o), call, ret));
                        }

                        break;
                    }
                }
            }
        }

        public void Check()
        {
            long t0 = _history.Count == 0 ? 0 : _history.Max(o => o.Return) + 1;
            while (_deque.TryPop(out object? item))
            {
                _history.Add(new(0, new DequeInput(DequeOpKind.Pop), Take(0, item), t0, t0 + 1));
                t0 += 2;
            }

            Check(_deque.TrySteal(out _) == StealResult.Empty, "a steal after the drain found an item");

            var counts = _taken.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
            foreach (var (v, n) in counts)
            {
                Check(n == 1, $"value {v} taken {n} times");
                Check(_pushed.Contains(v), $"value {v} taken but never pushed");
            }

            foreach (int v in _pushed)
            {
                Check(counts.ContainsKey(v), $"value {v} pushed but lost");
            }

            var result = LinearizabilityChecker.Check(new DequeSpec(), _history);
            Check(result.IsLinearizable, "not linearizable: " + result.Explanation);
        }

        private DequeOutput Take(int thread, object? item)
        {
            Check(item is int, $"T{thread} received {(item is null ? "null" : item.GetType().Name)} instead of an item");
            int value = (int)item!;
            _taken.Add(value);
            return DequeOutput.Item(value);
        }

        private void Record(int thread, DequeInput input, DequeOutput output, long call) =>
            _history.Add(new(thread, input, output, call, ControlledScheduler.ReturnTime()));

        private static void Check(bool condition, string message)
        {
            if (!condition)
            {
                throw new DequeCheckException(message);
            }
        }
    }
}
