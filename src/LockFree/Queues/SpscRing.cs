using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Queues;

// Design: single-producer single-consumer bounded ring.
//
// Algorithm: Lamport's ring (L. Lamport, "Specifying concurrent program modules", TOPLAS 1983) with the
// producer's cached copy of the consumer's index (FastForward / MCRingBuffer: Lee, Bu, Chandranmenon, "A
// lock-free, cache-efficient multi-core synchronization mechanism for line-rate network traffic monitoring",
// IPDPS 2010; rigtorp/SPSCQueue), and slot-borne readiness on the consumer side (FastForward: Giacomoni,
// Moseley, Vachharajani, PPoPP 2008): every slot carries a sequence word that says which position's item it
// holds, so a polling consumer reads only the slot line, never the producer's index line.
//
// Encoding: _producer.Index (tail) and _consumer.Index (head) are unbounded 64-bit positions; the slot of
// position p is p & _mask and its Sequence is p + 1 once the item of p is in it (0 before the slot's first
// use; a slot keeps the sequence of its last item after it is read, which never equals the p + 1 the
// consumer expects next time round, since the position has moved on by the capacity). The queue holds
// tail - head items. 2^63 operations would take centuries, so the positions never wrap.
//
// Invariants: 0 <= tail - head <= _capacity. Slots [head, tail) hold items (and their sequences); the items
// of the rest are default(T) when T contains references (dequeued slots are cleared so the GC can reclaim
// them). _producer.Cached <= head. _consumer.Cached <= tail: positions below it are known to be published.
//
// Ordering: the producer writes the item, then release-stores the slot's Sequence (this publishes the item:
// the enqueue's linearization point), then release-stores tail (which only counts: Count, IsEmpty, and the
// consumer's known-published bound). The consumer takes position head either below _consumer.Cached (ordered
// by the acquire of tail that raised it) or after an acquire load of the slot's Sequence that reads head + 1;
// a Sequence that does not is an exact empty answer. The consumer reads and clears the item, then
// release-stores head; the producer acquire-loads head before it reuses a slot. A batch enqueue writes and
// releases its slots, the batch's first slot last (a consumer reaches the batch through it, so one that sees it
// sees the rest: the batch is one atomic step), and stores tail once; a batch dequeue takes the run of published positions from head
// and stores head once. No read-modify-write instruction and no full fence.
//
// Streaming (why the consumer sometimes pauses): when the consumer keeps up with a producer that streams items
// as fast as it can, it trails the producer by a few slots, and every slot line it reads is one the producer
// is still writing: each item then costs a cross-core line transfer on both sides (10-20 ns an item on the
// 2-vCPU development VM instead of about 2; docs/queues.md, "Why the SPSC consumer reads the slot, and sometimes
// pauses"). So after BoundReadStreak takes in a row beyond its known-published bound with no empty answer in
// between, the consumer reads tail, raises the bound to it, and, when fewer than _streamDistance items are
// published ahead of it, pauses for a few microseconds (StreamPause, no memory access) so the producer can pull
// ahead and the two stop sharing lines. It then reads tail again: a producer that did not move BoundReadStreak items
// during the pause was not streaming, and the next close bound reads skip the pause (PauseBackoff of them, doubling
// with each useless pause in a row). The pause never
// changes an answer (the item is already known to be there), and a consumer that saw the queue empty since its
// last BoundReadStreak takes never pauses, so a ping-pong or a trickle of items pays nothing.
//
// Progress: wait-free for both sides (every call finishes in a bounded number of its own steps; the pause is
// bounded). Thread roles: at most one producer thread and one consumer thread at a time (any thread may read
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
    /// Consecutive takes beyond the known-published bound (no empty answer in between) after which the consumer
    /// reads tail: often enough that a consumer chasing the producer notices within a few cache lines, rarely
    /// enough that the read (a transfer of the producer's index line) costs well under a nanosecond an item.
    /// </summary>
    internal const int BoundReadStreak = 16;

    /// <summary>
    /// The consumer counts as chasing the producer when fewer items than this are published ahead of it at a bound
    /// read: 64 slots are 16 or more cache lines, beyond the reach of the consumer's prefetching and speculative
    /// loads into lines the producer is still writing.
    /// </summary>
    internal const int StreamDistance = 64;

    /// <summary>
    /// <see cref="Thread.SpinWait(int)"/> iterations of a streaming pause: about 4 µs on the development VM (41 ns an
    /// iteration), time for a producer at full speed to move a thousand or more items ahead. 25 (about 1 µs) was tried:
    /// in alternated quick-job runs in the lock-step regime it left 9.3-11.4 ns an item against 6.4-7.1 for 100.
    /// </summary>
    internal const int StreamPause = 100;

    /// <summary>
    /// Close bound reads skipped after a pause during which the producer did not move BoundReadStreak items, doubled for
    /// each such pause in a row (up to <see cref="MaxBackoffLevel"/> doublings): a consumer draining bursts that an
    /// idle producer left behind (or its own, on one thread) pays a few pauses and then about one per million takes.
    /// </summary>
    internal const int PauseBackoff = 32;

    /// <summary>The most doublings of <see cref="PauseBackoff"/>: 32 x 2^15 skipped bound reads are 16 million takes.</summary>
    internal const int MaxBackoffLevel = 15;

    /// <summary>
    /// Unused slots before and after the live ones: at least one cache line's worth. An expression of
    /// JIT-time constants rather than a static field, so shared generic code over reference types needs no
    /// runtime lookup to read it.
    /// </summary>
    private static int SlotPadding
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (CacheLine.Size + Unsafe.SizeOf<SpscSlot<T>>() - 1) / Unsafe.SizeOf<SpscSlot<T>>();
    }

    private readonly SpscSlot<T>[] _slots;
    private readonly long _mask;
    private readonly int _capacity;

    // Streaming tuning (constants in production; the tests shrink them to explore the bound reads and pauses):
    // bound reads after this many takes in a row beyond the bound; pause below this distance (0: never).
    private readonly int _boundReadStreak;
    private readonly long _streamDistance;

    // Producer role: Index = tail (next position to write); Cached = last head the producer saw.
    private PaddedIndexPair _producer;

    // Consumer role: Index = head (next position to read); Cached = a tail the consumer saw (positions below it
    // are published); Spare = takes in a row beyond that bound since the last empty answer or bound read;
    // Spare2 = (backoff level << 32) | close bound reads left to skip before the next pause (after ones that did not help).
    private PaddedIndexPair _consumer;

    public SpscRing(int capacity)
        : this(capacity, BoundReadStreak, StreamDistance)
    {
    }

    /// <summary>
    /// An engine with its own streaming tuning (tests). Pauses are off when the capacity is below twice the
    /// distance: a queue that small is never far from empty, and pausing there would only delay its items.
    /// </summary>
    internal SpscRing(int capacity, int boundReadStreak, int streamDistance)
    {
        _capacity = QueueCapacity.RoundUp(capacity);
        _mask = _capacity - 1;
        _slots = new SpscSlot<T>[_capacity + (2 * SlotPadding)];
        _boundReadStreak = boundReadStreak;
        _streamDistance = _capacity >= 2L * streamDistance ? streamDistance : 0;
    }

    public readonly int Capacity => _capacity;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(T item)
    {
        long tail = _producer.Index; // plain: only the producer writes tail
        if (tail - _producer.Cached >= _capacity)
        {
            // acquire: pairs with the release of head in the dequeue methods; the slot we reuse has been read and cleared.
            _producer.Cached = TAtomics.LoadAcquire(ref _consumer.Index);
            if (tail - _producer.Cached >= _capacity)
            {
                return false;
            }
        }

        ref SpscSlot<T> slot = ref Slot(tail);
        TAtomics.StorePlain(ref slot.Item, item); // plain: the slot belongs to the producer until its Sequence says otherwise
        TAtomics.StoreRelease(ref slot.Sequence, tail + 1); // release: publishes the item; pairs with the acquire of Sequence in TryDequeue
        TAtomics.StoreRelease(ref _producer.Index, tail + 1); // release: counts it; pairs with the acquire of tail in RaiseBound and Count
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item)
    {
        long head = _consumer.Index; // plain: only the consumer writes head
        ref SpscSlot<T> slot = ref Slot(head);
        if (head >= _consumer.Cached)
        {
            // At or beyond the known-published bound: the slot's Sequence answers exactly (an unpublished item is an empty
            // queue at this load); every _boundReadStreak-th take in a row also reads tail to raise the bound, and pauses
            // when the producer is less than _streamDistance ahead (see the design comment). Inline, not a call: a
            // consumer that keeps pace with its producer (or runs on the producer's thread) is here on nearly every take,
            // and the call was most of what a take cost beyond its loads and stores (raw pair 2.7-3.3 -> 2.1 ns).
            // acquire: pairs with the release of Sequence in the enqueue methods; makes the item readable.
            if (TAtomics.LoadAcquire(ref slot.Sequence) != head + 1)
            {
                _consumer.Spare = 0; // plain: consumer-private
                item = default;
                return false;
            }

            if (++_consumer.Spare >= _boundReadStreak) // plain: consumer-private
            {
                RaiseBound(head);
            }
        }

        item = TAtomics.LoadPlain(ref slot.Item); // plain: ordered after the acquire of tail or of the slot's Sequence
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            TAtomics.StorePlain(ref slot.Item, default!); // plain: still ours until head moves past it
        }

        TAtomics.StoreRelease(ref _consumer.Index, head + 1); // release: frees the slot; pairs with the acquire of head in the enqueue methods
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPeek([MaybeNullWhen(false)] out T item)
    {
        long head = _consumer.Index; // plain: only the consumer writes head
        ref SpscSlot<T> slot = ref Slot(head);
        // acquire (beyond the bound): pairs with the producer's release of Sequence; below it the acquire of tail did.
        if (head >= _consumer.Cached && TAtomics.LoadAcquire(ref slot.Sequence) != head + 1)
        {
            item = default;
            return false;
        }

        item = TAtomics.LoadPlain(ref slot.Item); // plain: ordered after the acquire above
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
        // The batch's first slot last: a consumer reaches the batch through that slot, so once it sees the first sequence
        // it sees every later one, and the batch appears at once.
        for (int i = 1; i < count; i++)
        {
            ref SpscSlot<T> slot = ref Slot(tail + i);
            TAtomics.StorePlain(ref slot.Item, items[i]); // plain: the slot is the producer's until its sequence moves
            TAtomics.StoreRelease(ref slot.Sequence, tail + i + 1); // release: publishes the item; pairs with the acquire of Sequence
        }

        ref SpscSlot<T> first = ref Slot(tail);
        TAtomics.StorePlain(ref first.Item, items[0]); // plain: as above
        TAtomics.StoreRelease(ref first.Sequence, tail + 1); // release: publishes the whole batch (every store above); pairs with the acquire of Sequence
        TAtomics.StoreRelease(ref _producer.Index, tail + count); // release: counts the whole batch at once
        return count;
    }

    public int TryDequeueMany(Span<T> destination)
    {
        long head = _consumer.Index; // plain: only the consumer writes head
        long bound = _consumer.Cached; // positions below it are published (an acquire of tail said so)
        if (bound - head < destination.Length)
        {
            // acquire: pairs with the release of tail in the enqueue methods; every slot below it is published. One read
            // per batch; the sequences below decide beyond it (an item whose tail store is still to come).
            bound = TAtomics.LoadAcquire(ref _producer.Index);
            _consumer.Cached = bound; // plain: consumer-private
        }

        int count = 0;
        int known = (int)Math.Clamp(bound - head, 0, destination.Length);
        for (; count < known; count++)
        {
            ref SpscSlot<T> slot = ref Slot(head + count);
            destination[count] = TAtomics.LoadPlain(ref slot.Item); // plain: below the bound, ordered after the acquire of tail
            if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
            {
                TAtomics.StorePlain(ref slot.Item, default!); // plain: ours until head moves past it
            }
        }

        while (count < destination.Length)
        {
            long position = head + count;
            ref SpscSlot<T> slot = ref Slot(position);
            // acquire (beyond the bound): pairs with the producer's release of Sequence; the run ends at the first unpublished slot.
            if (position >= bound && TAtomics.LoadAcquire(ref slot.Sequence) != position + 1)
            {
                break;
            }

            destination[count] = TAtomics.LoadPlain(ref slot.Item); // plain: ordered after the acquire that showed it published
            if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
            {
                TAtomics.StorePlain(ref slot.Item, default!); // plain: ours until head moves past it
            }

            count++;
        }

        if (count == 0)
        {
            _consumer.Spare = 0; // plain: consumer-private; an empty answer ends the streak, as in TryDequeue
            return 0;
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
            FieldLayout.Offset(ref start, ref Unsafe.AsRef(in _slots)),
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

            T value = TAtomics.LoadPlain(ref Slot(head).Item); // plain, racing the consumer: validated by the reread below
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

    /// <summary>
    /// Reads tail into the known-published bound; when the consumer trails the producer by less than
    /// <see cref="_streamDistance"/>, pauses, unless a recent pause proved useless (see <see cref="PauseBackoff"/>).
    /// </summary>
    private void RaiseBound(long head)
    {
        _consumer.Spare = 0; // plain: consumer-private
        // acquire: pairs with the release of tail in the enqueue methods; every slot below it is published.
        long tail = TAtomics.LoadAcquire(ref _producer.Index);
        _consumer.Cached = tail; // plain: consumer-private
        if (tail - head >= _streamDistance)
        {
            return;
        }

        // plain: consumer-private. Spare2 = (backoff level << 32) | close raises left to skip before the next pause.
        long backoff = _consumer.Spare2;
        if ((backoff & uint.MaxValue) != 0)
        {
            _consumer.Spare2 = backoff - 1;
            return;
        }

        TAtomics.Pause(StreamPause); // no shared access: a bounded pause that lets the producer pull ahead (a scheduling point under the controlled scheduler)
        // acquire: as above. A producer that did not move even a streak's worth meanwhile is not streaming (it is idle, or
        // this very thread between bursts; one slowed by lock-step still moves dozens): the pause bought nothing, so skip the next PauseBackoff << level chances,
        // the level growing with each useless pause in a row and starting over after a useful one.
        long after = TAtomics.LoadAcquire(ref _producer.Index);
        _consumer.Cached = after;
        long level = Math.Min((backoff >> 32) + 1, MaxBackoffLevel);
        _consumer.Spare2 = after - tail >= _boundReadStreak ? 0 : (level << 32) | ((long)PauseBackoff << (int)level);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly ref SpscSlot<T> Slot(long position) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), (nint)(position & _mask) + SlotPadding);
}

/// <summary>A slot of <see cref="SpscRing{T, TAtomics}"/>: its item and the position it holds plus one.</summary>
internal struct SpscSlot<T>
{
    /// <summary>The item, or default(T) when the slot is empty and T contains references.</summary>
    public T Item;

    /// <summary>p + 1 once the item of position p is in the slot (0 before its first use); see the design comment.</summary>
    public long Sequence;
}
