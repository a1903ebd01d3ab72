using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Internal;
using LockFree.Queues;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

/// <summary>
/// A bounded wait-free queue for exactly one producer thread and one consumer thread: the fastest way to
/// hand items from one thread to another.
/// </summary>
/// <remarks>
/// <para>
/// Lamport's ring: no read-modify-write instruction, no fence, and the producer and consumer indices on
/// separate cache lines. The producer rereads the consumer's index only when its cached copy says full; the
/// consumer learns that an item has arrived from a sequence word in the item's own slot, so a polling
/// consumer touches only the slot line. Batch operations publish their index once per batch.
/// </para>
/// <para>
/// A consumer that keeps pace with a producer streaming at full speed pauses for a few microseconds now and
/// then (only after many takes in a row with no empty answer, and only while it trails the producer by a
/// few cache lines), so the two stop sharing cache lines; a consumer that finds the queue empty in between,
/// as in request/response traffic, never pauses.
/// </para>
/// <para>
/// The capacity is rounded up to a power of two and reported by <see cref="Capacity"/>. Dequeued slots are
/// cleared, so the queue does not keep items alive. No operation allocates.
/// </para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}")]
public sealed class SpscQueue<T> : IBoundedQueue<T>, IQueuePositions, IHeadSnapshot<T>
{
    // Not readonly: the engine is a mutable struct stored inline, so calls reach it without an indirection.
    private SpscRing<T, Seam> _ring;

    /// <summary>Creates a queue that holds at least <paramref name="capacity"/> items.</summary>
    /// <param name="capacity">The minimum capacity, in [1, 2^30]; rounded up to a power of two.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is less than 1 or greater than 2^30.</exception>
    public SpscQueue(int capacity) => _ring = new(capacity);

    /// <inheritdoc/>
    public int Capacity => _ring.Capacity;

    /// <inheritdoc/>
    public int Count => _ring.Count;

    /// <inheritdoc/>
    public bool IsEmpty => _ring.IsEmpty;

    /// <inheritdoc/>
    /// <remarks>Call from the single producer thread only.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(T item) => _ring.TryEnqueue(item);

    /// <inheritdoc/>
    /// <remarks>Call from the single consumer thread only.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item) => _ring.TryDequeue(out item);

    /// <inheritdoc/>
    /// <remarks>Call from the single producer thread only. Takes min(items.Length, free space) items, where the free space is read once at the start: a dequeue racing with the call may free room it does not use.</remarks>
    public int TryEnqueueMany(ReadOnlySpan<T> items) => _ring.TryEnqueueMany(items);

    /// <inheritdoc/>
    /// <remarks>Call from the single consumer thread only. Takes the run of published items at the head, up to destination.Length: from one thread, min(destination.Length, Count); an enqueue racing with the call may or may not add to the run.</remarks>
    public int TryDequeueMany(Span<T> destination) => _ring.TryDequeueMany(destination);

    /// <summary>
    /// Reads the item at the head without removing it. Returns false, with <paramref name="item"/> set to
    /// default, when the queue is empty. Call from the single consumer thread only.
    /// </summary>
    public bool TryPeek([MaybeNullWhen(false)] out T item) => _ring.TryPeek(out item);

    /// <inheritdoc/>
    bool IHeadSnapshot<T>.TrySnapshotHead([MaybeNullWhen(false)] out T item) => _ring.TrySnapshotHead(out item);

    /// <inheritdoc/>
    long IQueuePositions.EnqueuedPositions => _ring.EnqueuedPositions;

    /// <inheritdoc/>
    long IQueuePositions.DequeuedPositions => _ring.DequeuedPositions;
}
