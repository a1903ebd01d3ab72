using System.Diagnostics.CodeAnalysis;

namespace LockFree;

/// <summary>
/// A bounded, non-blocking FIFO queue: the contract shared by <see cref="SpscQueue{T}"/>,
/// <see cref="MpscQueue{T}"/>, <see cref="SpmcQueue{T}"/> and <see cref="MpmcQueue{T}"/>.
/// </summary>
/// <remarks>
/// Every member returns at once with an answer (none blocks waiting for space or items). The types differ
/// in how many threads may play each role at the same time; see <c>docs/queues.md</c> for the choice guide.
/// Calling a single-producer or single-consumer side from two threads at once is undefined behaviour.
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
public interface IBoundedQueue<T>
{
    /// <summary>The number of items the queue holds when full: the requested capacity rounded up to a power of two.</summary>
    int Capacity { get; }

    /// <summary>
    /// The number of items in the queue: an approximate snapshot (the queue may change while it is read),
    /// always in [0, <see cref="Capacity"/>]. Use it for metrics, not for control flow.
    /// </summary>
    int Count { get; }

    /// <summary>Whether the queue looked empty at the moment of the call: a snapshot, like <see cref="Count"/>.</summary>
    bool IsEmpty { get; }

    /// <summary>Adds <paramref name="item"/> at the tail. Returns false, leaving the queue unchanged, when it is full.</summary>
    bool TryEnqueue(T item);

    /// <summary>Removes the item at the head. Returns false, with <paramref name="item"/> set to default, when the queue is empty.</summary>
    bool TryDequeue([MaybeNullWhen(false)] out T item);

    /// <summary>
    /// Adds a prefix of <paramref name="items"/>, in order, and returns its length: 0 when the queue is full or
    /// <paramref name="items"/> is empty,
    /// otherwise at least 1 and at most the free space (see each type for when it may take fewer).
    /// </summary>
    int TryEnqueueMany(ReadOnlySpan<T> items);

    /// <summary>
    /// Removes up to <c>destination.Length</c> items from the head into the start of
    /// <paramref name="destination"/>, in order, and returns how many: 0 when the queue is empty or
    /// <paramref name="destination"/> is empty,
    /// otherwise at least 1.
    /// </summary>
    int TryDequeueMany(Span<T> destination);
}
