using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Queues;

// Design: single-producer single-consumer bounded ring.
//
// Algorithm: Lamport's ring (L. Lamport, "Specifying concurrent program modules", TOPLAS 1983) with the
// cached-index refinement of FastForward / MCRingBuffer (Lee, Bu, Chandranmenon, "A lock-free,
// cache-efficient multi-core synchronization mechanism for line-rate network traffic monitoring", IPDPS
// 2010) as used by rigtorp/SPSCQueue: each side keeps a private copy of the other side's index and rereads
// the shared one only when its copy says full (producer) or empty (consumer). In steady state each
// operation touches one shared cache line (the slot) and its own index line.
//
// Encoding: _producer.Index (tail) and _consumer.Index (head) are unbounded 64-bit positions; the slot of
// position p is p & _mask. The queue holds tail - head items. 2^63 operations would take centuries, so
// the positions never wrap.
//
// Invariants: 0 <= tail - head <= _capacity. Slots [head, tail) hold items; the rest hold default(T) when T
// contains references (dequeued slots are cleared so the GC can reclaim the items).
// _producer.Cached <= head and _consumer.Cached <= tail (stale copies only ever lag).
//
// Ordering: the producer writes the slot, then release-stores tail; the consumer acquire-loads tail before
// reading the slot. The consumer reads and clears the slot, then release-stores head; the producer
// acquire-loads head before overwriting it. No read-modify-write instruction and no full fence.
//
// Progress: wait-free for both sides (every call finishes in a bounded number of its own steps).
// Thread roles: at most one producer thread and one consumer thread at a time (any thread may read
// Count/IsEmpty). Batch operations publish their index once per batch.
//
// Layout: the two roles' index pairs live in separate PaddedIndexPair regions (hot fields >= 128 bytes
// apart, checked by a unit test); the slot array has SlotPadding unused slots at each end so the first and
// last slots do not share a line with neighbouring heap objects.
[DebuggerDisplay("Capacity = {Capacity}")]
internal struct SpscRing<T, TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>
    /// Unused slots before and after the live ones: at least one cache line's worth. An expression of
    /// JIT-time constants rather than a static field, so shared generic code over reference types needs no
    /// runtime lookup to read it.
    /// </summary>
    private static int SlotPadding
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (CacheLine.Size + Unsafe.SizeOf<T>() - 1) / Unsafe.SizeOf<T>();
    }

    private readonly T[] _buffer;
    private readonly long _mask;
    private readonly int _capacity;

    // Producer role: Index = tail (next position to write); Cached = last head the producer saw.
    private PaddedIndexPair _producer;

    // Consumer role: Index = head (next position to read); Cached = last tail the consumer saw.
    private PaddedIndexPair _consumer;

    public SpscRing(int capacity)
    {
        _capacity = QueueCapacity.RoundUp(capacity);
        _mask = _capacity - 1;
        _buffer = new T[_capacity + (2 * SlotPadding)];
    }

    public readonly int Capacity => _capacity;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(T item)
    {
        long tail = _producer.Index; // plain: only the producer writes tail
        if (tail - _producer.Cached >= _capacity)
        {
            // acquire: pairs with the release of head in TryDequeue; the slot we reuse has been read and cleared.
            _producer.Cached = TAtomics.LoadAcquire(ref _consumer.Index);
            if (tail - _producer.Cached >= _capacity)
            {
                return false;
            }
        }

        TAtomics.StorePlain(ref Slot(tail), item); // plain: the slot belongs to the producer until tail moves past it
        TAtomics.StoreRelease(ref _producer.Index, tail + 1); // release: publishes the item; pairs with the acquire of tail in TryDequeue
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item)
    {
        long head = _consumer.Index; // plain: only the consumer writes head
        if (head >= _consumer.Cached && !RefreshTail(head))
        {
            item = default;
            return false;
        }

        ref T slot = ref Slot(head);
        item = TAtomics.LoadPlain(ref slot); // plain: ordered after the acquire of tail that made head < tail
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            TAtomics.StorePlain(ref slot, default!); // plain: still ours until head moves past it
        }

        TAtomics.StoreRelease(ref _consumer.Index, head + 1); // release: frees the slot; pairs with the acquire of head in TryEnqueue
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPeek([MaybeNullWhen(false)] out T item)
    {
        long head = _consumer.Index; // plain: only the consumer writes head
        if (head >= _consumer.Cached && !RefreshTail(head))
        {
            item = default;
            return false;
        }

        item = TAtomics.LoadPlain(ref Slot(head)); // plain: ordered after the acquire of tail
        return true;
    }

    public int TryEnqueueMany(ReadOnlySpan<T> items)
    {
        if (items.IsEmpty)
        {
            return 0;
        }

        long tail = _producer.Index; // plain: only the producer writes tail
        long free = _capacity - (tail - _producer.Cached);
        if (free < items.Length)
        {
            // acquire: pairs with the release of head in the dequeue methods.
            _producer.Cached = TAtomics.LoadAcquire(ref _consumer.Index);
            free = _capacity - (tail - _producer.Cached);
            if (free == 0)
            {
                return 0;
            }
        }

        int count = (int)Math.Min(free, items.Length);
        int start = (int)(tail & _mask);
        int first = Math.Min(count, _capacity - start);
        TAtomics.CopyPlain(items[..first], _buffer.AsSpan(SlotPadding + start, first)); // plain: slots owned until tail moves
        TAtomics.CopyPlain(items[first..count], _buffer.AsSpan(SlotPadding, count - first));
        TAtomics.StoreRelease(ref _producer.Index, tail + count); // release: publishes the whole batch at once
        return count;
    }

    public int TryDequeueMany(Span<T> destination)
    {
        if (destination.IsEmpty)
        {
            return 0;
        }

        long head = _consumer.Index; // plain: only the consumer writes head
        long available = _consumer.Cached - head;
        if (available < destination.Length)
        {
            // acquire: pairs with the release of tail in the enqueue methods.
            _consumer.Cached = TAtomics.LoadAcquire(ref _producer.Index);
            available = _consumer.Cached - head;
            if (available == 0)
            {
                return 0;
            }
        }

        int count = (int)Math.Min(available, destination.Length);
        int start = (int)(head & _mask);
        int first = Math.Min(count, _capacity - start);
        Span<T> run1 = _buffer.AsSpan(SlotPadding + start, first);
        Span<T> run2 = _buffer.AsSpan(SlotPadding, count - first);
        TAtomics.CopyPlain<T>(run1, destination); // plain: ordered after the acquire of tail
        TAtomics.CopyPlain<T>(run2, destination[first..]);
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            TAtomics.ClearPlain(run1);
            TAtomics.ClearPlain(run2);
        }

        TAtomics.StoreRelease(ref _consumer.Index, head + count); // release: frees the whole batch at once
        return count;
    }

    /// <summary>Approximate number of items: a snapshot that may be stale by the time it returns.</summary>
    public int Count
    {
        get
        {
            // acquire both: any thread may call this; head is read first so the difference never exceeds capacity
            // by more than what was enqueued meanwhile, and the result is clamped to [0, capacity].
            long head = TAtomics.LoadAcquire(ref _consumer.Index);
            long tail = TAtomics.LoadAcquire(ref _producer.Index);
            return (int)Math.Clamp(tail - head, 0, _capacity);
        }
    }

    /// <summary>Items ever enqueued (acquire snapshot of the tail).</summary>
    public long EnqueuedPositions => TAtomics.LoadAcquire(ref _producer.Index); // acquire: snapshot for any thread

    /// <summary>Items ever dequeued (acquire snapshot of the head).</summary>
    public long DequeuedPositions => TAtomics.LoadAcquire(ref _consumer.Index); // acquire: snapshot for any thread

    public bool IsEmpty
    {
        get
        {
            long head = TAtomics.LoadAcquire(ref _consumer.Index); // acquire: snapshot, as Count
            long tail = TAtomics.LoadAcquire(ref _producer.Index);
            return tail <= head;
        }
    }

    /// <summary>
    /// Byte offsets of the fields from the start of the engine, for the layout unit test: the runtime orders
    /// auto-layout fields itself, so only a measurement shows how far apart the hot fields are.
    /// </summary>
    internal (nint Buffer, nint Mask, nint Capacity, nint ProducerIndex, nint ProducerCached, nint ConsumerIndex, nint ConsumerCached) FieldOffsets()
    {
        ref byte start = ref Unsafe.As<SpscRing<T, TAtomics>, byte>(ref this);
        return (
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _buffer)),
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _mask)),
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _capacity)),
            FieldLayout.Offset(ref start, ref _producer.Index),
            FieldLayout.Offset(ref start, ref _producer.Cached),
            FieldLayout.Offset(ref start, ref _consumer.Index),
            FieldLayout.Offset(ref start, ref _consumer.Cached));
    }

    /// <summary>
    /// Any thread, for monitoring only (never part of the queue protocol, never run under the controlled
    /// scheduler): a copy of the item at the head. The producer cannot reuse the head's slot while the head stays
    /// put, so a reread of the head after the copy validates it; the one thing it cannot rule out is the consumer's
    /// clear just before it moves the head, so an item with references can read as default. False when empty or
    /// when the head kept moving.
    /// </summary>
    public bool TrySnapshotHead([MaybeNullWhen(false)] out T item)
    {
        for (int attempt = 0; attempt < SnapshotAttempts; attempt++)
        {
            long head = TAtomics.LoadAcquire(ref _consumer.Index); // acquire: snapshot
            long tail = TAtomics.LoadAcquire(ref _producer.Index); // acquire: the slot at head is published when head < tail
            if (head >= tail)
            {
                break;
            }

            T value = TAtomics.LoadPlain(ref Slot(head)); // plain, racing the consumer: validated by the reread below
            TAtomics.FullFence(); // the copy completes before the reread (a seqlock reader's fence)
            if (TAtomics.LoadAcquire(ref _consumer.Index) == head)
            {
                item = value;
                return true;
            }
        }

        item = default;
        return false;
    }

    /// <summary>Tries a monitoring snapshot makes before it gives up on a head that keeps moving.</summary>
    private const int SnapshotAttempts = 4;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool RefreshTail(long head)
    {
        // acquire: pairs with the release of tail in the enqueue methods; makes the slots before it readable.
        long tail = TAtomics.LoadAcquire(ref _producer.Index);
        _consumer.Cached = tail;
        return head < tail;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly ref T Slot(long position) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), (nint)(position & _mask) + SlotPadding);
}
