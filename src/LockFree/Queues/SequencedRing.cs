using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Queues;

// Design: bounded ring with a sequence number per slot, for any mix of single and multiple producers and
// consumers (MPSC, SPMC, MPMC).
//
// Algorithm: D. Vyukov, "Bounded MPMC queue" (1024cores.net, 2010), the scheme behind .NET's
// ConcurrentQueueSegment and crossbeam's ArrayQueue. A role played by many threads claims a position by
// compare-and-swap on its shared index; a role played by one thread (TProducers/TConsumers = SingleRole)
// advances its index with a release store and uses no read-modify-write instruction at all.
//
// Encoding: _tail and _head are unbounded 64-bit positions; position p lives in slot p & _mask. A slot's
// Sequence says what it is ready for:
//   Sequence == 2p      the slot is empty and ready for the producer of position p;
//   Sequence == 2p + 1  the slot holds the item of position p, ready for its consumer.
// A consumer of p releases the slot to the producer of p + capacity by storing 2(p + capacity). Doubling
// keeps the two states distinct at capacity 1 (Vyukov's original p / p + 1 encoding needs capacity >= 2).
//
// Invariants: Sequence only grows. For a multi-role side the index is advanced only by a CAS that follows
// a sequence check, so head <= tail when both sides are multi. A single-role side publishes its slot before
// it moves its index (it has nothing to claim), so the other side never waits on it.
//
// Linearization: a multi-role operation linearizes at its successful CAS on the index, a single-role one
// at its release of the slot's Sequence. An answer of full/empty is exact, never spurious: when a slot is
// not ready but the opposite index shows an operation in flight on it (claimed, not yet published or
// released), the caller waits for that operation (a window of a few instructions) instead of answering.
// Batch operations may take fewer items than there is room for (they stop at a slot still in flight) but
// take at least one whenever a single-item call would have succeeded. A batch publishes (or releases) its
// slots back to front: the other side walks positions in order, so it sees none of the batch until the
// first slot flips, last, and the whole batch appears (or leaves) at once. Front to back, a consumer could
// take half a batch and then find the queue empty, which no atomic batch allows (the controlled scheduler
// found exactly that history).
//
// Progress: lock-free among the threads of a multi role. A thread that finds a slot in flight waits for
// the thread that claimed it, as ConcurrentQueue does, so a preempted claimant can delay the other side;
// a single-role side is never waited on.
//
// Thread roles: TProducers / TConsumers say whether more than one thread may enqueue / dequeue at a time.
[DebuggerDisplay("Capacity = {Capacity}")]
internal struct SequencedRing<T, TAtomics, TProducers, TConsumers>
    where TAtomics : struct, IAtomics
    where TProducers : struct, IRolePolicy
    where TConsumers : struct, IRolePolicy
{
    /// <summary>Unused slots before and after the live ones: at least one cache line's worth (JIT-time constant, as in SpscRing).</summary>
    private static int SlotPadding
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (CacheLine.Size + Unsafe.SizeOf<SequencedSlot<T>>() - 1) / Unsafe.SizeOf<SequencedSlot<T>>();
    }

    private readonly SequencedSlot<T>[] _slots;
    private readonly long _mask;
    private readonly int _capacity;
    private PaddedIndex _tail; // next position to enqueue
    private PaddedIndex _head; // next position to dequeue

    public SequencedRing(int capacity)
    {
        _capacity = QueueCapacity.RoundUp(capacity);
        _mask = _capacity - 1;
        _slots = new SequencedSlot<T>[_capacity + (2 * SlotPadding)];
        for (int i = 0; i < _capacity; i++)
        {
            _slots[SlotPadding + i].Sequence = 2L * i; // plain: before publication of the object
        }
    }

    public readonly int Capacity => _capacity;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(T item)
    {
        long position = LoadTail();
        ref SequencedSlot<T> slot = ref Slot(position);
        // acquire: pairs with the consumer's release of the slot; its read and clear happen-before our write.
        if (TAtomics.LoadAcquire(ref slot.Sequence) != position << 1 || !ClaimTail(position))
        {
            return TryEnqueueSlow(item);
        }

        TAtomics.StorePlain(ref slot.Item, item); // plain: the slot is ours between the claim and the release below
        PublishSlot(ref slot, position, position + 1);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item)
    {
        long position = LoadHead();
        ref SequencedSlot<T> slot = ref Slot(position);
        // acquire: pairs with the producer's release of the slot; its write of the item happens-before our read.
        if (TAtomics.LoadAcquire(ref slot.Sequence) != ((position << 1) | 1) || !ClaimHead(position))
        {
            return TryDequeueSlow(out item);
        }

        item = TakeItem(ref slot);
        ReleaseSlot(ref slot, position, position + 1);
        return true;
    }

    /// <summary>Reads the next item without removing it. Only valid with a single consumer.</summary>
    public bool TryPeek([MaybeNullWhen(false)] out T item)
    {
        Debug.Assert(TConsumers.IsSingle, "TryPeek needs a single consumer.");
        var spinner = default(SpinWait);
        while (true)
        {
            long position = LoadHead();
            ref SequencedSlot<T> slot = ref Slot(position);
            long sequence = TAtomics.LoadAcquire(ref slot.Sequence); // acquire: as in TryDequeue
            if (sequence == ((position << 1) | 1))
            {
                item = TAtomics.LoadPlain(ref slot.Item); // plain: no producer touches a published slot
                return true;
            }

            if (!ProducerInFlight(position))
            {
                item = default;
                return false;
            }

            TAtomics.SpinOnce(ref spinner);
        }
    }

    public int TryEnqueueMany(ReadOnlySpan<T> items)
    {
        if (items.IsEmpty)
        {
            return 0;
        }

        var spinner = default(SpinWait);
        while (true)
        {
            long position = LoadTail();
            int limit = Math.Min(items.Length, _capacity);
            int count = 0;
            long sequence = 0;
            while (count < limit)
            {
                // acquire: as in TryEnqueue, for every slot of the run.
                sequence = TAtomics.LoadAcquire(ref Slot(position + count).Sequence);
                if (sequence != (position + count) << 1)
                {
                    break;
                }

                count++;
            }

            if (count == 0)
            {
                if (sequence > position << 1)
                {
                    continue; // another producer took this position; reread the tail
                }

                if (!ConsumerInFlight(position))
                {
                    return 0; // full
                }

                TAtomics.SpinOnce(ref spinner);
                continue;
            }

            if (!ClaimTail(position, count))
            {
                continue;
            }

            for (int i = 0; i < count; i++)
            {
                TAtomics.StorePlain(ref Slot(position + i).Item, items[i]); // plain: claimed, not yet published
            }

            // Publish back to front: consumers take positions in order, so none of the batch is visible until its
            // first slot is published, last. The batch appears at once, as one linearizable operation.
            for (int i = count - 1; i > 0; i--)
            {
                // release: publishes this item; pairs with the acquire in the dequeue methods.
                TAtomics.StoreRelease(ref Slot(position + i).Sequence, ((position + i) << 1) | 1);
            }

            PublishSlot(ref Slot(position), position, position + count);
            return count;
        }
    }

    public int TryDequeueMany(Span<T> destination)
    {
        if (destination.IsEmpty)
        {
            return 0;
        }

        var spinner = default(SpinWait);
        while (true)
        {
            long position = LoadHead();
            int limit = Math.Min(destination.Length, _capacity);
            int count = 0;
            long sequence = 0;
            while (count < limit)
            {
                // acquire: as in TryDequeue, for every slot of the run.
                sequence = TAtomics.LoadAcquire(ref Slot(position + count).Sequence);
                if (sequence != (((position + count) << 1) | 1))
                {
                    break;
                }

                count++;
            }

            if (count == 0)
            {
                if (sequence > ((position << 1) | 1))
                {
                    continue; // another consumer took this position; reread the head
                }

                if (!ProducerInFlight(position))
                {
                    return 0; // empty
                }

                TAtomics.SpinOnce(ref spinner);
                continue;
            }

            if (!ClaimHead(position, count))
            {
                continue;
            }

            for (int i = 0; i < count; i++)
            {
                destination[i] = TakeItem(ref Slot(position + i));
            }

            // Release back to front: producers fill positions in order, so none of the freed room is usable until
            // the batch's first slot is released, last. The batch leaves at once, as one linearizable operation.
            for (int i = count - 1; i > 0; i--)
            {
                // release: hands the slot to the producer one lap ahead; pairs with the acquire in the enqueue methods.
                TAtomics.StoreRelease(ref Slot(position + i).Sequence, (position + i + _capacity) << 1);
            }

            ReleaseSlot(ref Slot(position), position, position + count);
            return count;
        }
    }

    /// <summary>Approximate number of items: a snapshot, clamped to [0, Capacity].</summary>
    public int Count
    {
        get
        {
            long head = TAtomics.LoadAcquire(ref _head.Value); // acquire: snapshot for any thread
            long tail = TAtomics.LoadAcquire(ref _tail.Value);
            return (int)Math.Clamp(tail - head, 0, _capacity);
        }
    }

    public bool IsEmpty
    {
        get
        {
            long head = TAtomics.LoadAcquire(ref _head.Value); // acquire: snapshot, as Count
            long tail = TAtomics.LoadAcquire(ref _tail.Value);
            return tail <= head;
        }
    }

    /// <summary>Byte offsets of the fields from the start of the engine, for the layout unit test (see SpscRing).</summary>
    internal (nint Slots, nint Mask, nint Capacity, nint Tail, nint Head) FieldOffsets()
    {
        ref byte start = ref Unsafe.As<SequencedRing<T, TAtomics, TProducers, TConsumers>, byte>(ref this);
        return (
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _slots)),
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _mask)),
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _capacity)),
            FieldLayout.Offset(ref start, ref _tail.Value),
            FieldLayout.Offset(ref start, ref _head.Value));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryEnqueueSlow(T item)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            long position = LoadTail();
            ref SequencedSlot<T> slot = ref Slot(position);
            long sequence = TAtomics.LoadAcquire(ref slot.Sequence); // acquire: as in TryEnqueue
            long expected = position << 1;
            if (sequence == expected)
            {
                if (ClaimTail(position))
                {
                    TAtomics.StorePlain(ref slot.Item, item); // plain: claimed, not yet published
                    PublishSlot(ref slot, position, position + 1);
                    return true;
                }
            }
            else if (sequence < expected)
            {
                // The slot still holds position - capacity: full, unless a consumer has claimed it and not yet released it.
                if (!ConsumerInFlight(position))
                {
                    return false;
                }

                TAtomics.SpinOnce(ref spinner);
            }

            // sequence > expected: another producer took the position; reread the tail.
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryDequeueSlow([MaybeNullWhen(false)] out T item)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            long position = LoadHead();
            ref SequencedSlot<T> slot = ref Slot(position);
            long sequence = TAtomics.LoadAcquire(ref slot.Sequence); // acquire: as in TryDequeue
            long expected = (position << 1) | 1;
            if (sequence == expected)
            {
                if (ClaimHead(position))
                {
                    item = TakeItem(ref slot);
                    ReleaseSlot(ref slot, position, position + 1);
                    return true;
                }
            }
            else if (sequence < expected)
            {
                // Not yet published: empty, unless a producer has claimed the position and not yet published it.
                if (!ProducerInFlight(position))
                {
                    item = default;
                    return false;
                }

                TAtomics.SpinOnce(ref spinner);
            }

            // sequence > expected: another consumer took the position; reread the head.
        }
    }

    /// <summary>
    /// Whether the producer of <paramref name="position"/> has claimed it but not yet published it. A single
    /// producer publishes before it moves the tail, so with one producer an unpublished slot means empty.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ProducerInFlight(long position) =>
        !TProducers.IsSingle && TAtomics.LoadAcquire(ref _tail.Value) > position; // acquire: the claim CAS

    /// <summary>
    /// Whether the consumer of <c>position - capacity</c> has claimed it but not yet released its slot. A
    /// single consumer releases before it moves the head, so with one consumer an unreleased slot means full.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ConsumerInFlight(long position) =>
        !TConsumers.IsSingle && position - TAtomics.LoadAcquire(ref _head.Value) < _capacity; // acquire: the claim CAS

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadTail() =>
        TProducers.IsSingle
            ? _tail.Value // plain: only the single producer writes the tail
            : TAtomics.LoadAcquire(ref _tail.Value); // acquire: a start point for the claim; the CAS validates it

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadHead() =>
        TConsumers.IsSingle
            ? _head.Value // plain: only the single consumer writes the head
            : TAtomics.LoadAcquire(ref _head.Value); // acquire: a start point for the claim; the CAS validates it

    /// <summary>Claims positions [position, position + count) for this producer; a single producer needs no claim.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ClaimTail(long position, long count = 1) =>
        TProducers.IsSingle
        || TAtomics.CompareExchange(ref _tail.Value, position + count, position) == position; // full fence: the claim

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ClaimHead(long position, long count = 1) =>
        TConsumers.IsSingle
        || TAtomics.CompareExchange(ref _head.Value, position + count, position) == position; // full fence: the claim

    /// <summary>Publishes the item of <paramref name="position"/>; a single producer then moves the tail to <paramref name="newTail"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PublishSlot(ref SequencedSlot<T> slot, long position, long newTail)
    {
        TAtomics.StoreRelease(ref slot.Sequence, (position << 1) | 1); // release: publishes the item; pairs with the acquire in the dequeue methods
        if (TProducers.IsSingle)
        {
            TAtomics.StoreRelease(ref _tail.Value, newTail); // release: after the publish, so consumers never see a tail ahead of its item
        }
    }

    /// <summary>Hands the slot of <paramref name="position"/> to the producer one lap ahead; a single consumer then moves the head to <paramref name="newHead"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseSlot(ref SequencedSlot<T> slot, long position, long newHead)
    {
        TAtomics.StoreRelease(ref slot.Sequence, (position + _capacity) << 1); // release: the item is read and cleared; pairs with the acquire in the enqueue methods
        if (TConsumers.IsSingle)
        {
            TAtomics.StoreRelease(ref _head.Value, newHead); // release: after the slot release, so producers never see a head ahead of a free slot
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T TakeItem(ref SequencedSlot<T> slot)
    {
        T item = TAtomics.LoadPlain(ref slot.Item); // plain: ordered after the acquire of the published Sequence
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            TAtomics.StorePlain(ref slot.Item, default!); // plain: the slot is ours until its release
        }

        return item;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly ref SequencedSlot<T> Slot(long position) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), (nint)(position & _mask) + SlotPadding);
}

/// <summary>A slot of <see cref="SequencedRing{T, TAtomics, TProducers, TConsumers}"/>: its state word and its item.</summary>
internal struct SequencedSlot<T>
{
    /// <summary>2p: empty, ready for the producer of position p; 2p + 1: holds the item of p.</summary>
    public long Sequence;

    /// <summary>The item, or default(T) when the slot is empty.</summary>
    public T Item;
}
