using System.Text;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>The verdict of <see cref="LinearizabilityChecker"/>.</summary>
/// <param name="IsLinearizable">True when some order of the operations, consistent with real time, satisfies the spec.</param>
/// <param name="Explanation">For a failure: the history and the longest linearizable prefix found.</param>
/// <param name="StatesExplored">How many (linearized set, state) pairs the search visited.</param>
public sealed record LinearizabilityResult(bool IsLinearizable, string Explanation, long StatesExplored);

// Design: Wing & Gong's linearizability search (J. Wing, C. Gong, "Testing and verifying concurrent
// objects", JPDC 1993) with Lowe's memoisation (G. Lowe, "Testing for linearizability", CCPE 2017), the
// algorithm Porcupine implements.
//
// The history becomes a doubly linked list of call and return entries in time order (a call sorts before a
// return at the same timestamp, which only adds concurrency, so the check never rejects a correct object
// because of clock granularity). The search walks the list: at a call entry it tries to linearize that
// operation now (the spec accepts its output from the current state), unlinking its call and return
// entries and pushing a backtrack point; at a return entry it has met an operation that must already have
// taken effect, so it backtracks. A (linearized set, state) pair seen before is a dead end and is skipped:
// that cache is what makes the search practical on histories of hundreds of operations.
//
// The checker is itself tested (LinearizabilityCheckerTests): it accepts known-linearizable histories and
// rejects planted non-linearizable ones (lost item, duplicated item, reordered FIFO, stale empty).

/// <summary>Wing &amp; Gong's linearizability search with Lowe's memoisation (as in Porcupine).</summary>
public static class LinearizabilityChecker
{
    /// <summary>Checks <paramref name="history"/> against <paramref name="spec"/> from its initial state.</summary>
    public static LinearizabilityResult Check<TState, TInput, TOutput>(
        ISequentialSpec<TState, TInput, TOutput> spec,
        IReadOnlyList<Operation<TInput, TOutput>> history)
    {
        var search = new Search<TState, TInput, TOutput>(spec, history);
        bool ok = search.Run(spec.Initial, collectAll: false, finalStates: null);
        return new LinearizabilityResult(ok, ok ? string.Empty : search.Explain(), search.StatesExplored);
    }

    /// <summary>
    /// Checks a long history piece by piece: it is split at quiescent points (no operation spans them) and
    /// the set of states each piece can end in is carried into the next. Linearizability is compositional
    /// in time this way, so the verdict equals checking the whole history at once, at a fraction of the cost.
    /// </summary>
    /// <param name="spec">The sequential specification.</param>
    /// <param name="history">All operations (completed ones only).</param>
    /// <param name="maxCarriedStates">Bound on carried states; past it the check fails loudly rather than guessing.</param>
    public static LinearizabilityResult CheckInSegments<TState, TInput, TOutput>(
        ISequentialSpec<TState, TInput, TOutput> spec,
        IReadOnlyList<Operation<TInput, TOutput>> history,
        int maxCarriedStates = 4096)
    {
        List<List<Operation<TInput, TOutput>>> segments = SplitAtQuiescentPoints(history);
        var states = new HashSet<TState>(spec.StateComparer) { spec.Initial };
        long explored = 0;
        for (int s = 0; s < segments.Count; s++)
        {
            var next = new HashSet<TState>(spec.StateComparer);
            Search<TState, TInput, TOutput>? last = null;
            foreach (TState start in states)
            {
                last = new Search<TState, TInput, TOutput>(spec, segments[s]);
                last.Run(start, collectAll: true, finalStates: next);
                explored += last.StatesExplored;
                if (next.Count > maxCarriedStates)
                {
                    throw new InvalidOperationException(
                        $"Segment {s} can end in more than {maxCarriedStates} states; split the history finer.");
                }
            }

            if (next.Count == 0)
            {
                return new LinearizabilityResult(
                    false,
                    $"Segment {s} of {segments.Count} is not linearizable from any of its {states.Count} possible start states "
                    + $"({string.Join(", ", states.Take(8))}).\n{last!.Explain()}"
                    + (s > 0 ? $"Previous segment:\n{new Search<TState, TInput, TOutput>(spec, segments[s - 1]).Explain()}" : string.Empty),
                    explored);
            }

            states = next;
        }

        return new LinearizabilityResult(true, string.Empty, explored);
    }

    /// <summary>Splits a history at the points where every earlier operation has returned before any later one is called.</summary>
    public static List<List<Operation<TInput, TOutput>>> SplitAtQuiescentPoints<TInput, TOutput>(
        IReadOnlyList<Operation<TInput, TOutput>> history)
    {
        var sorted = history.OrderBy(o => o.Call).ThenBy(o => o.Return).ToList();
        var segments = new List<List<Operation<TInput, TOutput>>>();
        var current = new List<Operation<TInput, TOutput>>();
        long maxReturn = long.MinValue;
        foreach (Operation<TInput, TOutput> op in sorted)
        {
            if (current.Count > 0 && op.Call > maxReturn)
            {
                segments.Add(current);
                current = new List<Operation<TInput, TOutput>>();
            }

            current.Add(op);
            maxReturn = Math.Max(maxReturn, op.Return);
        }

        if (current.Count > 0)
        {
            segments.Add(current);
        }

        return segments;
    }

    private sealed class Search<TState, TInput, TOutput>
    {
        private readonly ISequentialSpec<TState, TInput, TOutput> _spec;
        private readonly IReadOnlyList<Operation<TInput, TOutput>> _ops;
        private readonly Entry _head;
        private int _longestPrefix;
        private List<int> _bestOrder = new();

        public Search(ISequentialSpec<TState, TInput, TOutput> spec, IReadOnlyList<Operation<TInput, TOutput>> ops)
        {
            _spec = spec;
            _ops = ops;
            var entries = new List<Entry>(ops.Count * 2);
            for (int i = 0; i < ops.Count; i++)
            {
                if (ops[i].Return < ops[i].Call)
                {
                    throw new ArgumentException($"Operation {i} returns before it is called.", nameof(ops));
                }

                var call = new Entry(i, isCall: true, ops[i].Call);
                var ret = new Entry(i, isCall: false, ops[i].Return);
                call.Match = ret;
                entries.Add(call);
                entries.Add(ret);
            }

            // Calls before returns at equal times: more concurrency, never a false alarm from a coarse clock.
            entries.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : (a.IsCall == b.IsCall ? 0 : a.IsCall ? -1 : 1));
            _head = new Entry(-1, isCall: false, long.MinValue);
            Entry previous = _head;
            foreach (Entry e in entries)
            {
                previous.Next = e;
                e.Previous = previous;
                previous = e;
            }
        }

        public long StatesExplored { get; private set; }

        public bool Run(TState initial, bool collectAll, HashSet<TState>? finalStates)
        {
            var linearized = new Bits(_ops.Count);
            var cache = new HashSet<(Bits, TState)>(new KeyComparer(_spec.StateComparer));
            var stack = new Stack<(Entry Call, TState State)>();
            var order = new List<int>();
            TState state = initial;
            Entry? entry = _head.Next;
            bool found = false;
            while (true)
            {
                if (_head.Next is null)
                {
                    found = true;
                    if (!collectAll)
                    {
                        return true;
                    }

                    finalStates!.Add(state);
                    entry = null; // all linearized: backtrack to look for other end states
                }

                if (entry is not null && entry.IsCall)
                {
                    Operation<TInput, TOutput> op = _ops[entry.Op];
                    if (_spec.TryStep(state, op.Input, op.Output, out TState next))
                    {
                        Bits with = linearized.With(entry.Op);
                        if (cache.Add((with, next)))
                        {
                            StatesExplored++;
                            stack.Push((entry, state));
                            state = next;
                            linearized = with;
                            order.Add(entry.Op);
                            if (order.Count > _longestPrefix)
                            {
                                _longestPrefix = order.Count;
                                _bestOrder = new List<int>(order);
                            }

                            Lift(entry);
                            entry = _head.Next;
                            continue;
                        }
                    }

                    entry = entry.Next;
                    continue;
                }

                // A return entry (or the end of a full linearization): undo the last choice.
                if (stack.Count == 0)
                {
                    return found;
                }

                (Entry call, TState before) = stack.Pop();
                state = before;
                linearized = linearized.Without(call.Op);
                order.RemoveAt(order.Count - 1);
                Unlift(call);
                entry = call.Next;
            }
        }

        public string Explain()
        {
            var text = new StringBuilder();
            text.AppendLine($"Not linearizable: the longest linearizable prefix has {_longestPrefix} of {_ops.Count} operations:");
            foreach (int i in _bestOrder)
            {
                text.AppendLine($"  ok   {Describe(i)}");
            }

            text.AppendLine("History (by call time):");
            foreach (int i in Enumerable.Range(0, _ops.Count).OrderBy(i => _ops[i].Call).Take(200))
            {
                text.AppendLine($"  {(_bestOrder.Contains(i) ? "     " : "---> ")}{Describe(i)}");
            }

            return text.ToString();
        }

        private string Describe(int i)
        {
            Operation<TInput, TOutput> op = _ops[i];
            string ret = op.Return == long.MaxValue ? "pending" : op.Return.ToString();
            return $"t{op.Thread} [{op.Call}, {ret}] {_spec.Describe(op.Input, op.Output)}";
        }

        private static void Lift(Entry call)
        {
            call.Previous!.Next = call.Next;
            call.Next!.Previous = call.Previous;
            Entry ret = call.Match!;
            ret.Previous!.Next = ret.Next;
            if (ret.Next is not null)
            {
                ret.Next.Previous = ret.Previous;
            }
        }

        private static void Unlift(Entry call)
        {
            Entry ret = call.Match!;
            ret.Previous!.Next = ret;
            if (ret.Next is not null)
            {
                ret.Next.Previous = ret;
            }

            call.Previous!.Next = call;
            call.Next!.Previous = call;
        }

        private sealed class Entry(int op, bool isCall, long time)
        {
            public int Op { get; } = op;

            public bool IsCall { get; } = isCall;

            public long Time { get; } = time;

            public Entry? Match { get; set; }

            public Entry? Previous { get; set; }

            public Entry? Next { get; set; }
        }

        private sealed class KeyComparer(IEqualityComparer<TState> states) : IEqualityComparer<(Bits, TState)>
        {
            public bool Equals((Bits, TState) x, (Bits, TState) y) => x.Item1.Equals(y.Item1) && states.Equals(x.Item2, y.Item2);

            public int GetHashCode((Bits, TState) key) => HashCode.Combine(key.Item1.GetHashCode(), states.GetHashCode(key.Item2!));
        }
    }

    /// <summary>An immutable bit set of linearized operations.</summary>
    private readonly struct Bits : IEquatable<Bits>
    {
        private readonly ulong[] _words;

        public Bits(int count) => _words = new ulong[(count + 63) / 64];

        private Bits(ulong[] words) => _words = words;

        public Bits With(int i)
        {
            ulong[] copy = (ulong[])_words.Clone();
            copy[i >> 6] |= 1UL << (i & 63);
            return new Bits(copy);
        }

        public Bits Without(int i)
        {
            ulong[] copy = (ulong[])_words.Clone();
            copy[i >> 6] &= ~(1UL << (i & 63));
            return new Bits(copy);
        }

        public bool Equals(Bits other) => _words.AsSpan().SequenceEqual(other._words);

        public override bool Equals(object? obj) => obj is Bits other && Equals(other);

        public override int GetHashCode()
        {
            var hash = default(HashCode);
            foreach (ulong w in _words)
            {
                hash.Add(w);
            }

            return hash.ToHashCode();
        }
    }
}
