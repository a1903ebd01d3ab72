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
/// A bounded lock-free queue for any number of producer and consumer threads.
/// </summary>
/// <remarks>
/// <para>
/// Per-slot sequence numbers (Vyukov, the scheme behind ConcurrentQueue's segments), without the
/// segment growth: producers and consumers each claim positions with one compare-and-swap. Full and empty
/// answers are exact: a thread that meets a slot claimed by the other side but not yet finished waits the
/// few instructions until it is.
/// </para>
/// <para>
/// The capacity is rounded up to a power of two and reported by <see cref="Capacity"/>. Dequeued slots are
/// cleared, so the queue does not keep items alive. No operation allocates.
/// </para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}")]
public sealed class MpmcQueue<T> : IBoundedQueue<T>, IQueuePositions, IHeadSnapshot<T>, IClosableProducers, IEvictingQueue<T>
{
    // Not readonly: the engine is a mutable struct stored inline, so calls reach it without an indirection.
    private SequencedRing<T, Seam, MultiRole, MultiRole> _ring;

    /// <summary>Creates a queue that holds at least <paramref name="capacity"/> items.</summary>
    /// <param name="capacity">The minimum capacity, in [1, 2^30]; rounded up to a power of two.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is less than 1 or greater than 2^30.</exception>
    public MpmcQueue(int capacity) => _ring = new(capacity);

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
    /// <remarks>Safe from any number of threads at once. May take fewer items than there is room for when other threads interleave, but at least one when there is room.</remarks>
    public int TryEnqueueMany(ReadOnlySpan<T> items) => _ring.TryEnqueueMany(items);

    /// <inheritdoc/>
    /// <remarks>Safe from any number of threads at once. May take fewer items than are queued when other threads interleave, but at least one when the queue is not empty.</remarks>
    public int TryDequeueMany(Span<T> destination) => _ring.TryDequeueMany(destination);

    /// <inheritdoc/>
    long IClosableProducers.CloseProducers() => _ring.CloseProducers();

    /// <inheritdoc/>
    bool IHeadSnapshot<T>.TrySnapshotHead([MaybeNullWhen(false)] out T item) => _ring.TrySnapshotHead(out item);

    /// <inheritdoc/>
    long IQueuePositions.EnqueuedPositions => _ring.EnqueuedPositions;

    /// <inheritdoc/>
    long IQueuePositions.DequeuedPositions => _ring.DequeuedPositions;
}
