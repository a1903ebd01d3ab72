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
/// A bounded lock-free queue for any number of producer threads and one consumer thread: fan-in.
/// </summary>
/// <remarks>
/// <para>
/// Per-slot sequence numbers (Vyukov). Producers claim a position with one compare-and-swap; the consumer
/// uses no read-modify-write instruction. Full and empty answers are exact: a consumer that meets a slot a
/// producer has claimed but not yet written waits the few instructions until it is written. Before it answers
/// empty at a new position, the consumer re-reads its slot a few times (a fraction of a microsecond), so that a
/// consumer polling a queue its producers are filling does not stall their compare-and-swap (see docs/queues.md).
/// </para>
/// <para>
/// The capacity is rounded up to a power of two and reported by <see cref="Capacity"/>. Dequeued slots are
/// cleared, so the queue does not keep items alive. No operation allocates.
/// </para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}")]
public sealed class MpscQueue<T> : IBoundedQueue<T>, IQueuePositions, IHeadSnapshot<T>, IClosableProducers
{
    // Not readonly: the engine is a mutable struct stored inline, so calls reach it without an indirection.
    private SequencedRing<T, Seam, MultiRole, SingleRole> _ring;

    /// <summary>Creates a queue that holds at least <paramref name="capacity"/> items.</summary>
    /// <param name="capacity">The minimum capacity, in [1, 2^30]; rounded up to a power of two.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is less than 1 or greater than 2^30.</exception>
    public MpscQueue(int capacity) => _ring = new(capacity);

    /// <inheritdoc/>
    public int Capacity => _ring.Capacity;

    /// <inheritdoc/>
    public int Count => _ring.Count;

    /// <inheritdoc/>
    public bool IsEmpty => _ring.IsEmpty;

    /// <inheritdoc/>
    /// <remarks>Safe from any number of threads at once.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(T item) => _ring.TryEnqueue(item);

    /// <inheritdoc/>
    /// <remarks>Call from the single consumer thread only.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item) => _ring.TryDequeue(out item);

    /// <inheritdoc/>
    /// <remarks>Safe from any number of threads at once. May take fewer items than there is room for when another producer interleaves, but at least one when there is room.</remarks>
    public int TryEnqueueMany(ReadOnlySpan<T> items) => _ring.TryEnqueueMany(items);

    /// <inheritdoc/>
    /// <remarks>Call from the single consumer thread only. Takes min(destination.Length, Count) items unless a producer is mid-publish at the end of the run.</remarks>
    public int TryDequeueMany(Span<T> destination) => _ring.TryDequeueMany(destination);

    /// <summary>
    /// Reads the item at the head without removing it. Returns false, with <paramref name="item"/> set to
    /// default, when the queue is empty. Call from the single consumer thread only.
    /// </summary>
    public bool TryPeek([MaybeNullWhen(false)] out T item) => _ring.TryPeek(out item);

    /// <inheritdoc/>
    long IClosableProducers.CloseProducers() => _ring.CloseProducers();

    /// <inheritdoc/>
    bool IHeadSnapshot<T>.TrySnapshotHead([MaybeNullWhen(false)] out T item) => _ring.TrySnapshotHead(out item);

    /// <inheritdoc/>
    long IQueuePositions.EnqueuedPositions => _ring.EnqueuedPositions;

    /// <inheritdoc/>
    long IQueuePositions.DequeuedPositions => _ring.DequeuedPositions;
}
