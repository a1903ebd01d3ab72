using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.Queues;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: a deliberately small SPSC ring with slot-borne readiness, written for the planted-bug tests (not a copy of
// src; the protocol of SpscRing at its most eager): each slot has a sequence word, p + 1 once the item of position p is
// in it; the producer writes the item, releases the sequence, then releases tail; a batch releases its sequences back
// to front. The consumer gates on the sequence of its head slot unless the head is below its known-published bound,
// and on every take beyond the bound it acquires tail and raises the bound to it. Planted bugs:
//   FrontToBackBatch: the batch releases its sequences front to back, so a consumer can take the batch's first item
//     and then find the queue empty while the rest of the batch is in it. Nothing is lost or reordered: only the
//     linearizability (exactness) check can see it.
//   BoundPastTail: the consumer raises its bound to tail + 1, so it takes the next slot without checking its sequence,
//     before the producer has written it. The queue checks (a missing or repeated item) or the race detector (a plain
//     read of the item unordered with the producer's plain write) must catch it.
internal enum SlotRingBug
{
    None,
    FrontToBackBatch,
    BoundPastTail,
}

internal sealed class PlantedSlotRing<TAtomics>(int capacity, SlotRingBug bug)
    where TAtomics : struct, IAtomics
{
    private readonly object?[] _items = new object?[capacity];
    private readonly long[] _sequences = new long[capacity];
    private long _head;
    private long _tail;
    private long _bound; // consumer-private: positions below it are published

    public int Capacity => capacity;

    public bool TryEnqueue(object item) => TryEnqueueMany(new ReadOnlySpan<object>(ref item)) == 1;

    public int TryEnqueueMany(ReadOnlySpan<object> items)
    {
        long tail = _tail; // plain: only the producer writes _tail
        long head = TAtomics.LoadAcquire(ref _head); // acquire: pairs with the consumer's release of _head
        int count = (int)Math.Min(items.Length, capacity - (tail - head));
        if (count <= 0)
        {
            return 0;
        }

        for (int i = 0; i < count; i++)
        {
            TAtomics.StorePlain(ref _items[(tail + i) % capacity], items[i]); // plain: published by the sequence release below
        }

        for (int k = 0; k < count; k++)
        {
            int i = bug == SlotRingBug.FrontToBackBatch ? k : count - 1 - k; // PLANTED BUG (FrontToBackBatch): must be back to front
            TAtomics.StoreRelease(ref _sequences[(tail + i) % capacity], tail + i + 1); // release: publishes the item; pairs with the consumer's acquire
        }

        TAtomics.StoreRelease(ref _tail, tail + count); // release: counts the batch; pairs with the consumer's bound read
        return count;
    }

    public bool TryPeek([MaybeNullWhen(false)] out object item)
    {
        long head = _head; // plain: only the consumer writes _head
        if (!Published(head))
        {
            item = null;
            return false;
        }

        item = TAtomics.LoadPlain(ref _items[head % capacity])!; // plain: ordered after the acquire in Published
        return true;
    }

    public bool TryDequeue([MaybeNullWhen(false)] out object item)
    {
        if (!TryPeek(out item))
        {
            return false;
        }

        long head = _head; // plain: only the consumer writes _head
        TAtomics.StorePlain(ref _items[head % capacity], null); // plain: ours until the release below
        TAtomics.StoreRelease(ref _head, head + 1); // release: frees the slot
        return true;
    }

    public int TryDequeueMany(Span<object> destination)
    {
        long head = _head; // plain: only the consumer writes _head
        int count = 0;
        while (count < destination.Length && Published(head + count))
        {
            destination[count] = TAtomics.LoadPlain(ref _items[(head + count) % capacity])!; // plain: ordered after the acquire in Published
            TAtomics.StorePlain(ref _items[(head + count) % capacity], null); // plain: ours until the release below
            count++;
        }

        if (count > 0)
        {
            TAtomics.StoreRelease(ref _head, head + count); // release: frees the batch at once
        }

        return count;
    }

    private bool Published(long position)
    {
        if (position < _bound)
        {
            return true;
        }

        // acquire: pairs with the producer's release of the sequence.
        if (TAtomics.LoadAcquire(ref _sequences[position % capacity]) != position + 1)
        {
            return false;
        }

        long tail = TAtomics.LoadAcquire(ref _tail); // acquire: pairs with the producer's release of _tail
        _bound = bug == SlotRingBug.BoundPastTail ? tail + 1 : tail; // PLANTED BUG (BoundPastTail): the bound must be tail
        return true;
    }
}

/// <summary><see cref="PlantedSlotRing{TAtomics}"/> behind the test queue face.</summary>
internal sealed class PlantedSlotRingBox(int capacity, SlotRingBug bug) : ITestQueue
{
    private readonly PlantedSlotRing<TestAtomics> _ring = new(capacity, bug);

    public int Capacity => _ring.Capacity;

    public bool TryEnqueue(object item) => _ring.TryEnqueue(item);

    public bool TryDequeue([MaybeNullWhen(false)] out object item) => _ring.TryDequeue(out item);

    public bool TryPeek([MaybeNullWhen(false)] out object item) => _ring.TryPeek(out item);

    public int TryEnqueueMany(ReadOnlySpan<object> items) => _ring.TryEnqueueMany(items);

    public int TryDequeueMany(Span<object> destination) => _ring.TryDequeueMany(destination);
}
