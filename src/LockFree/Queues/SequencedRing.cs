using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
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
// Invariants: 0 <= tail - head <= capacity, counting claims, except while place-or-evict enqueues (SequencedRing.Evicting.cs,
// DropOldest) are in flight: each may claim one position past head + capacity; Sequence only grows, but for the
// negative "handed" value a helping evictor leaves for a producer past full (SequencedRing.Evicting.cs), which every
// other reader of the slot takes for "still in flight"; a cached copy is never ahead of the index it copies.
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
//
// Files (partial struct): this one holds the design note, the fields, construction, closing and the monitoring
// snapshots; SequencedRing.Enqueue.cs and SequencedRing.Dequeue.cs the single-item operations (and TryPeek);
// SequencedRing.Batch.cs TryEnqueueMany / TryDequeueMany; SequencedRing.BoundaryPolls.cs the boundary polls and the
// catch-up pause; SequencedRing.Indices.cs the index, cached-copy and slot accessors; SequencedRing.Evicting.cs the
// place-or-evict enqueue of DropOldest (many consumers).
[DebuggerDisplay("Capacity = {Capacity}")]
internal partial struct SequencedRing<T, TAtomics, TProducers, TConsumers>
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
}

/// <summary>A slot of <see cref="SequencedRing{T, TAtomics, TProducers, TConsumers}"/>: its state word and its item.</summary>
internal struct SequencedSlot<T>
{
    /// <summary>2p: empty, ready for the producer of position p; 2p + 1: holds the item of p.</summary>
    public long Sequence;

    /// <summary>The item, or default(T) when the slot is empty.</summary>
    public T Item;
}
