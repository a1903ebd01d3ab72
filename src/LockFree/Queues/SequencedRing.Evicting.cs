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
// own eviction, or a consumer's read, which it directly follows), or at its own claim if h was already taken then.
// Writes therefore linearize in position order, the abstract queue never exceeds capacity, and a full answer of an
// ordinary enqueue (which reads the real head) is exact: with an eviction in flight the ring shows more than capacity
// positions, which is full in the abstract too. Tests: tests/Concurrency/Queues/EvictingEnqueueScheduleTests.cs
// (linearizability against QueueSpec's place-or-evict step; the old two-step eviction is the planted twin).
//
// Progress: a producer past full waits for position h to be taken: by a consumer, or by the producer of h + capacity
// - 1 ... that claimed just before it (each takes its own h in turn), and for h's own producer to publish. So it is
// blocking in the way any claimed, unfinished slot of the ring is (a consumer there waits for its producer), never
// longer than the producers ahead of it take to finish. The wait spins through the seam's SpinOnce (which yields and
// sleeps after a while), as the ring's other waits do.
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
            position = _producers.Index; // plain: only the single producer writes the tail
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
            while (true)
            {
                position = TAtomics.LoadAcquire(ref _producers.Index); // acquire: a start point for the claim
                if ((position & ClosedBit) != 0)
                {
                    evicted = default;
                    return EvictingEnqueue.Closed;
                }

                if (TAtomics.CompareExchange(ref _producers.Index, position + 1, position) == position) // full fence: the claim, past full if need be
                {
                    break;
                }
            }
        }

        if (TryPlaceOrEvictAt(position, item, out evicted, out EvictingEnqueue done))
        {
            return done;
        }

        return PlaceOrEvictAt(position, item, out evicted);
    }

    /// <summary>
    /// After the claim of <paramref name="position"/> (the tail is past it, for a single producer too): waits for its
    /// slot, or takes it by evicting the item of one lap before.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private EvictingEnqueue PlaceOrEvictAt(long position, T item, [MaybeNull] out T evicted)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            // The oldest item is not published yet (its producer is between claim and publish), a consumer holds it, or
            // positions before it are still to be taken: all finish without us.
            TAtomics.SpinOnce(ref spinner);
            if (TryPlaceOrEvictAt(position, item, out evicted, out EvictingEnqueue done))
            {
                return done;
            }
        }
    }

    /// <summary>One look at the slot of the claimed <paramref name="position"/>: place if it is free, evict if it holds the oldest item and the head is there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryPlaceOrEvictAt(long position, T item, [MaybeNull] out T evicted, out EvictingEnqueue done)
    {
        ref SequencedSlot<T> slot = ref Slot(position);
        long oldest = position - _capacity; // the position the slot holds while it is not free for us
        long sequence = TAtomics.LoadAcquire(ref slot.Sequence); // acquire: pairs with the release of the slot (free) or the publish of the oldest item (held)
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
        if ((sequence == held || (TAtomics.IsPlanted(PlantedFault.EvictSkipsPublishedCheck) && sequence < held + 1))
            && TAtomics.LoadAcquire(ref _consumers.Index) == oldest // acquire: the head has reached the oldest position (earlier ones are taken)
            && TAtomics.CompareExchange(ref _consumers.Index, oldest + 1, oldest) == oldest) // full fence: the consumers' claim of the oldest item
        {
            evicted = TAtomics.LoadPlain(ref slot.Item); // plain: ordered after the acquire of the published Sequence; ours since the claim
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
