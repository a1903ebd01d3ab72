using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.WorkStealing;

namespace LockFree;

/// <summary>
/// A Chase-Lev work-stealing deque: the owner thread pushes and pops at one end (LIFO, no contention in the
/// common case), any number of thief threads take from the other end through <see cref="Stealer"/> (FIFO).
/// This object is the owner's handle.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Push"/> and <see cref="TryPop"/> must be called by one thread at a time (the owner); a
/// scheduler gives each worker thread its own deque. They are wait-free: a push is a slot write and a
/// release store; a pop of one of several items adds one full fence, and the last item costs one CAS against the
/// thieves (no fence when the owner already knows it is the last), a pop of an empty deque a read of the thieves' index.
/// </para>
/// <para>
/// The deque is unbounded: the buffer starts at the initial capacity rounded up to a power of two and doubles
/// whenever a push finds it full (up to 2^30 items; the push beyond that throws
/// <see cref="InvalidOperationException"/>). It never shrinks. Old buffers are left to the garbage collector.
/// </para>
/// <para>
/// Popped items are cleared from their slots at once. Items taken by thieves are cleared by the owner lazily
/// (a thief cannot clear a slot the owner may already be reusing): the next time a pop finds the deque empty
/// or takes its last item, or a push finds the buffer full. Until then, at most <see cref="Capacity"/> stolen
/// items stay reachable from the buffer. Steady-state push and pop allocate nothing.
/// </para>
/// <para>Algorithm, memory orderings and the argument per operation: docs/work-stealing.md.</para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}")]
public sealed class WorkStealingDeque<T>
{
    /// <summary>The most items one batch steal moves (<see cref="Stealer{T}.TryStealBatch"/>).</summary>
    internal const int MaxBatch = ChaseLevDeque<T, RealAtomics>.MaxBatch;

    // Not readonly: the engine is a mutable struct stored inline, so the owner reaches it without an indirection.
    internal ChaseLevDeque<T, RealAtomics> Engine;

    /// <summary>Creates an empty deque.</summary>
    /// <param name="initialCapacity">The initial buffer length, in [1, 2^30]; rounded up to a power of two (reported by <see cref="Capacity"/>). The buffer grows as needed.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initialCapacity"/> is less than 1 or greater than 2^30.</exception>
    public WorkStealingDeque(int initialCapacity = 32)
    {
        Engine = new(initialCapacity);
        Stealer = new(this);
    }

    /// <summary>The thieves' view of this deque: one instance, safe to share with any number of threads.</summary>
    public Stealer<T> Stealer { get; }

    /// <summary>An approximate number of items: a snapshot that concurrent pushes, pops and steals may already have changed.</summary>
    public int Count => Engine.Count;

    /// <summary>Whether <see cref="Count"/> was zero (a snapshot).</summary>
    public bool IsEmpty => Engine.Count == 0;

    /// <summary>The current buffer length (a power of two; grows when a push finds the buffer full, never shrinks).</summary>
    public int Capacity => Engine.Capacity;

    /// <summary>Pushes <paramref name="item"/> at the owner's end. Owner thread only. Never fails: grows the buffer when full.</summary>
    /// <param name="item">The item.</param>
    /// <exception cref="InvalidOperationException">The deque already holds 2^30 items.</exception>
    public void Push(T item) => Engine.Push(item);

    /// <summary>Pops the most recently pushed item still in the deque (LIFO). Owner thread only.</summary>
    /// <param name="item">The item, when the call returns true.</param>
    /// <returns>False when the deque was empty, or a thief took its last item first.</returns>
    public bool TryPop([MaybeNullWhen(false)] out T item) => Engine.TryPop(out item);
}
