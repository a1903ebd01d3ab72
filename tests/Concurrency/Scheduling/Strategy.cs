using System.Globalization;
using System.Text;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>
/// Decides, at each scheduling point, which logical thread runs next (and resolves the scheduler's other
/// nondeterministic choices, such as when a simulated store buffer drains). One instance explores many
/// iterations; every iteration is replayable from the line <see cref="ReplayCall"/> returns.
/// </summary>
public abstract class Strategy
{
    /// <summary>Uniformly random choice among the enabled threads at every scheduling point.</summary>
    public static Strategy RandomWalk(long seed) => new RandomWalkStrategy((ulong)seed);

    /// <summary>
    /// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, "A randomized scheduler
    /// with probabilistic guarantees of finding bugs", ASPLOS 2010): random thread priorities, the highest
    /// enabled priority runs, and <paramref name="depth"/> - 1 random steps lower the running thread's priority.
    /// Finds a bug of depth d in n threads and k steps with probability at least 1/(n k^(d-1)) per iteration.
    /// </summary>
    /// <param name="seed">Seed of the first iteration.</param>
    /// <param name="depth">Bug depth d (number of ordering constraints); d - 1 priority change points.</param>
    /// <param name="stepEstimate">k, the expected number of steps; 0 = learn it from the iterations run so far (the replay line then states the value used).</param>
    public static Strategy Pct(long seed, int depth, int stepEstimate = 0) => new PctStrategy((ulong)seed, depth, stepEstimate);

    /// <summary>
    /// Exhaustive depth-first search over all schedules with at most <paramref name="maxPreemptions"/> preemptions
    /// (Musuvathi &amp; Qadeer, "Iterative context bounding", PLDI 2007). A switch away from a thread that finished,
    /// blocked or spins is free. Stops when the tree is exhausted or the iteration budget is spent.
    /// </summary>
    public static Strategy BoundedPreemption(int maxPreemptions) => new DfsStrategy(maxPreemptions, []);

    /// <summary>Replays a recorded list of choices (as printed for a <see cref="BoundedPreemption"/> failure), then takes choice 0.</summary>
    public static Strategy Replay(string choices, int maxPreemptions) => new DfsStrategy(maxPreemptions, Parse(choices), replayOnly: true);

    /// <summary>A short name for reports.</summary>
    public abstract string Name { get; }

    /// <summary>The C# expression that recreates a strategy whose first iteration is the current one.</summary>
    internal abstract string ReplayCall();

    /// <summary>Prepares iteration <paramref name="iteration"/>; false when the strategy has nothing left to explore.</summary>
    internal abstract bool BeginIteration(int iteration, int threadCount);

    /// <summary>Called at the end of each iteration with the number of steps it took.</summary>
    internal virtual void EndIteration(long steps)
    {
    }

    /// <summary>
    /// Picks the next thread from <paramref name="candidates"/> (thread ids, ascending). <paramref name="current"/>
    /// is the running thread when it is among the candidates and staying on it is not a preemption's opposite,
    /// i.e. switching away would be a preemption; -1 when any choice is free.
    /// </summary>
    internal abstract int PickThread(int current, ReadOnlySpan<int> candidates, long step);

    /// <summary>Resolves a non-scheduling choice among <paramref name="count"/> options.</summary>
    internal abstract int PickChoice(int count);

    /// <summary>The running thread spins (waits for another): strategies with priorities demote it.</summary>
    internal virtual void OnSpin(int thread)
    {
    }

    private static List<int> Parse(string choices) =>
        choices.Length == 0
            ? []
            : choices.Split('.').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToList();

    private sealed class RandomWalkStrategy(ulong seed) : Strategy
    {
        private Prng _rng;
        private ulong _iterationSeed;

        public override string Name => "RandomWalk";

        internal override string ReplayCall() => $"Strategy.RandomWalk(seed: {_iterationSeed})";

        internal override bool BeginIteration(int iteration, int threadCount)
        {
            _iterationSeed = Prng.IterationSeed(seed, iteration);
            _rng = new Prng(_iterationSeed);
            return true;
        }

        internal override int PickThread(int current, ReadOnlySpan<int> candidates, long step) =>
            candidates[_rng.Next(candidates.Length)];

        internal override int PickChoice(int count) => _rng.Next(count);
    }

    private sealed class PctStrategy(ulong seed, int depth, int stepEstimate) : Strategy
    {
        private Prng _rng;
        private ulong _iterationSeed;
        private int _k = stepEstimate > 0 ? stepEstimate : 16;
        private long _maxSeen;
        private int _kUsed;
        private readonly bool _learn = stepEstimate <= 0;
        private int[] _priority = [];
        private long[] _changePoints = [];
        private int _changesDone;

        public override string Name => $"Pct(depth {depth})";

        internal override string ReplayCall() => $"Strategy.Pct(seed: {_iterationSeed}, depth: {depth}, stepEstimate: {_kUsed})";

        internal override bool BeginIteration(int iteration, int threadCount)
        {
            _iterationSeed = Prng.IterationSeed(seed, iteration);
            _rng = new Prng(_iterationSeed);
            _kUsed = _k;

            // Random distinct initial priorities d .. d + n - 1 (a Fisher-Yates shuffle); change points get 1 .. d - 1.
            _priority = new int[threadCount + 1];
            var order = Enumerable.Range(1, threadCount).ToArray();
            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = _rng.Next(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }

            for (int i = 0; i < order.Length; i++)
            {
                _priority[order[i]] = depth + i;
            }

            _changePoints = new long[Math.Max(0, depth - 1)];
            for (int i = 0; i < _changePoints.Length; i++)
            {
                _changePoints[i] = 1 + _rng.Next(_kUsed);
            }

            _changesDone = 0;
            return true;
        }

        internal override void EndIteration(long steps)
        {
            // Learned k: the longest iteration so far (the first iteration uses a small guess).
            _maxSeen = Math.Max(_maxSeen, steps);
            if (_learn)
            {
                _k = (int)Math.Clamp(_maxSeen, 1, 1_000_000);
            }
        }

        internal override int PickThread(int current, ReadOnlySpan<int> candidates, long step)
        {
            // A change point lowers the running thread below every initial priority (d - 1 - i for the i-th change).
            for (int i = 0; i < _changePoints.Length; i++)
            {
                if (_changePoints[i] == step && current >= 0)
                {
                    _priority[current] = depth - 1 - _changesDone;
                    _changesDone++;
                }
            }

            int best = candidates[0];
            foreach (int t in candidates)
            {
                if (_priority[t] > _priority[best])
                {
                    best = t;
                }
            }

            return best;
        }

        internal override int PickChoice(int count) => _rng.Next(count);

        internal override void OnSpin(int thread)
        {
            // A spinning thread waits for a lower-priority one: demote it below everyone, as Coyote's PCT does on yield.
            int min = _priority.Skip(1).Min();
            _priority[thread] = min - 1;
        }
    }

    /// <summary>Depth-first search over the tree of choices, one root-to-leaf path per iteration.</summary>
    private sealed class DfsStrategy : Strategy
    {
        private readonly int _maxPreemptions;
        private readonly bool _replayOnly;
        private readonly List<(int Chosen, int Count)> _stack = [];
        private readonly List<int> _initial;
        private int _position;
        private int _preemptions;
        private string _replay = "";

        public DfsStrategy(int maxPreemptions, List<int> initial, bool replayOnly = false)
        {
            _maxPreemptions = maxPreemptions;
            _initial = initial;
            _replayOnly = replayOnly;
        }

        public override string Name => _replayOnly ? "Replay" : $"BoundedPreemption({_maxPreemptions})";

        internal override string ReplayCall() => $"Strategy.Replay(\"{_replay}\", maxPreemptions: {_maxPreemptions})";

        internal override bool BeginIteration(int iteration, int threadCount)
        {
            if (iteration > 0)
            {
                if (_replayOnly)
                {
                    return false;
                }

                // Backtrack: drop exhausted trailing choices, then advance the deepest one with an untried option.
                while (_stack.Count > 0 && _stack[^1].Chosen + 1 >= _stack[^1].Count)
                {
                    _stack.RemoveAt(_stack.Count - 1);
                }

                if (_stack.Count == 0)
                {
                    return false;
                }

                _stack[^1] = (_stack[^1].Chosen + 1, _stack[^1].Count);
            }
            else
            {
                _stack.Clear();
                foreach (int c in _initial)
                {
                    _stack.Add((c, int.MaxValue));
                }
            }

            _replay = string.Join('.', _stack.Select(s => s.Chosen));
            _position = 0;
            _preemptions = 0;
            return true;
        }

        internal override void EndIteration(long steps)
        {
            // Choices recorded beyond the replayed prefix belong to this iteration's path.
            _replay = string.Join('.', _stack.Take(_position).Select(s => s.Chosen));
            if (_stack.Count > _position)
            {
                _stack.RemoveRange(_position, _stack.Count - _position);
            }
        }

        private int Choose(int count)
        {
            if (_position < _stack.Count)
            {
                var (chosen, recorded) = _stack[_position];
                if (recorded == int.MaxValue)
                {
                    _stack[_position] = (chosen, count); // a replayed prefix learns its branching on the way down
                }

                _position++;
                return Math.Min(chosen, count - 1);
            }

            _stack.Add((0, count));
            _position++;
            return 0;
        }

        internal override int PickThread(int current, ReadOnlySpan<int> candidates, long step)
        {
            if (current < 0)
            {
                return candidates[Choose(candidates.Length)];
            }

            // Option 0 keeps the running thread; the others preempt it, while the budget lasts.
            if (_preemptions >= _maxPreemptions || candidates.Length == 1)
            {
                return current;
            }

            int choice = Choose(candidates.Length);
            if (choice == 0)
            {
                return current;
            }

            _preemptions++;
            Span<int> others = stackalloc int[candidates.Length - 1];
            int n = 0;
            foreach (int t in candidates)
            {
                if (t != current)
                {
                    others[n++] = t;
                }
            }

            return others[choice - 1];
        }

        internal override int PickChoice(int count) => Choose(count);
    }

    /// <summary>Renders choices for diagnostics.</summary>
    internal static string Describe(IEnumerable<int> choices) => new StringBuilder().AppendJoin('.', choices).ToString();
}
