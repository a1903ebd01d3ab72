using LockFree.Tests.Concurrency.Linearizability;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// Sequential spec of a bounded FIFO queue over the inputs/outputs recorded by <see cref="QueueScenario"/>.
/// TODO(merge): the lead's <c>QueueSpec</c> in main is the project's spec; at the merge either adapt
/// <see cref="QueueInput"/>/<see cref="QueueOutput"/> to it or keep this one as the adapter. Batch semantics
/// follow SequencedRing's contract: a batch takes at least one item when a single call would have succeeded and
/// never more than fit / are there; it may take fewer (it stops at a slot still in flight).
/// </summary>
internal sealed class BoundedQueueSpec(int capacity) : ISequentialSpec<int[], QueueInput, QueueOutput>
{
    public int[] Initial => [];

    public IEqualityComparer<int[]> StateComparer { get; } = new SequenceComparer();

    public bool TryStep(int[] state, QueueInput input, QueueOutput output, out int[] next)
    {
        next = state;
        switch (input.Kind)
        {
            case QueueOpKind.Enqueue:
                if (!output.Ok)
                {
                    return state.Length == capacity;
                }

                if (state.Length == capacity)
                {
                    return false;
                }

                next = [.. state, input.Values[0]];
                return true;

            case QueueOpKind.EnqueueMany:
            {
                int free = capacity - state.Length;
                int n = output.Count;
                if (n > free || (n == 0 && free > 0))
                {
                    return false;
                }

                next = [.. state, .. input.Values.AsSpan(0, n)];
                return true;
            }

            case QueueOpKind.Dequeue:
            case QueueOpKind.DequeueMany:
            {
                int n = output.Count;
                if (n == 0)
                {
                    return state.Length == 0;
                }

                if (n > state.Length || !state.AsSpan(0, n).SequenceEqual(output.Values))
                {
                    return false;
                }

                next = state[n..];
                return true;
            }

            case QueueOpKind.Peek:
                return output.Ok ? state.Length > 0 && state[0] == output.Values[0] : state.Length == 0;

            default:
                return false;
        }
    }

    public string Describe(QueueInput input, QueueOutput output) => $"{input} -> {output}";

    private sealed class SequenceComparer : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? x, int[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(int[] obj)
        {
            var h = new HashCode();
            foreach (int v in obj)
            {
                h.Add(v);
            }

            return h.GetHashCode();
        }
    }
}
