using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Queues;

// The single-item dequeue of SequencedRing (see the design note in SequencedRing.cs): the inlined fast path,
// TryDequeueWithoutPolls, the slow path that tells empty from a slot still in flight, with the boundary polls, and
// TryPeek (single consumer).
internal partial struct SequencedRing<T, TAtomics, TProducers, TConsumers>
    where TAtomics : struct, IAtomics
    where TProducers : struct, IRolePolicy
    where TConsumers : struct, IRolePolicy
{
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
            else if (sequence < expected && AnswersAtUnreadySlot(consumer: true, position, ref polls, ref spinner))
            {
                // Not yet published, and no producer has claimed the position (the tail is not past it).
                item = default;
                return false; // empty
            }

            // sequence > expected: another consumer took the position; reread the head.
        }
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

            if (AnswersAtUnreadySlot(consumer: true, position, ref polls, ref spinner))
            {
                item = default;
                return false; // empty
            }
        }
    }
}
