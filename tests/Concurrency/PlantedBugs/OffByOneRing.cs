using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Queues;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: planted bug (d), an off-by-one full check. A deliberately small Lamport SPSC ring written for this
// test (not a copy of src): head/tail unbounded positions, slot = position % capacity, release on the index
// after the slot write, acquire before the slot read. The planted line tests `tail - head > capacity` where
// the correct test is `>=`, so a full ring accepts one more item, which overwrites the oldest unread slot.
// The queue checks (exactly-once / FIFO / capacity) must catch it.
internal sealed class OffByOneRing<TAtomics>(int capacity, bool planted)
    where TAtomics : struct, IAtomics
{
    private readonly object?[] _slots = new object?[capacity];
    private long _head;
    private long _tail;

    public int Capacity => capacity;

    public bool TryEnqueue(object item)
    {
        long tail = _tail; // plain: only the producer writes _tail
        long head = TAtomics.LoadAcquire(ref _head); // acquire: pairs with the consumer's release of _head
        bool full = planted ? tail - head > capacity : tail - head >= capacity; // PLANTED BUG: `>` should be `>=`
        if (full)
        {
            return false;
        }

        TAtomics.StorePlain(ref _slots[tail % capacity], item); // plain: published by the release below
        TAtomics.StoreRelease(ref _tail, tail + 1); // release: publishes the slot
        return true;
    }

    public bool TryDequeue([MaybeNullWhen(false)] out object item)
    {
        if (!TryPeek(out item))
        {
            return false;
        }

        long head = _head; // plain: only the consumer writes _head
        TAtomics.StorePlain(ref _slots[head % capacity], null); // plain: ours until the release below
        TAtomics.StoreRelease(ref _head, head + 1); // release: frees the slot
        return true;
    }

    public bool TryPeek([MaybeNullWhen(false)] out object item)
    {
        long head = _head; // plain: only the consumer writes _head
        if (TAtomics.LoadAcquire(ref _tail) <= head) // acquire: pairs with the producer's release of _tail
        {
            item = null;
            return false;
        }

        item = TAtomics.LoadPlain(ref _slots[head % capacity])!;
        return true;
    }
}

/// <summary><see cref="OffByOneRing{TAtomics}"/> (planted) behind the test queue face; batches are loops of single calls.</summary>
internal sealed class OffByOneBox(int capacity) : ITestQueue
{
    private readonly OffByOneRing<TestAtomics> _ring = new(capacity, planted: true);

    public int Capacity => _ring.Capacity;

    public bool TryEnqueue(object item) => _ring.TryEnqueue(item);

    public bool TryDequeue([MaybeNullWhen(false)] out object item) => _ring.TryDequeue(out item);

    public bool TryPeek([MaybeNullWhen(false)] out object item) => _ring.TryPeek(out item);

    public int TryEnqueueMany(ReadOnlySpan<object> items)
    {
        int n = 0;
        while (n < items.Length && _ring.TryEnqueue(items[n]))
        {
            n++;
        }

        return n;
    }

    public int TryDequeueMany(Span<object> destination)
    {
        int n = 0;
        while (n < destination.Length && _ring.TryDequeue(out object? item))
        {
            destination[n++] = item;
        }

        return n;
    }
}

