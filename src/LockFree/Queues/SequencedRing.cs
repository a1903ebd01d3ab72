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
// ConcurrentQueueSegment and crossbeam's ArrayQueue, with the cached-index gating of JCTools'
// MpscArrayQueue ("producer limit") wherever the other side is a single thread. A role played by many
// threads claims a position by compare-and-swap on its shared index; a role played by one thread
// (TProducers/TConsumers = SingleRole) advances its index with a release store and uses no
// read-modify-write instruction at all.
//
// Encoding: tail (_producers.Index) and head (_consumers.Index) are unbounded 64-bit positions; position p
// lives in slot p & _mask. A slot's Sequence says what it is ready for:
//   Sequence == 2p      the slot is empty and ready for the producer of position p;
//   Sequence == 2p + 1  the slot holds the item of position p, ready for its consumer.
// A consumer of p releases the slot to the producer of p + capacity by storing 2(p + capacity). Doubling
// keeps the two states distinct at capacity 1 (Vyukov's original p / p + 1 encoding needs capacity >= 2).
// _producers.Cached is a recent head (used only with a single consumer), _consumers.Cached a recent tail
// (used only with a single producer); shared hints when their own side is multi.
//
// Gating, chosen by the other side's role, so that polling at a full or empty boundary never makes the
// other side's compare-and-swap miss (a locked instruction stalls on a stolen line; a plain store does not):
//   - other side single: its index moves by a release store after it has published (released) its slot,
//     so it is cheap to read. Gate on it through the cached copy, reread only when the copy says full or
//     empty: a producer uses position p once head > p - capacity, a consumer once tail > p. Once the gate
//     opens the slot is ready, so a single-role side is never waited on.
//   - other side multi: its index is the CAS line. Gate on the slot's Sequence (Vyukov) and read the index
//     only when the slot is not ready, to tell full/empty from "claimed and not yet finished"; in the
//     latter case wait for that slot (a window of a few instructions) rather than answer wrongly.
//
// Boundary polls (one side single, the other many: MPSC's consumer, SPMC's producer). The single side's exact empty
// (full) answer needs one read of the other side's index, and that index is the line the other side compare-and-swaps.
// A locked instruction on a line another core has just read waits until the line comes back exclusive, after draining
// the store buffer (whose pending slot stores also wait on lines the poller read), so a single side polling at the
// boundary stalled every claim of the other side and kept the queue at the boundary: a consumer with no CAS outruns its
// producers, and then sat at empty in lock-step at 130-200 ns an item on the 2-vCPU VM, where MPMC (whose consumer
// CASes too, and so rarely catches up) moved one in 13-20 ns. A variant that answered empty without that read (wrong,
// measured only) moved one in about 30 ns, like SPSC in lock-step: the read of the CAS line was the cost. So the single
// side, its slot not ready, first re-reads the slot up to BoundaryPolls times, each after the shortest SpinWait step
// (tens of nanoseconds, never a yield). The slot is written by the other side with plain stores only, which a reader
// does not stall. An item that lands meanwhile is taken through the same acquire of Sequence, without the index; else
// the index is read as before, and the answer is the same one at the same linearization point (the polls only delay
// it). They run only at a position that has not already answered empty (full) (LastBoundary, the single side's Cached
// field, unused in these role mixes), so an idle queue pays them once, not on every poll, and on an adaptive budget
// (PollBudget, the single side's Spare word): BoundaryPolls after polls that saw the item land, halved down to 1 after
// polls that ended in an empty (full) answer, so a loop that drains to empty and leaves pays one short poll per drain.
// The delay queue's inbox drain, which runs under a lock, uses TryDequeueWithoutPolls; the back-pressure buffer, whose
// own overflow policy or spin-then-park follows a full answer, uses TryEnqueueWithoutPolls. Its reads keep the polls:
// TryDequeueWithoutPolls on its MPSC engine was measured 2-5x slower with one writer and one reader (async, and
// spinning on TryRead), each empty answer then reading the writers' CAS line at once. Rejected after measuring:
// marking a claim intent in the slot by CAS before the index CAS, so that the slot alone could answer exactly; it puts
// the locked instruction on the very line the single side polls, and was about twice as slow at the boundary.
//
// Catch-up pause (the first boundary poll of a call; session 4). The polls alone left MPSC and SPMC 1P1C 2-3x slower
// than MPMC (measured in lock-step, both threads truly running: 30-42 ns an item against 10-14 on the 2-vCPU VM; 50-74
// against 26-35 on a 16-core Xeon VM). The single side, having no CAS to pay, catches up with the other side again and
// again; at each catch-up, and all the while it runs close behind, its reads of the slot lines the other side is still
// writing (and the hardware prefetcher's reads ahead of them) pull those lines away, and the other side's next CAS
// waits for its pending slot stores to get them back. MPMC escapes only because its CAS-paying consumer stays far
// behind. So the first poll at a catch-up pauses for CatchUpPause iterations (Pause: spinning, no shared access, never
// a yield) before it re-reads the slot: 1 (about one short SpinOnce step) normally, doubled up to CatchUpPauseMax
// (and capacity / 8) when the single side moved at least 2 x CatchUpPause positions since its previous catch-up (the
// other side streams faster than about a line transfer per item: lock-step would cost it more than the pause costs the
// single side), halved otherwise (a request/response or slow stream keeps it near 1), and reset to 1 when the polls end
// in an empty (full) answer. Streaming, the other side then runs thousands of slots ahead and the single side drains
// them far behind it, as MPMC's consumer does. The price: while the other side keeps streaming, an item may wait up to
// the current pause (at most about 40 us here) before the single side takes it. Exactness is untouched: the pause
// reads nothing, and the answer is made afterwards exactly as before (the slot, then, not ready, the other side's
// index). Tests: BoundaryPollTests (the adaptation), CatchUpPauseScheduleTests (controlled scheduler, planted twin).
//
// MPMC (session 5). MPMC 1P1C showed the same lock-steps (6.9-140 ns an item under SCHED_FIFO on the 2-vCPU VM, bimodal):
// a consumer caught up with the producer read the producers' CAS index for each empty answer and the slot lines still being
// written; a producer caught up with the consumer (the queue full) read the consumers' CAS index and the lines still being
// released. So MPMC's consumers poll and pause as MPSC's consumer does, and its producers as SPMC's producer does (6.7-8.1
// ns after, ConcurrentQueue 10-17). Each side's poll state (PollingSide: Cached = the last boundary position, Spare = the
// poll budget, Spare2 = the last catch-up position, Spare3 = the catch-up pause) lives in its own padded region, unused
// otherwise in MPMC, as a hint shared by that side's threads (acquire/release through the seam): a stale or lost update
// changes only how long a thread waits before it reads the other side's index, from which every answer is still made.
//
// Invariants: 0 <= tail - head <= capacity, counting claims; Sequence only grows; a cached copy is never
// ahead of the index it copies.
//
// Linearization: a multi-role operation linearizes at its successful CAS, a single-role one at its index
// store. An answer of full (empty) linearizes at the read of the other side's real index that showed no
// room (no item): exact, never spurious. Batches claim (or, single-role, publish) a run of positions with
// one index update, and publish and release their slots back to front, so the other side never sees half
// a batch: the slot it would read first flips last. (Front to back, a consumer could take half a batch and
// another then answer empty; the controlled scheduler found that history in an earlier version.) A batch
// may take fewer items than there is room for when it meets a slot still in flight, but at least one
// whenever a single-item call would have succeeded.
//
// Closing (many producers only): CloseProducers sets ClosedBit in the tail with a CAS (crossbeam's "mark
// bit"). A producer's claim CAS compares the whole tail, so none can claim after the close; a producer that
// reads a tail with the bit answers "no room" (the owner of the ring, BackpressureBuffer, tells "closed" from
// "full" by its own completion flag, set before the close). Positions claimed before the close are still
// published and consumed, so "drained" is head == the tail without the bit. Every reader of the tail masks the
// bit. This replaces a per-write active-writer count: closing costs the writers nothing.
//
// Progress: lock-free among the threads of a multi role; a thread that meets a claimed, unfinished slot of
// the other side waits for its claimant, as ConcurrentQueue does. A single-role side is never waited on. Boundary polls
// add at most BoundaryPolls pauses to a call: one catch-up pause (1 to CatchUpPauseMax iterations), then short ones.
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

    /// <summary>Set in the tail by <see cref="CloseProducers"/> (many producers only); positions stay far below it (2^62 operations).</summary>
    internal const long ClosedBit = 1L << 62;

    private readonly SequencedSlot<T>[] _slots;
    private readonly long _mask;
    private readonly int _capacity;

    /// <summary>
    /// Slot re-reads before a single side reads the other side's compare-and-swap index for an empty (full) answer:
    /// at most 8 x about 45 ns on the 2-vCPU VM (a few cross-core line transfers), so a producer (consumer) that is busy
    /// publishing (releasing) is usually seen in the slot instead. See "Boundary polls" in the design note.
    /// </summary>
    internal const int BoundaryPolls = 8;

    /// <summary>
    /// Longest catch-up pause, in <see cref="IAtomics.Pause"/> iterations (about 40 ns each on the 2-vCPU VM, so about
    /// 40 us): long enough that the other side, streaming, gets thousands of slots ahead, past the reach of the hardware
    /// prefetchers that follow the single side's reads. See "Catch-up pause" in the design note.
    /// </summary>
    internal const int CatchUpPauseMax = 1024;

    /// <summary>A poll count past any budget: the call makes no boundary polls and leaves the budget alone.</summary>
    private const int NoPolls = BoundaryPolls + 1;

    // Producer side: Index = tail (next position to enqueue); Cached = a recent head (used with a single consumer).
    private PaddedIndexPair _producers;

    // Consumer side: Index = head (next position to dequeue); Cached = a recent tail (used with a single producer).
    private PaddedIndexPair _consumers;

    public SequencedRing(int capacity)
    {
        _capacity = QueueCapacity.RoundUp(capacity);
        _mask = _capacity - 1;
        _slots = new SequencedSlot<T>[_capacity + (2 * SlotPadding)];
        for (int i = 0; i < _capacity; i++)
        {
            _slots[SlotPadding + i].Sequence = 2L * i; // plain: before publication of the object
        }

        foreach (bool consumer in (ReadOnlySpan<bool>)[true, false])
        {
            if (Polls(consumer))
            {
                ref PaddedIndexPair side = ref PollingSide(consumer);
                side.Cached = -1; // plain: before publication of the object; LastBoundary: no position answered empty (full) yet
                side.Spare = BoundaryPolls; // plain: before publication of the object; PollBudget
                side.Spare3 = 1; // plain: before publication of the object; CatchUpPause
            }
        }
    }

    public readonly int Capacity => _capacity;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(T item) => TryEnqueue(item, polls: 0);

    /// <summary>
    /// <see cref="TryEnqueue(T)"/> without boundary polls, for a producer whose own overflow handling follows a
    /// full answer at once (the back-pressure buffer: reject, drop, evict, or its own spin-then-park).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueueWithoutPolls(T item) => TryEnqueue(item, polls: NoPolls);

    /// <summary>The enqueue; <paramref name="polls"/> is the number of boundary polls already spent (<see cref="NoPolls"/>: make none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryEnqueue(T item, int polls)
    {
        long position = LoadTail();
        if (!TConsumers.IsSingle || position - LoadCachedHead() < _capacity)
        {
            ref SequencedSlot<T> slot = ref Slot(position);
            // acquire: pairs with the consumer's release of the slot; its read and clear happen-before our write.
            if (TAtomics.LoadAcquire(ref slot.Sequence) == position << 1 && ClaimTail(position, 1))
            {
                TAtomics.StorePlain(ref slot.Item, item); // plain: the slot is ours between the claim and the publish
                PublishSlot(ref slot, position, position + 1);
                return true;
            }
        }

        return TryEnqueueSlow(item, polls);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue([MaybeNullWhen(false)] out T item) => TryDequeue(out item, polls: 0);

    /// <summary>
    /// <see cref="TryDequeue(out T)"/> without boundary polls, for a consumer that drains under a lock until empty
    /// and so meets the empty boundary at a new position on every drain (the delay queue's inbox).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeueWithoutPolls([MaybeNullWhen(false)] out T item) => TryDequeue(out item, polls: NoPolls);

    /// <summary>The dequeue; <paramref name="polls"/> is the number of boundary polls already spent (<see cref="NoPolls"/>: make none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryDequeue([MaybeNullWhen(false)] out T item, int polls)
    {
        long position = LoadHead();
        if (!TProducers.IsSingle || position < LoadCachedTail())
        {
            ref SequencedSlot<T> slot = ref Slot(position);
            // acquire: pairs with the producer's release of the slot; its write of the item happens-before our read.
            if (TAtomics.LoadAcquire(ref slot.Sequence) == ((position << 1) | 1) && ClaimHead(position, 1))
            {
                item = TakeItem(ref slot);
                ReleaseSlot(ref slot, position, position + 1);
                return true;
            }
        }

        return TryDequeueSlow(out item, polls);
    }

    /// <summary>Reads the next item without removing it. Only valid with a single consumer.</summary>
    public bool TryPeek([MaybeNullWhen(false)] out T item)
    {
        Debug.Assert(TConsumers.IsSingle, "TryPeek needs a single consumer.");
        var spinner = default(SpinWait);
        int polls = 0;
        while (true)
        {
            long position = LoadHead();
            if (TProducers.IsSingle && AvailableAt(position, 1) <= 0)
            {
                item = default;
                return false; // empty
            }

            ref SequencedSlot<T> slot = ref Slot(position);
            if (TAtomics.LoadAcquire(ref slot.Sequence) == ((position << 1) | 1)) // acquire: as in TryDequeue
            {
                item = TAtomics.LoadPlain(ref slot.Item); // plain: no producer touches a published slot
                PollsPaidOff(consumer: true, polls);
                return true;
            }

            if (!TProducers.IsSingle && PollSlotAgain(consumer: true, position, ref polls))
            {
                continue; // re-read the slot before the tail: see "Boundary polls"
            }

            if (!TProducers.IsSingle && !ProducerInFlight(position))
            {
                NoteBoundary(consumer: true, position, polls);
                item = default;
                return false; // empty
            }

            TAtomics.SpinOnce(ref spinner); // a producer claimed the position and has not published it yet
        }
    }

    public int TryEnqueueMany(ReadOnlySpan<T> items)
    {
        if (items.IsEmpty)
        {
            return 0;
        }

        var spinner = default(SpinWait);
        int polls = 0;
        while (true)
        {
            long position = LoadTail();
            if (!TProducers.IsSingle && (position & ClosedBit) != 0)
            {
                return 0; // closed
            }

            int limit = Math.Min(items.Length, _capacity);
            if (TConsumers.IsSingle)
            {
                long room = RoomAt(position, limit);
                if (room <= 0)
                {
                    return 0; // full
                }

                limit = (int)Math.Min(room, limit);
            }

            int count = ReadyRun(position, limit, state: 0, out long sequence);

            if (count == 0)
            {
                if (sequence < position << 1)
                {
                    if (!TConsumers.IsSingle && PollSlotAgain(consumer: false, position, ref polls))
                    {
                        continue; // re-read the slot before the head: see "Boundary polls"
                    }

                    if (!TConsumers.IsSingle && !ConsumerInFlight(position))
                    {
                        NoteBoundary(consumer: false, position, polls);
                        return 0; // full
                    }

                    TAtomics.SpinOnce(ref spinner); // its consumer has claimed the slot and not yet released it
                }

                continue; // or another producer took the position: reread the tail
            }

            if (!ClaimTail(position, count))
            {
                continue;
            }

            for (int i = 0; i < count; i++)
            {
                TAtomics.StorePlain(ref Slot(position + i).Item, items[i]); // plain: claimed, not yet published
            }

            for (int i = count - 1; i > 0; i--)
            {
                // release: publishes this item (back to front); pairs with the acquire in the dequeue methods.
                TAtomics.StoreRelease(ref Slot(position + i).Sequence, ((position + i) << 1) | 1);
            }

            PublishSlot(ref Slot(position), position, position + count);
            PollsPaidOff(consumer: false, polls);
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
        int polls = 0;
        while (true)
        {
            long position = LoadHead();
            int limit = Math.Min(destination.Length, _capacity);
            if (TProducers.IsSingle)
            {
                long available = AvailableAt(position, limit);
                if (available <= 0)
                {
                    return 0; // empty
                }

                limit = (int)Math.Min(available, limit);
            }

            int count = ReadyRun(position, limit, state: 1, out long sequence);

            if (count == 0)
            {
                if (sequence < ((position << 1) | 1))
                {
                    if (!TProducers.IsSingle && PollSlotAgain(consumer: true, position, ref polls))
                    {
                        continue; // re-read the slot before the tail: see "Boundary polls"
                    }

                    if (!TProducers.IsSingle && !ProducerInFlight(position))
                    {
                        NoteBoundary(consumer: true, position, polls);
                        return 0; // empty
                    }

                    TAtomics.SpinOnce(ref spinner); // its producer has claimed the slot and not yet published it
                }

                continue; // or another consumer took the position: reread the head
            }

            if (!ClaimHead(position, count))
            {
                continue;
            }

            for (int i = 0; i < count; i++)
            {
                destination[i] = TakeItem(ref Slot(position + i));
            }

            for (int i = count - 1; i > 0; i--)
            {
                // release: hands the slot to the producer one lap ahead (back to front); pairs with the acquire in the enqueue methods.
                TAtomics.StoreRelease(ref Slot(position + i).Sequence, (position + i + _capacity) << 1);
            }

            ReleaseSlot(ref Slot(position), position, position + count);
            PollsPaidOff(consumer: true, polls);
            return count;
        }
    }

    /// <summary>Approximate number of items: a snapshot, clamped to [0, Capacity].</summary>
    public int Count
    {
        get
        {
            long head = TAtomics.LoadAcquire(ref _consumers.Index); // acquire: snapshot for any thread
            long tail = TAtomics.LoadAcquire(ref _producers.Index) & ~ClosedBit;
            return (int)Math.Clamp(tail - head, 0, _capacity);
        }
    }

    /// <summary>Positions ever claimed by producers (acquire snapshot of the tail).</summary>
    public long EnqueuedPositions => TAtomics.LoadAcquire(ref _producers.Index) & ~ClosedBit; // acquire: snapshot for any thread

    /// <summary>Positions ever claimed by consumers (acquire snapshot of the head).</summary>
    public long DequeuedPositions => TAtomics.LoadAcquire(ref _consumers.Index); // acquire: snapshot for any thread

    public bool IsEmpty
    {
        get
        {
            long head = TAtomics.LoadAcquire(ref _consumers.Index); // acquire: snapshot, as Count
            long tail = TAtomics.LoadAcquire(ref _producers.Index) & ~ClosedBit;
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
            FieldLayout.Offset(ref start, ref _producers.Index),
            FieldLayout.Offset(ref start, ref _consumers.Index));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryEnqueueSlow(T item, int polls)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            long position = LoadTail();
            if (!TProducers.IsSingle && (position & ClosedBit) != 0)
            {
                return false; // closed: no claim can succeed any more
            }

            if (TConsumers.IsSingle && RoomAt(position, 1) <= 0)
            {
                return false; // full
            }

            ref SequencedSlot<T> slot = ref Slot(position);
            long sequence = TAtomics.LoadAcquire(ref slot.Sequence); // acquire: as in TryEnqueue
            long expected = position << 1;
            if (sequence == expected)
            {
                if (ClaimTail(position, 1))
                {
                    TAtomics.StorePlain(ref slot.Item, item); // plain: claimed, not yet published
                    PublishSlot(ref slot, position, position + 1);
                    PollsPaidOff(consumer: false, polls);
                    return true;
                }
            }
            else if (sequence < expected)
            {
                // The slot still holds position - capacity: with many consumers, full unless one of them has claimed
                // it (the head is past it) and not yet released it. With one consumer the gate above already decided.
                if (!TConsumers.IsSingle && PollSlotAgain(consumer: false, position, ref polls))
                {
                    continue; // re-read the slot before the head: see "Boundary polls"
                }

                if (!TConsumers.IsSingle && !ConsumerInFlight(position))
                {
                    NoteBoundary(consumer: false, position, polls);
                    return false; // full
                }

                TAtomics.SpinOnce(ref spinner);
            }

            // sequence > expected: another producer took the position; reread the tail.
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryDequeueSlow([MaybeNullWhen(false)] out T item, int polls)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            long position = LoadHead();
            if (TProducers.IsSingle && AvailableAt(position, 1) <= 0)
            {
                item = default;
                return false; // empty
            }

            ref SequencedSlot<T> slot = ref Slot(position);
            long sequence = TAtomics.LoadAcquire(ref slot.Sequence); // acquire: as in TryDequeue
            long expected = (position << 1) | 1;
            if (sequence == expected)
            {
                if (ClaimHead(position, 1))
                {
                    item = TakeItem(ref slot);
                    ReleaseSlot(ref slot, position, position + 1);
                    PollsPaidOff(consumer: true, polls);
                    return true;
                }
            }
            else if (sequence < expected)
            {
                // Not yet published: with many producers, empty unless one of them has claimed the position (the tail
                // is past it) and not yet published it. With one producer the gate above already decided.
                if (!TProducers.IsSingle && PollSlotAgain(consumer: true, position, ref polls))
                {
                    continue; // re-read the slot before the tail: see "Boundary polls"
                }

                if (!TProducers.IsSingle && !ProducerInFlight(position))
                {
                    NoteBoundary(consumer: true, position, polls);
                    item = default;
                    return false; // empty
                }

                TAtomics.SpinOnce(ref spinner);
            }

            // sequence > expected: another consumer took the position; reread the head.
        }
    }

    /// <summary>
    /// Counts the slots from <paramref name="position"/> on (at most <paramref name="limit"/>) that are ready:
    /// empty for their producer (<paramref name="state"/> 0) or published for their consumer (state 1).
    /// <paramref name="stopSequence"/> is the Sequence of the first slot that was not ready.
    /// </summary>
    private readonly int ReadyRun(long position, int limit, long state, out long stopSequence)
    {
        int count = 0;
        stopSequence = 0;
        while (count < limit)
        {
            // acquire: as in the single-item calls, for every slot of the run.
            stopSequence = TAtomics.LoadAcquire(ref Slot(position + count).Sequence);
            if (stopSequence != (((position + count) << 1) | state))
            {
                break;
            }

            count++;
        }

        return count;
    }

    /// <summary>
    /// Single consumer: free positions from <paramref name="position"/> on, by the cached head when it shows at
    /// least <paramref name="wanted"/>, otherwise by the real head (whose read is where a full answer linearizes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long RoomAt(long position, int wanted)
    {
        long room = _capacity - (position - LoadCachedHead());
        if (room >= wanted)
        {
            return room;
        }

        long head = TAtomics.LoadAcquire(ref _consumers.Index); // acquire: pairs with the consumer's release of the head
        StoreCachedHead(head);
        return _capacity - (position - head);
    }

    /// <summary>
    /// Single producer: items from <paramref name="position"/> on, by the cached tail when it shows at least
    /// <paramref name="wanted"/>, otherwise by the real tail (whose read is where an empty answer linearizes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long AvailableAt(long position, int wanted)
    {
        long available = LoadCachedTail() - position;
        if (available >= wanted)
        {
            return available;
        }

        long tail = TAtomics.LoadAcquire(ref _producers.Index); // acquire: pairs with the producer's release of the tail
        StoreCachedTail(tail);
        return tail - position;
    }

    // The cached copies: private to a single producer (consumer), plain; a shared hint among many producers
    // (consumers), through the seam as acquire/release (plain moves on x64): a stale or reordered hint is safe
    // because every value ever stored is a real index that only grows, so the hint only ever lags.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadCachedHead() =>
        TProducers.IsSingle ? _producers.Cached : TAtomics.LoadAcquire(ref _producers.Cached);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreCachedHead(long head)
    {
        if (TProducers.IsSingle)
        {
            _producers.Cached = head; // plain: private to the single producer
        }
        else
        {
            TAtomics.StoreRelease(ref _producers.Cached, head); // release: a hint for the other producers
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadCachedTail() =>
        TConsumers.IsSingle ? _consumers.Cached : TAtomics.LoadAcquire(ref _consumers.Cached);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreCachedTail(long tail)
    {
        if (TConsumers.IsSingle)
        {
            _consumers.Cached = tail; // plain: private to the single consumer
        }
        else
        {
            TAtomics.StoreRelease(ref _consumers.Cached, tail); // release: a hint for the other consumers
        }
    }

    /// <summary>
    /// Whether <paramref name="consumer"/> (the consumer side, else the producer side) polls at its boundary: a side facing
    /// many on the other side. MPSC's consumer and SPMC's producer (their state private), and since session 5 both sides
    /// of MPMC (each side's state a hint shared by its threads, in its own padded region).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Polls(bool consumer) => consumer ? !TProducers.IsSingle : !TConsumers.IsSingle;

    /// <summary>Whether the polling sides are many threads (MPMC): their poll state is then a shared hint.</summary>
    private static bool SharedPollState => !TProducers.IsSingle && !TConsumers.IsSingle;

    /// <summary>
    /// A side facing many on the other side (MPSC's consumer, SPMC's producer, either side of MPMC), its slot not ready:
    /// whether to re-read the slot, after the shortest pause, before it reads the other side's compare-and-swap index to
    /// answer empty (full). At most the current budget (<see cref="BoundaryPolls"/> after polls that paid off, halved down
    /// to 1 after polls that did not) per call, and not at a position that already answered so. See "Boundary
    /// polls" in the design note.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool PollSlotAgain(bool consumer, long position, ref int polls)
    {
        if (!Polls(consumer))
        {
            return false;
        }

        ref PaddedIndexPair side = ref PollingSide(consumer);
        if (polls >= (int)LoadPollState(ref side.Spare) || position == LoadPollState(ref side.Cached))
        {
            return false;
        }

        if (polls++ == 0)
        {
            TAtomics.Pause(NextCatchUpPause(ref side, position)); // the first poll of a call: the catch-up pause (design note)
        }
        else
        {
            var pause = default(SpinWait);
            TAtomics.SpinOnce(ref pause); // the first, shortest step of a SpinWait (tens of nanoseconds), never a yield
        }

        return true;
    }

    /// <summary>
    /// The polling side caught up with the other at <paramref name="position"/>: the length of this catch-up pause. It
    /// doubles (up to <see cref="CatchUpPauseMax"/> and capacity / 8) when the side moved at least two positions per
    /// pause iteration since its last catch-up, so the other side is streaming faster than a line transfer per item and
    /// the two would otherwise run in lock-step; otherwise it halves (down to 1). <see cref="NoteBoundary"/> resets it
    /// to 1. State in the side's region: Spare2 = CatchUpAt (the last catch-up position), Spare3 = CatchUpPause.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int NextCatchUpPause(ref PaddedIndexPair side, long position)
    {
        long run = position - LoadPollState(ref side.Spare2); // positions taken (filled) since the last catch-up (by all its threads, MPMC)
        StorePollState(ref side.Spare2, position);
        int pause = (int)LoadPollState(ref side.Spare3);
        // Capped at capacity / 8 too: at two positions an iteration the other side fills (empties) at most a quarter of
        // the ring meanwhile, so a small ring does not turn the pause into a full (empty) wait for the other side.
        int longest = Math.Max(1, Math.Min(CatchUpPauseMax, _capacity >> 3));
        pause = run >= 2L * pause ? Math.Min(2 * pause, longest) : Math.Max(1, pause / 2);
        StorePollState(ref side.Spare3, pause);
        return pause;
    }

    /// <summary>The polling side met an item (room) after <paramref name="polls"/> boundary polls: the full budget again.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PollsPaidOff(bool consumer, int polls)
    {
        if (Polls(consumer) && polls > 0 && polls <= BoundaryPolls)
        {
            StorePollState(ref PollingSide(consumer).Spare, BoundaryPolls); // PollBudget
        }
    }

    /// <summary>
    /// The polling side answered empty (full) at <paramref name="position"/> after reading the other side's index,
    /// having spent <paramref name="polls"/> boundary polls in vain: records the position (LastBoundary, the side's Cached
    /// word), halves the budget (PollBudget, its Spare word) and resets the catch-up pause.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NoteBoundary(bool consumer, long position, int polls)
    {
        if (Polls(consumer))
        {
            ref PaddedIndexPair side = ref PollingSide(consumer);
            StorePollState(ref side.Cached, position);
            if (polls > 0 && polls <= BoundaryPolls)
            {
                StorePollState(ref side.Spare, Math.Max(1, (int)LoadPollState(ref side.Spare) / 2));
                StorePollState(ref side.Spare3, 1); // the other side has stopped (or is sparse): back to the shortest pause, for latency
            }
        }
    }

    /// <summary>
    /// A polling side's own padded region. Its words, unused otherwise where that side polls (a consumer facing many
    /// producers keeps no cached tail, a producer facing many consumers no cached head): Cached = the last position that
    /// answered empty (full), Spare = the poll budget, Spare2 = the last catch-up position, Spare3 = the catch-up pause.
    /// </summary>
    [UnscopedRef]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref PaddedIndexPair PollingSide(bool consumer) => ref consumer ? ref _consumers : ref _producers;

    // Poll state: private to a single polling side, plain; among MPMC's consumers a shared hint, through the seam as
    // acquire/release (plain moves on x64). A stale or lost update only changes how long a poller waits before it reads
    // the other side's index; every answer is still made from that read.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long LoadPollState(ref long word) =>
        SharedPollState ? TAtomics.LoadAcquire(ref word) : word;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePollState(ref long word, long value)
    {
        if (SharedPollState)
        {
            TAtomics.StoreRelease(ref word, value); // release: a hint for the side's other threads
        }
        else
        {
            word = value; // plain: private to the single side
        }
    }

    /// <summary>Many producers: whether one has claimed <paramref name="position"/> (the tail is past it); the read is where an empty answer linearizes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ProducerInFlight(long position) =>
        (TAtomics.LoadAcquire(ref _producers.Index) & ~ClosedBit) > position; // acquire: pairs with the claim CAS

    /// <summary>Many consumers: whether one has claimed <c>position - capacity</c> (the head is past it); the read is where a full answer linearizes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ConsumerInFlight(long position) =>
        position - TAtomics.LoadAcquire(ref _consumers.Index) < _capacity; // acquire: pairs with the claim CAS

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadTail() =>
        TProducers.IsSingle
            ? _producers.Index // plain: only the single producer writes the tail
            : TAtomics.LoadAcquire(ref _producers.Index); // acquire: a start point for the claim; the CAS validates it

    /// <summary>
    /// Many producers only: closes the producers' side (see the design note). Afterwards every enqueue answers
    /// no room; claims made before still complete. Returns the final tail (positions ever claimed). Idempotent.
    /// </summary>
    public long CloseProducers()
    {
        Debug.Assert(!TProducers.IsSingle, "A single producer closes in program order; the ring has nothing to do.");
        while (true)
        {
            long tail = TAtomics.LoadAcquire(ref _producers.Index); // acquire: the current claims
            if ((tail & ClosedBit) != 0)
            {
                return tail & ~ClosedBit;
            }

            if (TAtomics.CompareExchange(ref _producers.Index, tail | ClosedBit, tail) == tail) // full fence: the close; every later claim CAS fails
            {
                return tail;
            }
        }
    }

    /// <summary>Whether <see cref="CloseProducers"/> has run (a snapshot).</summary>
    public bool IsClosed => (TAtomics.LoadAcquire(ref _producers.Index) & ClosedBit) != 0; // acquire: snapshot

    /// <summary>
    /// Any thread, for monitoring only (never part of the queue protocol, never run under the controlled
    /// scheduler): a copy of the item at the head, validated by rereading the head and its slot's Sequence after
    /// the copy (a consumer claims by moving the head or, single, releases the slot before moving it). A single
    /// consumer clears the slot before its release, so an item with references can read as default. False when
    /// the head slot holds no published item (empty, or its producer is between claim and publish) or the head
    /// kept moving.
    /// </summary>
    public bool TrySnapshotHead([MaybeNullWhen(false)] out T item)
    {
        for (int attempt = 0; attempt < SnapshotAttempts; attempt++)
        {
            long position = TAtomics.LoadAcquire(ref _consumers.Index); // acquire: snapshot
            ref SequencedSlot<T> slot = ref Slot(position);
            long published = (position << 1) | 1;
            if (TAtomics.LoadAcquire(ref slot.Sequence) != published) // acquire: pairs with the producer's publish
            {
                break;
            }

            T value = TAtomics.LoadPlain(ref slot.Item); // plain, racing the consumers: validated below
            TAtomics.FullFence(); // the copy completes before the rereads (a seqlock reader's fence)
            if (TAtomics.LoadAcquire(ref _consumers.Index) == position && TAtomics.LoadAcquire(ref slot.Sequence) == published)
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadHead() =>
        TConsumers.IsSingle
            ? _consumers.Index // plain: only the single consumer writes the head
            : TAtomics.LoadAcquire(ref _consumers.Index); // acquire: a start point for the claim; the CAS validates it

    /// <summary>Claims positions [position, position + count) for this producer; a single producer needs no claim.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ClaimTail(long position, long count) =>
        TProducers.IsSingle
        || TAtomics.CompareExchange(ref _producers.Index, position + count, position) == position; // full fence: the claim

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ClaimHead(long position, long count) =>
        TConsumers.IsSingle
        || TAtomics.CompareExchange(ref _consumers.Index, position + count, position) == position; // full fence: the claim

    /// <summary>Publishes the item of <paramref name="position"/>; a single producer then moves the tail to <paramref name="newTail"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PublishSlot(ref SequencedSlot<T> slot, long position, long newTail)
    {
        TAtomics.StoreRelease(ref slot.Sequence, (position << 1) | 1); // release: publishes the item; pairs with the acquire in the dequeue methods
        if (TProducers.IsSingle)
        {
            TAtomics.StoreRelease(ref _producers.Index, newTail); // release: opens the consumers' gate after the publish
        }
    }

    /// <summary>Hands the slot of <paramref name="position"/> to the producer one lap ahead; a single consumer then moves the head to <paramref name="newHead"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseSlot(ref SequencedSlot<T> slot, long position, long newHead)
    {
        TAtomics.StoreRelease(ref slot.Sequence, (position + _capacity) << 1); // release: the item is read and cleared; pairs with the acquire in the enqueue methods
        if (TConsumers.IsSingle)
        {
            TAtomics.StoreRelease(ref _consumers.Index, newHead); // release: opens the producers' gate after the release
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
