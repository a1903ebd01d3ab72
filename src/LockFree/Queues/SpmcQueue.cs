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
/// A bounded lock-free queue for one producer thread and any number of consumer threads: fan-out.
/// </summary>
/// <remarks>
/// <para>
/// Per-slot sequence numbers (Vyukov). Consumers claim a position with one compare-and-swap; the producer
/// uses no read-modify-write instruction. Full and empty answers are exact: a producer that meets a slot a
/// consumer has claimed but not yet cleared waits the few instructions until it is free. Before it answers
/// full at a new position, the producer re-reads its slot a few times (a fraction of a microsecond), so that a
/// producer polling a queue its consumers are draining does not stall their compare-and-swap (see docs/queues.md).
/// </para>
/// <para>
/// The capacity is rounded up to a power of two and reported by <see cref="Capacity"/>. Dequeued slots are
/// cleared, so the queue does not keep items alive. No operation allocates.
/// </para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}")]
public sealed class SpmcQueue<T> : IBoundedQueue<T>, IQueuePositions, IHeadSnapshot<T>, IEvictingQueue<T>
{
    // Not readonly: the engine is a mutable struct stored inline, so calls reach it without an indirection.
    private SequencedRing<T, Seam, SingleRole, MultiRole> _ring;

    /// <summary>Creates a queue that holds at least <paramref name="capacity"/> items.</summary>
    /// <param name="capacity">The minimum capacity, in [1, 2^30]; rounded up to a power of two.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is less than 1 or greater than 2^30.</exception>
    public SpmcQueue(int capacity) => _ring = new(capacity);

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

    /// <summary><see cref="TryEnqueue"/> without the boundary polls a full answer otherwise makes first (the back-pressure buffer's overflow paths).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryEnqueueWithoutPolls(T item) => _ring.TryEnqueueWithoutPolls(item);

    /// <summary>The place-or-evict enqueue of <see cref="OverflowPolicy.DropOldest"/> (see SequencedRing.Evicting.cs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal EvictingEnqueue EnqueueOrEvict(T item, [MaybeNull] out T evicted) => _ring.EnqueueOrEvict(item, out evicted);

    /// <inheritdoc cref="EnqueueOrEvict"/>
    EvictingEnqueue IEvictingQueue<T>.EnqueueOrEvict(T item, [MaybeNull] out T evicted) => _ring.EnqueueOrEvict(item, out evicted);

    /// <inheritdoc/>
    /// <remarks>Safe from any number of threads at once.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item) => _ring.TryDequeue(out item);

    /// <inheritdoc/>
    /// <remarks>Call from the single producer thread only. Takes min(items.Length, free space) items unless a consumer is mid-release at the end of the run.</remarks>
    public int TryEnqueueMany(ReadOnlySpan<T> items) => _ring.TryEnqueueMany(items);

    /// <inheritdoc/>
    /// <remarks>Safe from any number of threads at once. May take fewer items than are queued when another consumer interleaves, but at least one when the queue is not empty.</remarks>
    public int TryDequeueMany(Span<T> destination) => _ring.TryDequeueMany(destination);

    /// <inheritdoc/>
    bool IHeadSnapshot<T>.TrySnapshotHead([MaybeNullWhen(false)] out T item) => _ring.TrySnapshotHead(out item);

    /// <inheritdoc/>
    long IQueuePositions.EnqueuedPositions => _ring.EnqueuedPositions;

    /// <inheritdoc/>
    long IQueuePositions.DequeuedPositions => _ring.DequeuedPositions;
}
