using System.Collections.Immutable;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>The kind of a queue operation in a history.</summary>
public enum QueueOpKind
{
    /// <summary><c>TryEnqueue(Value)</c>.</summary>
    Enqueue,

    /// <summary><c>TryDequeue(out _)</c>.</summary>
    Dequeue,

    /// <summary><c>TryPeek(out _)</c>.</summary>
    Peek,

    /// <summary><c>TryEnqueueMany(Values)</c>.</summary>
    EnqueueMany,

    /// <summary><c>TryDequeueMany(new int[Max])</c>.</summary>
    DequeueMany,

    /// <summary><c>EnqueueOrEvict(Value, out evicted)</c>: the place-or-evict enqueue behind <c>OverflowPolicy.DropOldest</c>.</summary>
    EnqueueOrEvict,
}

/// <summary>A queue call and its arguments.</summary>
public sealed record QueueInput(QueueOpKind Kind, int Value = 0, ImmutableArray<int> Values = default, int Max = 0)
{
    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        QueueOpKind.Enqueue => $"TryEnqueue({Value})",
        QueueOpKind.EnqueueMany => $"TryEnqueueMany([{string.Join(",", Values)}])",
        QueueOpKind.DequeueMany => $"TryDequeueMany({Max})",
        QueueOpKind.EnqueueOrEvict => $"EnqueueOrEvict({Value})",
        _ => $"Try{Kind}()",
    };

    /// <summary>A <c>TryEnqueue(value)</c> call.</summary>
    public static QueueInput Enqueue(int value) => new(QueueOpKind.Enqueue, Value: value);

    /// <summary>A <c>TryDequeue</c> call.</summary>
    public static QueueInput Dequeue() => new(QueueOpKind.Dequeue);

    /// <summary>A <c>TryPeek</c> call.</summary>
    public static QueueInput Peek() => new(QueueOpKind.Peek);

    /// <summary>A <c>TryEnqueueMany(values)</c> call.</summary>
    public static QueueInput EnqueueMany(params int[] values) => new(QueueOpKind.EnqueueMany, Values: [.. values]);

    /// <summary>A <c>TryDequeueMany</c> call with a destination of <paramref name="max"/> items.</summary>
    public static QueueInput DequeueMany(int max) => new(QueueOpKind.DequeueMany, Max: max);

    /// <summary>An <c>EnqueueOrEvict(value)</c> call.</summary>
    public static QueueInput EnqueueOrEvict(int value) => new(QueueOpKind.EnqueueOrEvict, Value: value);
}

/// <summary>
/// What a queue call returned: <see cref="Ok"/> for the bool-returning calls, <see cref="Value"/> for
/// dequeue/peek, <see cref="Values"/> for dequeue-many; <see cref="Count"/> is how many items the call
/// moved (1 for a successful TryEnqueue/TryDequeue, 0 for a peek or a failure).
/// </summary>
public sealed record QueueOutput(bool Ok, int Value = 0, int Count = 0, ImmutableArray<int> Values = default, bool Evicted = false)
{
    /// <inheritdoc/>
    public override string ToString() => Evicted ? $"evicted {Value}" : !Values.IsDefault ? $"[{string.Join(",", Values)}]" : Ok && Count == 0 ? $"{Value}" : Count > 0 && Value != 0 ? $"{Value}" : $"{Ok}/{Count}";

    /// <summary>A Try call that returned false.</summary>
    public static readonly QueueOutput Failed = new(false);

    /// <summary>A TryEnqueue that returned true.</summary>
    public static readonly QueueOutput Succeeded = new(true, Count: 1);

    /// <summary>A TryDequeue that returned <paramref name="value"/>.</summary>
    public static QueueOutput Item(int value) => new(true, Value: value, Count: 1);

    /// <summary>A TryPeek that returned <paramref name="value"/> (nothing moved).</summary>
    public static QueueOutput Peeked(int value) => new(true, Value: value);

    /// <summary>A TryEnqueueMany that took <paramref name="count"/> items.</summary>
    public static QueueOutput Took(int count) => new(count > 0, Count: count);

    /// <summary>A TryDequeueMany that returned <paramref name="values"/>.</summary>
    public static QueueOutput Items(ReadOnlySpan<int> values) => new(values.Length > 0, Count: values.Length, Values: [.. values]);

    /// <summary>An EnqueueOrEvict that placed its item by evicting <paramref name="value"/>.</summary>
    public static QueueOutput PlacedEvicting(int value) => new(true, Value: value, Count: 1, Evicted: true);
}

/// <summary>
/// The sequential specification of a bounded FIFO queue of <see cref="int"/> items.
/// </summary>
/// <remarks>
/// Full and empty answers must be exact: no queue in the family may fail a TryEnqueue while it has room
/// or a TryDequeue while it holds an item (at the linearization point). Batch calls under concurrency move
/// a prefix of at least one item whenever one item could have moved, and none only when the queue is
/// full/empty: every queue reads the other side's progress once and publishes later, so a racing call may
/// free room or add items the batch does not use (the sequenced rings also stop at a slot still in flight).
/// <paramref name="exactBatches"/> demands min(requested, available) exactly: what every queue does when
/// used from one thread (the FsCheck model tests) — never under concurrency.
/// </remarks>
/// <param name="capacity">The queue's real (rounded) capacity.</param>
/// <param name="exactBatches">Whether batch calls must move as many items as possible.</param>
public sealed class QueueSpec(int capacity, bool exactBatches) : ISequentialSpec<ImmutableQueueState, QueueInput, QueueOutput>
{
    /// <inheritdoc/>
    public ImmutableQueueState Initial => ImmutableQueueState.Empty;

    /// <inheritdoc/>
    public IEqualityComparer<ImmutableQueueState> StateComparer => ImmutableQueueState.Comparer;

    /// <inheritdoc/>
    public bool TryStep(ImmutableQueueState state, QueueInput input, QueueOutput output, out ImmutableQueueState next)
    {
        next = state;
        ImmutableArray<int> items = state.Items;
        switch (input.Kind)
        {
            case QueueOpKind.Enqueue:
                if (items.Length < capacity)
                {
                    next = new ImmutableQueueState(items.Add(input.Value));
                    return output.Ok;
                }

                return !output.Ok;

            case QueueOpKind.EnqueueOrEvict:
                // Place, or, full, evict the oldest and place: one atomic step. (A closed ring's answer is not modelled.)
                if (items.Length < capacity)
                {
                    next = new ImmutableQueueState(items.Add(input.Value));
                    return output.Ok && !output.Evicted;
                }

                next = new ImmutableQueueState(items.RemoveAt(0).Add(input.Value));
                return output.Ok && output.Evicted && output.Value == items[0];

            case QueueOpKind.Dequeue:
                if (items.Length == 0)
                {
                    return !output.Ok;
                }

                next = new ImmutableQueueState(items.RemoveAt(0));
                return output.Ok && output.Value == items[0];

            case QueueOpKind.Peek:
                return items.Length == 0 ? !output.Ok : output.Ok && output.Value == items[0];

            case QueueOpKind.EnqueueMany:
            {
                int most = Math.Min(input.Values.Length, capacity - items.Length);
                if (!CountAllowed(output.Count, most))
                {
                    return false;
                }

                next = new ImmutableQueueState(items.AddRange(input.Values.AsSpan(0, output.Count)));
                return true;
            }

            case QueueOpKind.DequeueMany:
            {
                int most = Math.Min(input.Max, items.Length);
                ImmutableArray<int> got = output.Values.IsDefault ? [] : output.Values;
                if (!CountAllowed(got.Length, most) || !items.AsSpan(0, got.Length).SequenceEqual(got.AsSpan()))
                {
                    return false;
                }

                next = new ImmutableQueueState(items.RemoveRange(0, got.Length));
                return true;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(input));
        }
    }

    /// <inheritdoc/>
    public string Describe(QueueInput input, QueueOutput output) => input.Kind switch
    {
        QueueOpKind.Enqueue => $"TryEnqueue({input.Value}) -> {output.Ok}",
        QueueOpKind.EnqueueOrEvict => output.Evicted ? $"EnqueueOrEvict({input.Value}) -> evicted {output.Value}" : $"EnqueueOrEvict({input.Value}) -> placed",
        QueueOpKind.Dequeue => output.Ok ? $"TryDequeue() -> {output.Value}" : "TryDequeue() -> false",
        QueueOpKind.Peek => output.Ok ? $"TryPeek() -> {output.Value}" : "TryPeek() -> false",
        QueueOpKind.EnqueueMany => $"TryEnqueueMany([{string.Join(",", input.Values)}]) -> {output.Count}",
        QueueOpKind.DequeueMany => $"TryDequeueMany({input.Max}) -> [{string.Join(",", output.Values.IsDefault ? [] : output.Values)}]",
        _ => input.ToString(),
    };

    private bool CountAllowed(int count, int most) =>
        exactBatches ? count == most : (most == 0 ? count == 0 : count >= 1 && count <= most);
}

/// <summary>A queue's abstract contents, oldest first, with structural equality.</summary>
public sealed class ImmutableQueueState(ImmutableArray<int> items)
{
    /// <summary>The empty queue.</summary>
    public static readonly ImmutableQueueState Empty = new([]);

    /// <summary>Structural comparer for memoisation.</summary>
    public static readonly IEqualityComparer<ImmutableQueueState> Comparer = new StateComparer();

    /// <summary>The items, oldest first.</summary>
    public ImmutableArray<int> Items { get; } = items;

    /// <inheritdoc/>
    public override string ToString() => $"[{string.Join(",", Items)}]";

    private sealed class StateComparer : IEqualityComparer<ImmutableQueueState>
    {
        public bool Equals(ImmutableQueueState? x, ImmutableQueueState? y) =>
            ReferenceEquals(x, y) || (x is not null && y is not null && x.Items.AsSpan().SequenceEqual(y.Items.AsSpan()));

        public int GetHashCode(ImmutableQueueState state)
        {
            var hash = default(HashCode);
            foreach (int item in state.Items)
            {
                hash.Add(item);
            }

            return hash.ToHashCode();
        }
    }
}
