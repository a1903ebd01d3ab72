using System.Collections.Immutable;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>The kind of a work-stealing deque operation in a history.</summary>
public enum DequeOpKind
{
    /// <summary>The owner's <c>Push(Value)</c>.</summary>
    Push,

    /// <summary>The owner's <c>TryPop</c> (bottom, LIFO).</summary>
    Pop,

    /// <summary>A thief's <c>TrySteal</c> (top, FIFO); a batch steal is recorded as one of these per item taken.</summary>
    Steal,
}

/// <summary>A deque call and its argument.</summary>
public sealed record DequeInput(DequeOpKind Kind, int Value = 0)
{
    /// <inheritdoc/>
    public override string ToString() => Kind == DequeOpKind.Push ? $"Push({Value})" : Kind.ToString();
}

/// <summary>What a deque call returned: <see cref="StealResult.Success"/> with <see cref="Value"/>, <see cref="StealResult.Empty"/> or <see cref="StealResult.Retry"/> (pops use Success/Empty).</summary>
public sealed record DequeOutput(StealResult Result, int Value = 0)
{
    /// <summary>A push (always succeeds).</summary>
    public static readonly DequeOutput Pushed = new(StealResult.Success);

    /// <summary>An empty answer.</summary>
    public static readonly DequeOutput Empty = new(StealResult.Empty);

    /// <summary>A lost race (nothing taken).</summary>
    public static readonly DequeOutput Retry = new(StealResult.Retry);

    /// <summary>An item taken.</summary>
    public static DequeOutput Item(int value) => new(StealResult.Success, value);

    /// <inheritdoc/>
    public override string ToString() => Result == StealResult.Success ? Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : Result.ToString();
}

/// <summary>
/// The sequential specification of a work-stealing deque of <see cref="int"/> items (state: oldest first, the
/// owner's end last). Push appends at the bottom; Pop takes the bottom item and answers empty only when the
/// deque is empty; Steal takes the top item and answers <see cref="StealResult.Empty"/> only when the deque is
/// empty; <see cref="StealResult.Retry"/> is allowed in any state and changes nothing. A batch steal is
/// specified as a sequence of single steals, each at its own instant within the call (the engine claims one
/// item per CAS, so the owner may push or pop between two of them); the harness records one Steal per item.
/// </summary>
public sealed class DequeSpec : ISequentialSpec<ImmutableQueueState, DequeInput, DequeOutput>
{
    /// <inheritdoc/>
    public ImmutableQueueState Initial => ImmutableQueueState.Empty;

    /// <inheritdoc/>
    public IEqualityComparer<ImmutableQueueState> StateComparer => ImmutableQueueState.Comparer;

    /// <inheritdoc/>
    public bool TryStep(ImmutableQueueState state, DequeInput input, DequeOutput output, out ImmutableQueueState next)
    {
        next = state;
        ImmutableArray<int> items = state.Items;
        switch (input.Kind)
        {
            case DequeOpKind.Push:
                next = new ImmutableQueueState(items.Add(input.Value));
                return output.Result == StealResult.Success;

            case DequeOpKind.Pop:
                if (items.Length == 0)
                {
                    return output.Result == StealResult.Empty;
                }

                next = new ImmutableQueueState(items.RemoveAt(items.Length - 1));
                return output.Result == StealResult.Success && output.Value == items[^1];

            case DequeOpKind.Steal:
                switch (output.Result)
                {
                    case StealResult.Retry:
                        return true;
                    case StealResult.Empty:
                        return items.Length == 0;
                    default:
                        if (items.Length == 0 || items[0] != output.Value)
                        {
                            return false;
                        }

                        next = new ImmutableQueueState(items.RemoveAt(0));
                        return true;
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(input));
        }
    }

    /// <inheritdoc/>
    public string Describe(DequeInput input, DequeOutput output) => $"{input} -> {output}";
}
