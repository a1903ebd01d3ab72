using LockFree.Internal;

namespace LockFree.Queues;

// The batches of SequencedRing (see "Linearization" in the design note in SequencedRing.cs): TryEnqueueMany and
// TryDequeueMany claim a run of ready slots with one index update and publish (release) it back to front.
internal partial struct SequencedRing<T, TAtomics, TProducers, TConsumers>
    where TAtomics : struct, IAtomics
    where TProducers : struct, IRolePolicy
    where TConsumers : struct, IRolePolicy
{
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
                if (sequence < position << 1 && AnswersAtUnreadySlot(consumer: false, position, ref polls, ref spinner))
                {
                    return 0; // full
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
                if (sequence < ((position << 1) | 1) && AnswersAtUnreadySlot(consumer: true, position, ref polls, ref spinner))
                {
                    return 0; // empty
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
}
