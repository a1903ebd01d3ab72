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
// position p is p & _mask. The producer publishes items in runs: a single enqueue is a run of one, a batch enqueue
// one run of its items. The first slot of a run [p, end) gets Sequence = end once the run's items are in; the other
// slots of the run keep whatever they held. A slot's sequence is therefore either the end of the run starting at its
// current position p (p < end <= p + capacity), or stale: written for the position one or more laps back, or never
// (0), and then at most p, since a run is at most capacity long. So "Sequence > p" says exactly that the run starting
// at p is published. 2^63 operations would take centuries, so the positions never wrap.
//
// Invariants: 0 <= tail - head <= _capacity. Slots [head, tail) hold items; the items of the rest are default(T)
// when T contains references (dequeued slots are cleared so the GC can reclaim them). Runs tile [0, tail) and
// tail is a run boundary. _producer.Cached <= head. _consumer.Cached (the consumer's known-published bound) is a
// run boundary with every position below it published, at least head: it is raised to a tail the consumer read or
// to the end of a run it read from the run's first slot (which can be ahead of tail for a moment), and never goes
// down. So a consumer at or beyond its bound is at the start of a run (or of nothing yet) and reads that run's
// first slot, never the inside of a run.
//
// Ordering: the producer writes the run's items, then release-stores its first slot's Sequence (this publishes the
// run: the enqueue's linearization point), then release-stores tail (which only counts: Count, IsEmpty, and the
// consumer's known-published bound). The consumer takes position head either below _consumer.Cached (ordered
// by the acquire of tail or of the run's sequence that raised it) or after an acquire load of the slot's Sequence
// that reads more than head; a Sequence that does not is an exact empty answer. The consumer reads and clears the
// item, then release-stores head; the producer acquire-loads head before it reuses a slot. A batch enqueue is one
// run, so it appears at once (the linearizability checker demands it) and costs one sequence store; a batch dequeue
// takes what its bound covers and then whole published runs, one sequence read each, and stores head once. No
// read-modify-write instruction and no full fence.
//
// Streaming (why the consumer sometimes pauses): when the consumer keeps up with a producer that streams items
// as fast as it can, it trails the producer by a few slots, and every slot line it reads is one the producer
// is still writing: each item then costs a cross-core line transfer on both sides (10-20 ns an item on the
// 2-vCPU development VM instead of about 2; docs/queues.md, "Why the SPSC consumer reads the slot, and sometimes
// pauses"). So after BoundReadStreak takes in a row beyond its known-published bound with no empty answer in
// between (a batch dequeue: at a read of tail after BoundReadStreak items taken since its last empty answer, when tail is past head), the
// consumer reads tail, raises the bound to it, and, when fewer than _streamDistance items are
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

    // Consumer role: Index = head (next position to read); Cached = the known-published bound (a tail the consumer
    // saw, or the end of a run it saw; positions below it are published); Spare = takes in a row beyond that bound
    // since the last empty answer or bound read (batch dequeues: items taken since the last empty answer or pause);
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
        long tail = TAtomics.LoadOwn(ref _producer.Index); // plain: only the producer writes tail (its own store)
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
        TAtomics.StoreRelease(ref slot.Sequence, tail + 1); // release: publishes the item (a run of one); pairs with the acquire of Sequence in TryDequeue
        TAtomics.StoreRelease(ref _producer.Index, tail + 1); // release: counts it; pairs with the acquire of tail in RaiseBound and Count
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item)
    {
        long head = TAtomics.LoadOwn(ref _consumer.Index); // plain: only the consumer writes head (its own store)
        ref SpscSlot<T> slot = ref Slot(head);
        if (head >= _consumer.Cached)
        {
            // At or beyond the known-published bound: the slot's Sequence answers exactly (an unpublished item is an empty
            // queue at this load; a published one carries the end of its run, which raises the bound); every
            // _boundReadStreak-th take in a row also reads tail to raise the bound, and pauses when the producer is less
            // than _streamDistance ahead (see the design comment). Inline, not a call: a consumer that keeps pace with its
            // producer (or runs on the producer's thread) is here on nearly every take, and the call was most of what a
            // take cost beyond its loads and stores (raw pair 2.7-3.3 -> 2.1 ns).
            // acquire: pairs with the release of Sequence in the enqueue methods; makes the item (and the rest of its run) readable.
            long end = TAtomics.LoadAcquire(ref slot.Sequence);
            if (end <= head)
            {
                _consumer.Spare = 0; // plain: consumer-private
                item = default;
                return false;
            }

            _consumer.Cached = end; // plain: consumer-private; the rest of a batch's run is below the bound (end > head >= old bound)
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
        long head = TAtomics.LoadOwn(ref _consumer.Index); // plain: only the consumer writes head (its own store)
        ref SpscSlot<T> slot = ref Slot(head);
        // acquire (beyond the bound): pairs with the producer's release of Sequence; below it the acquire of tail did.
        if (head >= _consumer.Cached && TAtomics.LoadAcquire(ref slot.Sequence) <= head)
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

        long tail = TAtomics.LoadOwn(ref _producer.Index); // plain: only the producer writes tail (its own store)
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
        // plain: the slots are the producer's until the run's sequence is stored. The other slots of the run keep
        // their stale sequences (at most their own position: see the design comment); no consumer reads them.
        ref T source = ref MemoryMarshal.GetReference(items);
        int start = (int)(tail & _mask);
        int first = Math.Min(count, _capacity - start); // up to the end of the array, then the rest from its start
        CopyIn(ref Unsafe.Add(ref FirstSlot, start), ref source, first);
        CopyIn(ref FirstSlot, ref Unsafe.Add(ref source, first), count - first);

        // release: publishes the whole batch at once (a consumer reaches it only through its first slot, which says where
        // it ends); pairs with the acquire of Sequence in the dequeue methods.
        TAtomics.StoreRelease(ref Slot(tail).Sequence, tail + count);
        TAtomics.StoreRelease(ref _producer.Index, tail + count); // release: counts the whole batch at once
        return count;
    }

    public int TryDequeueMany(Span<T> destination)
    {
        long head = TAtomics.LoadOwn(ref _consumer.Index); // plain: only the consumer writes head (its own store)
        long bound = _consumer.Cached; // positions below it are published (an acquire of tail said so)
        int wanted = destination.Length;
        if (bound - head < wanted)
        {
            // One read of tail per batch that the bound does not cover (and, streaming right behind the producer, a
            // pause first: see the design comment); the sequences below decide beyond it.
            bound = RaiseBatchBound(head);
        }

        ref T target = ref MemoryMarshal.GetReference(destination);
        int count = (int)Math.Clamp(bound - head, 0, wanted);
        CopyOut(head, ref target, count); // below the bound: ordered after the acquire of tail or of a run's sequence

        // Beyond the bound: runs published (their first slot's sequence stored) whose tail store is still to come, one
        // sequence read per run. An empty answer is made here, at the acquire of the head slot's sequence, never from tail
        // alone (an enqueue linearizes at its sequence store).
        while (count < wanted)
        {
            long position = head + count;
            // acquire: pairs with the producer's release of Sequence; makes the run's items readable. A value at most
            // the position is stale: nothing is published there yet.
            long end = TAtomics.LoadAcquire(ref Slot(position).Sequence);
            if (end <= position)
            {
                break;
            }

            _consumer.Cached = end; // plain: consumer-private; above the old bound, since position >= it
            int stop = (int)Math.Min(end - head, wanted);
            CopyOut(position, ref Unsafe.Add(ref target, count), stop - count); // ordered after the acquire of the run's sequence
            count = stop;
        }

        if (count == 0)
        {
            _consumer.Spare = 0; // plain: consumer-private; an empty answer ends the streak, as in TryDequeue
            return 0;
        }

        _consumer.Spare += count; // plain: consumer-private; items taken since the last empty answer (see RaiseBatchBound)
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
        // acquire: pairs with the release of tail in the enqueue methods; every slot below it is published. The bound may
        // already be higher (a run's end, read from its first slot before the producer stored tail): it never goes down.
        long tail = TAtomics.LoadAcquire(ref _producer.Index);
        if (tail - head < _streamDistance)
        {
            tail = PauseIfUseful(tail);
        }

        _consumer.Cached = Math.Max(_consumer.Cached, tail); // plain: consumer-private
    }

    /// <summary>
    /// The batch dequeue's bound read: reads tail into the known-published bound and returns it. A consumer that has taken
    /// at least <see cref="_boundReadStreak"/> items since its last empty answer (it keeps up with a producer that keeps
    /// adding) and trails the producer by less than <see cref="_streamDistance"/> (but has something to take: a consumer
    /// that caught up completely answers from the head slot and never pauses) pauses first, as the single-item path
    /// does: without it a batch consumer streaming right behind the producer reads tail on every call (one cross-core
    /// transfer of the producer's index line per batch) and shares the slot lines the producer is still writing.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private long RaiseBatchBound(long head)
    {
        // acquire: pairs with the release of tail in the enqueue methods; every slot below it is published.
        long tail = TAtomics.LoadAcquire(ref _producer.Index);
        if (tail > head && tail - head < _streamDistance && _consumer.Spare >= _boundReadStreak)
        {
            _consumer.Spare = 0; // plain: consumer-private; the next pause needs another streak's worth of takes
            tail = PauseIfUseful(tail);
        }

        long bound = Math.Max(_consumer.Cached, tail); // plain: consumer-private; never goes down (see RaiseBound)
        _consumer.Cached = bound;
        return bound;
    }

    /// <summary>
    /// The consumer's streaming pause, at a read of tail (<paramref name="tail"/>) that found the producer less than
    /// <see cref="_streamDistance"/> ahead: pauses unless a recent pause proved useless, then reads tail again and returns
    /// it, adjusting the backoff.
    /// </summary>
    private long PauseIfUseful(long tail)
    {
        // plain: consumer-private. Spare2 = (backoff level << 32) | close reads left to skip before the next pause.
        long backoff = _consumer.Spare2;
        if ((backoff & uint.MaxValue) != 0)
        {
            _consumer.Spare2 = backoff - 1;
            return tail;
        }

        TAtomics.Pause(StreamPause); // no shared access: a bounded pause that lets the producer pull ahead (a scheduling point under the controlled scheduler)
        // acquire: as above. A producer that did not move even a streak's worth meanwhile is not streaming (it is idle, or
        // this very thread between bursts; one slowed by lock-step still moves dozens): the pause bought nothing, so skip the next PauseBackoff << level chances,
        // the level growing with each useless pause in a row and starting over after a useful one.
        long after = TAtomics.LoadAcquire(ref _producer.Index);
        long level = Math.Min((backoff >> 32) + 1, MaxBackoffLevel);
        _consumer.Spare2 = after - tail >= _boundReadStreak ? 0 : (level << 32) | ((long)PauseBackoff << (int)level);
        return after;
    }

    /// <summary>The first live slot (position 0 mod capacity), after the padding.</summary>
    private readonly ref SpscSlot<T> FirstSlot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), SlotPadding);
    }

    /// <summary>Writes <paramref name="count"/> items into consecutive slots from <paramref name="slot"/> (no wrap), plain.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyIn(ref SpscSlot<T> slot, ref T source, int count)
    {
        // Walking references (no index to scale): about five instructions an item.
        ref SpscSlot<T> end = ref Unsafe.Add(ref slot, count);
        while (Unsafe.IsAddressLessThan(ref slot, ref end))
        {
            TAtomics.StorePlain(ref slot.Item, source); // plain: see the callers
            slot = ref Unsafe.Add(ref slot, 1);
            source = ref Unsafe.Add(ref source, 1);
        }
    }

    /// <summary>
    /// Copies the items of positions [<paramref name="position"/>, + <paramref name="count"/>) out, plain (the callers'
    /// acquires order it), clearing their slots when T contains references (ours until head moves past them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly void CopyOut(long position, ref T target, int count)
    {
        int start = (int)(position & _mask);
        int first = Math.Min(count, _capacity - start); // up to the end of the array, then the rest from its start
        CopyOut(ref Unsafe.Add(ref FirstSlot, start), ref target, first);
        CopyOut(ref FirstSlot, ref Unsafe.Add(ref target, first), count - first);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyOut(ref SpscSlot<T> slot, ref T target, int count)
    {
        ref SpscSlot<T> end = ref Unsafe.Add(ref slot, count);
        while (Unsafe.IsAddressLessThan(ref slot, ref end))
        {
            target = TAtomics.LoadPlain(ref slot.Item); // plain: see the callers
            if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
            {
                TAtomics.StorePlain(ref slot.Item, default!); // plain: ours until head moves past it
            }

            slot = ref Unsafe.Add(ref slot, 1);
            target = ref Unsafe.Add(ref target, 1);
        }
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
