using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Queues;

// The single-item enqueue of SequencedRing (see the design note in SequencedRing.cs): the inlined fast path,
// TryEnqueueWithoutPolls, and the slow path that tells full from a slot still in flight, with the boundary polls.
internal partial struct SequencedRing<T, TAtomics, TProducers, TConsumers>
    where TAtomics : struct, IAtomics
    where TProducers : struct, IRolePolicy
    where TConsumers : struct, IRolePolicy
{
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
            else if (sequence < expected && AnswersAtUnreadySlot(consumer: false, position, ref polls, ref spinner))
            {
                // The slot still holds position - capacity, and no consumer has claimed it (the head is not past it).
                return false; // full
            }

            // sequence > expected: another producer took the position; reread the tail.
        }
    }
}
