using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Queues;

// The place-or-evict enqueue of SequencedRing, behind OverflowPolicy.DropOldest (session 16). Many consumers only
// (SPMC, MPMC): the evicting producer takes the head as a consumer would.
//
// Before, DropOldest was two queue operations: dequeue the head, then enqueue. Between them another producer could take
// the room (so one write evicted two items, and the other write was accepted into a buffer that was full when it
// began), and a reader could free a slot (so an item was evicted that a one-at-a-time order would have kept). Neither
// history is linearizable as "place, or evict the oldest and place".
//
// The idea: a full ring's next position t and its oldest position h = t - capacity share one slot. So the producer
// claims t first, even past full (the tail may run ahead of head + capacity by one position per evicting producer in
// flight), and then needs exactly that slot back: either a consumer takes position h (the write is then an ordinary
// one: it waits for the consumer's release and places), or the producer takes h itself with the consumers' claim (a CAS
// of the head from h to h + 1, made only while the slot holds h's published item) and, owning the slot, swaps its item
// for h's and publishes position t. Exactly one thread claims h, so each write evicts at most one item, and only the
// item it displaces.
//
// Why the claim first: a producer that claims t holds every other producer off t (they claim t + 1 and so need h + 1)
// and holds consumers off t's item until it is published (they see the tail past t and wait for the slot, as for any
// producer between claim and publish). A single producer "claims" by storing the tail early (its usual publish order is
// slot, then tail); its consumers then meet a claimed, unpublished slot at t, which they wait out on their slow path.
//
// Linearization: a write at position t linearizes when position h stops being held: at the head CAS that takes h (its
// own eviction, made by itself or by a helper, or a consumer's read, which it directly follows), or at its own claim if
// h was already taken then.
// Writes therefore linearize in position order, the abstract queue never exceeds capacity, and a full answer of an
// ordinary enqueue (which reads the real head) is exact: with an eviction in flight the ring shows more than capacity
// positions, which is full in the abstract too. Tests: tests/Concurrency/Queues/EvictingEnqueueScheduleTests.cs
// (linearizability against QueueSpec's place-or-evict step; the old two-step eviction is the planted twin).
//
// Helping (many producers). Claiming past full unconditionally made convoys: positions past full are claimed in order
// and the head moves in order, so the producer of t + 1 needed h + 1, free only after the producer of t had evicted h,
// and with more writers than cores every write waited for a preempted predecessor (measured on the 2-vCPU VM, 4 writers,
// no reader, capacity 16: 0.1 M writes/s against 2.4 M for the two-step eviction). So a producer claims past full only
// when no other claim past full is still to take its oldest item (tail - head <= capacity when it reads them; so at most
// one such claim is ever pending, and a claimant's oldest position is always at the head or taken), and otherwise
// evicts the head position hd for its owner, the producer of hd + capacity: it claims hd with the consumers' head CAS
// (only once hd's item is published) and hands the slot on in a state of its own, "free for position hd + capacity,
// holding the item it displaces" (Sequence = ~2(hd + capacity), negative: below every value a consumer or an ordinary
// producer waits for, so both take it for a slot still in flight, as a claimed, unpublished one). That owner claimed
// past full (an ordinary producer claims only a free slot, and this one held hd's item while the head was at hd); it
// takes the displaced item from the slot, puts its own in, publishes, and answers PlacedEvicting with that item: the
// eviction is its own, made by another thread. So no producer waits for another's eviction, only for the few
// instructions between a claim and its release or publish (a consumer taking the oldest item; the oldest item's
// producer; a helper), as in any Vyukov ring. A single producer never needs help.
//
// Contention (session 22). With several writers evicting from a full ring at once, every write moved the tail's, the
// head's and the slot's lines between the cores, while the BCL channel's lock moves one line per handoff and its holder
// does the rest in its own cache: ours was 2.6-4x slower than the channel there (4 writers on the 2-vCPU VM, no reader).
// So a write that meets another writer on this path (a lost tail claim, or another claim past full still to take its
// oldest item) pauses once, about 10 us, without touching shared memory, and then goes on as before (claims, helps)
// without pausing again. Meanwhile the other writer runs alone with the lines in its cache, as a lock's holder does.
// BackpressureContendedFullBufferBenchmarks, 2 and 4 writers, quick runs on the 2-vCPU VM: short pauses growing from
// 0.7 or 1.4 us left ours slower than the channel (1.5-1.6x, 0.9-1.3x); one pause of 5 us read 0.63 / 0.70 of it, of
// 11 us (this one) 0.50-0.81 in four runs, of 22 us 0.49-0.52: longer ones gain little and cost each losing write more.
// A pause is a delay, not a wait for another thread: the progress argument below is unchanged.
//
// Progress: lock-free among the producers past full, blocking only where the ring already is (a claimed, unfinished
// slot: the oldest item's producer before its publish, a consumer before its release, and, for the consumers, a
// producer past full before its publish). The waits spin through the seam's SpinOnce (spins, then yields).
internal partial struct SequencedRing<T, TAtomics, TProducers, TConsumers>
    where TAtomics : struct, IAtomics
    where TProducers : struct, IRolePolicy
    where TConsumers : struct, IRolePolicy
{
    /// <summary>
    /// Places <paramref name="item"/>, evicting the oldest item if and only if the ring is full when the write takes
    /// effect (see the note above). <paramref name="evicted"/> is the displaced item on
    /// <see cref="EvictingEnqueue.PlacedEvicting"/>. Many consumers only. Inlined into the buffer's overflow path with
    /// the first look at the slot; the wait, when there is one, is out of line.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public EvictingEnqueue EnqueueOrEvict(T item, [MaybeNull] out T evicted)
    {
        Debug.Assert(!TConsumers.IsSingle, "An evicting producer is a second consumer.");
        long position;
        if (TProducers.IsSingle)
        {
            position = TAtomics.LoadOwn(ref _producers.Index); // plain: only the single producer writes the tail (its own store)
            if (TAtomics.LoadAcquire(ref Slot(position).Sequence) == position << 1) // acquire: pairs with a consumer's release of the slot
            {
                TAtomics.StorePlain(ref Slot(position).Item, item); // plain: the slot is the producer's until the publish
                PublishSlot(ref Slot(position), position, position + 1);
                evicted = default;
                return EvictingEnqueue.Placed;
            }

            // release: claims t for the consumers' eyes (they wait at t for the publish); full fence not needed, the
            // head CAS below (or a consumer's release we wait for) orders the rest.
            TAtomics.StoreRelease(ref _producers.Index, position + 1);
        }
        else
        {
            position = ClaimPastFull();
            if (position < 0)
            {
                evicted = default;
                return EvictingEnqueue.Closed;
            }
        }

        if (TryPlaceOrEvictAt(position, item, out evicted, out EvictingEnqueue done))
        {
            return done;
        }

        return PlaceOrEvictAt(position, item, out evicted);
    }

    /// <summary>
    /// The Sequence a helper that evicted position p - capacity for the producer of p leaves in their shared slot: free
    /// for that producer, still holding the displaced item (see "Helping"). Negative, so below every value another
    /// thread waits for there (2p + 1 for p's consumer, 2p for a producer rereading a stale tail): they wait, or reread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Handed(long position) => ~(position << 1);

    /// <summary>
    /// The one pause (<see cref="Thread.SpinWait(int)"/> iterations, about 10 µs: the runtime normalizes an iteration to
    /// 35-45 ns) a many-producer write takes on the eviction path when it meets another writer there (see "Contention").
    /// </summary>
    internal const int ContentionPause = 256;

    /// <summary>
    /// Many producers: claims the next position, past full if need be, but never past another claim past full whose oldest
    /// item is still in place: that one is evicted for its owner first (see "Helping"), after one pause of
    /// <see cref="ContentionPause"/> (see "Contention"). -1: the producers' side is closed.
    /// </summary>
    private long ClaimPastFull()
    {
        var spinner = default(SpinWait);
        bool paused = false;
        while (true)
        {
            long position = TAtomics.LoadAcquire(ref _producers.Index); // acquire: a start point for the claim
            if ((position & ClosedBit) != 0)
            {
                return -1;
            }

            long head = TAtomics.LoadAcquire(ref _consumers.Index); // acquire: is a claim past full still to take its oldest item?
            if (position - head > _capacity)
            {
                if (PauseOnce(ref paused))
                {
                    continue; // another writer is on the eviction path: it ran alone meanwhile (see "Contention")
                }

                if (!HelpEvictHead(head))
                {
                    TAtomics.SpinOnce(ref spinner); // the head item is not published yet, or was just taken: both finish without us
                }

                continue;
            }

            if (TAtomics.CompareExchange(ref _producers.Index, position + 1, position) == position) // full fence: the claim, past full if need be
            {
                return position;
            }

            PauseOnce(ref paused); // lost the claim to another writer: as above
        }
    }

    /// <summary>The contention pause, once per write: true when it paused now (see "Contention").</summary>
    private static bool PauseOnce(ref bool paused)
    {
        if (paused)
        {
            return false;
        }

        paused = true;
        TAtomics.Pause(ContentionPause); // no shared access: the other writer runs alone meanwhile
        return true;
    }

    /// <summary>
    /// Many producers, the tail past head + capacity: evicts the head position for its owner (the producer of head +
    /// capacity, which claimed it past full) and hands that producer the slot with the displaced item in it. True when
    /// it did.
    /// </summary>
    private bool HelpEvictHead(long head)
    {
        ref SequencedSlot<T> slot = ref Slot(head);
        if (TAtomics.LoadAcquire(ref slot.Sequence) != ((head << 1) | 1) // acquire: the head item is published (pairs with its producer's release)
            || TAtomics.CompareExchange(ref _consumers.Index, head + 1, head) != head) // full fence: the consumers' claim, made for the owner of head + capacity
        {
            return false;
        }

        long owner = head + _capacity;
        long handed = TAtomics.IsPlanted(PlantedFault.HelperHandsAFreeSlot) ? owner << 1 : Handed(owner);
        TAtomics.StoreRelease(ref slot.Sequence, handed); // release: the displaced item (left in the slot) goes with it; pairs with the owner's acquire
        return true;
    }

    /// <summary>
    /// After the claim of <paramref name="position"/> (the tail is past it, for a single producer too; its oldest position
    /// is at the head or already taken): waits for its slot, or takes it by evicting the item of one lap before.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private EvictingEnqueue PlaceOrEvictAt(long position, T item, [MaybeNull] out T evicted)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            // The oldest item is not published yet (its producer is between claim and publish), or a consumer or a helper
            // is between its claim of it and its release: all finish within a few instructions, without us.
            TAtomics.SpinOnce(ref spinner);
            if (TryPlaceOrEvictAt(position, item, out evicted, out EvictingEnqueue done))
            {
                return done;
            }
        }
    }

    /// <summary>
    /// One look at the slot of the claimed <paramref name="position"/>: place if it is free; if a helper evicted for us,
    /// take the displaced item and place; if it holds the oldest item and the head is there, evict it and place.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryPlaceOrEvictAt(long position, T item, [MaybeNull] out T evicted, out EvictingEnqueue done)
    {
        ref SequencedSlot<T> slot = ref Slot(position);
        long oldest = position - _capacity; // the position the slot holds while it is not free for us
        long sequence = TAtomics.LoadAcquire(ref slot.Sequence); // acquire: pairs with the release of the slot (free, handed) or the publish of the oldest item (held)
        if (sequence == position << 1)
        {
            // A consumer took the oldest item (or it was gone before the claim): an ordinary write.
            TAtomics.StorePlain(ref slot.Item, item); // plain: claimed, not yet published
            TAtomics.StoreRelease(ref slot.Sequence, (position << 1) | 1); // release: publishes the item (the tail is already past it); pairs with the acquire in the dequeue methods
            evicted = default;
            done = EvictingEnqueue.Placed;
            return true;
        }

        long held = (oldest << 1) | 1;
        bool handed = !TProducers.IsSingle && sequence == Handed(position); // a helper evicted the oldest item for us
        if (handed
            || ((sequence == held || (TAtomics.IsPlanted(PlantedFault.EvictSkipsPublishedCheck) && sequence >= 0 && sequence < held + 1))
                && TAtomics.LoadAcquire(ref _consumers.Index) == oldest // acquire: the head has reached the oldest position (earlier ones are taken)
                && TAtomics.CompareExchange(ref _consumers.Index, oldest + 1, oldest) == oldest)) // full fence: the consumers' claim of the oldest item
        {
            evicted = TAtomics.LoadPlain(ref slot.Item); // plain: ordered after the acquire of the published (or handed) Sequence; ours since the claim
            TAtomics.StorePlain(ref slot.Item, item); // plain: the slot stays unpublished for position until the store below
            TAtomics.StoreRelease(ref slot.Sequence, (position << 1) | 1); // release: publishes the item (the tail is already past it); pairs with the acquire in the dequeue methods
            done = EvictingEnqueue.PlacedEvicting;
            return true;
        }

        evicted = default;
        done = default;
        return false;
    }
}

/// <summary>What <c>SequencedRing.EnqueueOrEvict</c> did.</summary>
internal enum EvictingEnqueue
{
    /// <summary>The item was placed; nothing was evicted (the ring had room when the write took effect).</summary>
    Placed,

    /// <summary>The item was placed in the room of the oldest item, which was evicted and handed back.</summary>
    PlacedEvicting,

    /// <summary>Many producers: the producers' side was closed; nothing changed.</summary>
    Closed,
}

/// <summary>A queue with the place-or-evict enqueue of <c>SequencedRing.EnqueueOrEvict</c> (many consumers).</summary>
internal interface IEvictingQueue<T>
{
    /// <summary>Places the item, evicting the oldest one if and only if the queue is full when the write takes effect.</summary>
    EvictingEnqueue EnqueueOrEvict(T item, [MaybeNull] out T evicted);
}
