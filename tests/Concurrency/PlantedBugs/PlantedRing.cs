using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Queues;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: a deliberately small Lamport SPSC ring written for the planted-bug tests (not a copy of src):
// head/tail unbounded positions, slot = position % capacity, release on the index after the slot write,
// acquire before the slot read; the consumer keeps a cached copy of the tail and refreshes it when it looks
// empty. Planted bugs:
//   OffByOneFull (d): the full test is `tail - head > capacity` where it must be `>=`, so a full ring accepts
//     one more item, which overwrites the oldest unread slot. The exactly-once / FIFO checks must catch it.
//   SpuriousEmpty: every other time the cached tail says empty, the consumer answers empty without refreshing
//     it. No item is lost (the next call refreshes), so only the exactness check (no spurious full/empty) or
//     linearizability can catch it.
internal enum RingBug
{
    None,
    OffByOneFull,
    SpuriousEmpty,
}

internal sealed class PlantedRing<TAtomics>(int capacity, RingBug bug)
    where TAtomics : struct, IAtomics
{
    private readonly object?[] _slots = new object?[capacity];
    private long _head;
    private long _tail;
    private long _cachedTail; // consumer-private
    private bool _skipRefresh; // consumer-private

    public int Capacity => capacity;

    public bool TryEnqueue(object item)
    {
        long tail = _tail; // plain: only the producer writes _tail
        long head = TAtomics.LoadAcquire(ref _head); // acquire: pairs with the consumer's release of _head
        bool full = bug == RingBug.OffByOneFull ? tail - head > capacity : tail - head >= capacity; // PLANTED BUG (OffByOneFull): `>` should be `>=`
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
        if (head >= _cachedTail)
        {
            _skipRefresh = !_skipRefresh;
            if (bug == RingBug.SpuriousEmpty && _skipRefresh)
            {
                item = null;
                return false; // PLANTED BUG (SpuriousEmpty): answers from the stale cache
            }

            _cachedTail = TAtomics.LoadAcquire(ref _tail); // acquire: pairs with the producer's release of _tail
            if (head >= _cachedTail)
            {
                item = null;
                return false;
            }
        }

        item = TAtomics.LoadPlain(ref _slots[head % capacity])!;
        return true;
    }
}

/// <summary>
/// <see cref="PlantedRing{TAtomics}"/> behind the test queue face. Its batches move at most one item: a loop of
/// single calls is not one atomic operation (a consumer could see half of it), and one item is what the batch
/// contract (at least one whenever a single call would succeed) requires.
/// </summary>
internal sealed class PlantedRingBox(int capacity, RingBug bug) : ITestQueue
{
    private readonly PlantedRing<TestAtomics> _ring = new(capacity, bug);

    public int Capacity => _ring.Capacity;

    public bool TryEnqueue(object item) => _ring.TryEnqueue(item);

    public bool TryDequeue([MaybeNullWhen(false)] out object item) => _ring.TryDequeue(out item);

    public bool TryPeek([MaybeNullWhen(false)] out object item) => _ring.TryPeek(out item);

    public int TryEnqueueMany(ReadOnlySpan<object> items) => !items.IsEmpty && _ring.TryEnqueue(items[0]) ? 1 : 0;

    public int TryDequeueMany(Span<object> destination)
    {
        if (destination.IsEmpty || !_ring.TryDequeue(out object? item))
        {
            return 0;
        }

        destination[0] = item;
        return 1;
    }
}
