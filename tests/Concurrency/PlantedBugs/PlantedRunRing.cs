using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Queues;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: a deliberately small SPSC ring with run-borne readiness, written for the planted-bug tests (not a copy of src;
// the protocol of SpscRing since session 5 at its most eager): the producer publishes its items in runs (one enqueue, one
// run), writing the items, then release-storing the end of the run into the sequence word of the run's first slot, then
// release-storing tail. The other slots of a run keep their stale sequences, which are at most their own position. The
// consumer keeps a known-published bound: below it it takes items without reading a sequence; at or beyond it it reads
// the sequence of its head slot (an end beyond the head: the run is published, and the bound rises to that end; anything
// else: empty), and after every take beyond the bound it also reads tail and raises the bound to it, never lowering it.
// Planted bugs:
//   BoundGoesDown: the bound is set to the tail read even when that is below a run end the consumer already read (the
//     producer stores tail after the run's sequence). The consumer, now inside a run but at its bound, reads an interior
//     slot's stale sequence and answers empty while the rest of the run is in the queue: nothing is lost or reordered,
//     so only the exactness check or the linearizability checker can see it.
//   RunEndOffByOne: a sequence equal to the position counts as published (>= instead of >). A slot whose previous run
//     ended exactly at this position then reads as published a lap early: the consumer takes a slot the producer has not
//     written (a plain read racing the producer's plain write, or a missing or repeated item).
//   FrontToBackRuns: a batch is published as runs of one (each slot's sequence its position + 1), front to back, as a
//     batch split into pieces (a loop of single enqueues, or one run per piece of a batch that wraps the array) would be.
//     A consumer can then take the batch's first item and find the queue empty while the rest of the batch is in it.
//     Nothing is lost or reordered: only the linearizability (exactness) check can see it. (Ported from the retired
//     slot-sequence twin, whose batch stored one sequence per slot and had to store them back to front.)
//   BoundPastTail: the bound is raised to one past the tail read, so the consumer takes the slot at tail without reading
//     its sequence, before the producer has written it: the queue checks (a missing or repeated item) or the race
//     detector (a plain read of the item unordered with the producer's plain write) must catch it. (Ported from the
//     retired slot-sequence twin: the upper side of the bound's rule, where BoundGoesDown breaks the lower side.)
internal enum RunRingBug
{
    None,
    BoundGoesDown,
    RunEndOffByOne,
    FrontToBackRuns,
    BoundPastTail,
}

internal sealed class PlantedRunRing<TAtomics>(int capacity, RunRingBug bug)
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
            TAtomics.StorePlain(ref _items[(tail + i) % capacity], items[i]); // plain: published by the run's sequence below
        }

        if (bug == RunRingBug.FrontToBackRuns)
        {
            for (int i = 0; i < count; i++)
            {
                // PLANTED BUG (FrontToBackRuns): the batch as runs of one, front to back; it must be one run.
                TAtomics.StoreRelease(ref _sequences[(tail + i) % capacity], tail + i + 1); // release: publishes one item
            }
        }
        else
        {
            TAtomics.StoreRelease(ref _sequences[tail % capacity], tail + count); // release: publishes the run; pairs with the consumer's acquire
        }

        TAtomics.StoreRelease(ref _tail, tail + count); // release: counts the run; pairs with the consumer's bound read
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
        RaiseBound();
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
            RaiseBound();
        }

        return count;
    }

    private bool Published(long position)
    {
        if (position < _bound)
        {
            return true;
        }

        // acquire: pairs with the producer's release of the run's sequence.
        long end = TAtomics.LoadAcquire(ref _sequences[position % capacity]);
        bool published = bug == RunRingBug.RunEndOffByOne ? end >= position : end > position; // PLANTED BUG (RunEndOffByOne): must be >
        if (!published)
        {
            return false;
        }

        _bound = Math.Max(_bound, end);
        return true;
    }

    private void RaiseBound()
    {
        long tail = TAtomics.LoadAcquire(ref _tail); // acquire: pairs with the producer's release of _tail
        _bound = bug switch
        {
            RunRingBug.BoundGoesDown => tail, // PLANTED BUG (BoundGoesDown): must never go down
            RunRingBug.BoundPastTail => Math.Max(_bound, tail + 1), // PLANTED BUG (BoundPastTail): must be the tail read
            _ => Math.Max(_bound, tail),
        };
    }
}

/// <summary><see cref="PlantedRunRing{TAtomics}"/> behind the test queue face.</summary>
internal sealed class PlantedRunRingBox(int capacity, RunRingBug bug) : ITestQueue
{
    private readonly PlantedRunRing<TestAtomics> _ring = new(capacity, bug);

    public int Capacity => _ring.Capacity;

    public bool TryEnqueue(object item) => _ring.TryEnqueue(item);

    public bool TryDequeue([MaybeNullWhen(false)] out object item) => _ring.TryDequeue(out item);

    public bool TryPeek([MaybeNullWhen(false)] out object item) => _ring.TryPeek(out item);

    public int TryEnqueueMany(ReadOnlySpan<object> items) => _ring.TryEnqueueMany(items);

    public int TryDequeueMany(Span<object> destination) => _ring.TryDequeueMany(destination);
}
