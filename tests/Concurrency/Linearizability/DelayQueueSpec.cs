using System.Collections.Immutable;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>The kind of a delay-queue operation in a history.</summary>
public enum DelayOpKind
{
    /// <summary><c>TryEnqueue(Value, Delay)</c>.</summary>
    Enqueue,

    /// <summary><c>TryDequeue(out _)</c>.</summary>
    Dequeue,

    /// <summary>The test moves the clock forward by <c>Delay</c> units (at a quiescent point only: see the spec's remarks).</summary>
    Advance,
}

/// <summary>
/// A delay-queue call: the value and the delay (in clock units) of an enqueue, or the step of an advance.
/// <see cref="Parking"/> marks a dequeue made by a reader about to park (it may arm the wake-up); the spec treats
/// it as any dequeue.
/// </summary>
public sealed record DelayInput(DelayOpKind Kind, int Value = 0, long Delay = 0, bool Parking = false)
{
    /// <summary>A <c>TryEnqueue(value, delay)</c> call.</summary>
    public static DelayInput Enqueue(int value, long delay) => new(DelayOpKind.Enqueue, value, delay);

    /// <summary>A <c>TryDequeue</c> call.</summary>
    public static DelayInput Dequeue() => new(DelayOpKind.Dequeue);

    /// <summary>The clock moves forward by <paramref name="step"/> units.</summary>
    public static DelayInput Advance(long step) => new(DelayOpKind.Advance, Delay: step);

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        DelayOpKind.Enqueue => $"TryEnqueue({Value}, +{Delay})",
        DelayOpKind.Advance => $"Advance(+{Delay})",
        _ => Parking ? "TryTake(park)" : "TryDequeue()",
    };
}

/// <summary>
/// The sequential specification of a bounded delay queue of <see cref="int"/> items on a clock counted in whole
/// units: an enqueue at time <c>now</c> with delay <c>d</c> makes its item due at <c>now + d</c>; a dequeue returns
/// the item with the earliest due time among those due (due ≤ now), ties in enqueue order, and false exactly when
/// no item is due; <see cref="DelayOpKind.Advance"/> moves the clock.
/// </summary>
/// <remarks>
/// <para>
/// The clock is part of the state, so histories may only move it where no enqueue is in flight (the tests advance
/// it at quiescent points, or keep it fixed): a real enqueue reads the clock some time before its item becomes
/// visible, so an enqueue spanning an advance is not a single atomic step against this clock.
/// </para>
/// <para>
/// An accepted enqueue must find room (the capacity is never exceeded). A rejected enqueue must find the queue full
/// unless <paramref name="lenientRejects"/>: <see cref="DelayQueue{T}"/> reserves room before its item enters the
/// inbox, so a concurrent enqueue may be refused for room held by one still in flight, which a dequeue that begins
/// after the refusal does not see yet. No total order explains both, so strict rejections hold only in histories
/// with room for every enqueue; with small capacities the check covers accepts (the bound), and the scenario's
/// exactly-once accounting covers the rest.
/// </para>
/// </remarks>
/// <param name="capacity">The queue's capacity.</param>
/// <param name="lenientRejects">Whether a rejection is accepted while the queue has room.</param>
public sealed class DelayQueueSpec(int capacity, bool lenientRejects) : ISequentialSpec<DelayQueueState, DelayInput, QueueOutput>
{
    /// <inheritdoc/>
    public DelayQueueState Initial => DelayQueueState.Empty;

    /// <inheritdoc/>
    public IEqualityComparer<DelayQueueState> StateComparer => DelayQueueState.Comparer;

    /// <inheritdoc/>
    public bool TryStep(DelayQueueState state, DelayInput input, QueueOutput output, out DelayQueueState next)
    {
        next = state;
        ImmutableArray<(long Due, int Value)> items = state.Items;
        switch (input.Kind)
        {
            case DelayOpKind.Enqueue:
                if (!output.Ok)
                {
                    return lenientRejects || items.Length >= capacity;
                }

                if (items.Length >= capacity)
                {
                    return false;
                }

                long due = state.Now + input.Delay;
                int at = items.Length;
                while (at > 0 && items[at - 1].Due > due)
                {
                    at--; // after every item due at or before it: due time, then arrival order
                }

                next = new DelayQueueState(state.Now, items.Insert(at, (due, input.Value)));
                return true;

            case DelayOpKind.Dequeue:
                if (items.Length == 0 || items[0].Due > state.Now)
                {
                    return !output.Ok;
                }

                next = new DelayQueueState(state.Now, items.RemoveAt(0));
                return output.Ok && output.Value == items[0].Value;

            case DelayOpKind.Advance:
                next = new DelayQueueState(state.Now + input.Delay, items);
                return true;

            default:
                throw new ArgumentOutOfRangeException(nameof(input));
        }
    }

    /// <inheritdoc/>
    public string Describe(DelayInput input, QueueOutput output) => input.Kind switch
    {
        DelayOpKind.Enqueue => $"{input} -> {output.Ok}",
        DelayOpKind.Dequeue => output.Ok ? $"{input} -> {output.Value}" : $"{input} -> false",
        _ => input.ToString(),
    };
}

/// <summary>A delay queue's abstract state: the clock and the items by (due, arrival), with structural equality.</summary>
public sealed class DelayQueueState(long now, ImmutableArray<(long Due, int Value)> items)
{
    /// <summary>Time 0, no items.</summary>
    public static readonly DelayQueueState Empty = new(0, []);

    /// <summary>Structural comparer for memoisation.</summary>
    public static readonly IEqualityComparer<DelayQueueState> Comparer = new StateComparer();

    /// <summary>The clock, in units.</summary>
    public long Now { get; } = now;

    /// <summary>The items, earliest due first, ties in arrival order.</summary>
    public ImmutableArray<(long Due, int Value)> Items { get; } = items;

    /// <inheritdoc/>
    public override string ToString() => $"t={Now} [{string.Join(",", Items.Select(i => $"{i.Value}@{i.Due}"))}]";

    private sealed class StateComparer : IEqualityComparer<DelayQueueState>
    {
        public bool Equals(DelayQueueState? x, DelayQueueState? y) =>
            ReferenceEquals(x, y) || (x is not null && y is not null && x.Now == y.Now && x.Items.AsSpan().SequenceEqual(y.Items.AsSpan()));

        public int GetHashCode(DelayQueueState state)
        {
            var hash = default(HashCode);
            hash.Add(state.Now);
            foreach ((long due, int value) in state.Items)
            {
                hash.Add(due);
                hash.Add(value);
            }

            return hash.ToHashCode();
        }
    }
}
