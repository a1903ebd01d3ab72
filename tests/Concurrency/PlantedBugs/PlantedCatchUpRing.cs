using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Queues;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: a deliberately small MPSC ring with per-slot sequence numbers, written for the planted-bug tests (not a copy
// of src): producers claim a position by CAS on the tail, write the item, then publish the slot's sequence (2p + 1)
// with a release store; the single consumer takes a published slot, clears it, releases it to the producer one lap
// ahead (2(p + capacity)) and then moves the head. A producer answers full when tail - head >= capacity (the consumer
// releases the slot before it moves the head, so room seen in the head means a released slot). The consumer, meeting
// an unpublished slot, makes one catch-up pause (IAtomics.Pause, as SequencedRing's first boundary poll) and re-reads
// the slot; still unpublished, it reads the tail: empty when no producer has claimed the position, otherwise it waits
// for that producer's publish.
// Planted bug:
//   TrustCatchUpPause: after the pause, a slot still unpublished is taken as "empty" without reading the tail (the
//     tempting shortcut: "the producer had a whole pause to publish"). Wrong when a producer has claimed the position
//     and not yet published while a later producer has already published and returned: that item was in the queue for
//     the whole call, so only linearizability (or the exactness check) can see it; nothing is lost.
// With multiConsumer (session 5, the twin of MPMC's consumers, which now pause and poll too) consumers claim a published
// slot by CAS on the head before they take it; the catch-up pause and the empty answer are the same.
// With pollingProducers as well (the twin of MPMC's producers, which poll at the full end as SPMC's producer does) a
// producer gates on its slot instead of the head, as SequencedRing does when the consumers are many: a slot still
// holding position - capacity (not yet released) sends it to one catch-up pause and a re-read of the slot; still not
// released, it reads the head: full when no consumer has claimed position - capacity, otherwise it waits for that
// consumer's release.
// Planted bug (producer side):
//   TrustFullPause: after the pause, a slot still not released is taken as "full" without reading the head. Wrong when a
//     consumer has claimed position - capacity and not yet released it while a later consumer has already taken the next
//     item and returned: the first take is then pinned before the second, so the ring had room for the whole call.
internal enum CatchUpBug
{
    None,
    TrustCatchUpPause,
    TrustFullPause,
}

internal sealed class PlantedCatchUpRing<TAtomics>(int capacity, CatchUpBug bug, bool multiConsumer = false, bool pollingProducers = false)
    where TAtomics : struct, IAtomics
{
    private readonly object?[] _items = new object?[capacity];
    private readonly long[] _sequences = Enumerable.Range(0, capacity).Select(i => 2L * i).ToArray();
    private long _tail;
    private long _head;

    public int Capacity => capacity;

    public bool TryEnqueue(object item)
    {
        if (pollingProducers)
        {
            return TryEnqueuePolling(item);
        }

        var spinner = default(SpinWait);
        while (true)
        {
            long tail = TAtomics.LoadAcquire(ref _tail); // acquire: a start point for the claim
            if (tail - TAtomics.LoadAcquire(ref _head) >= capacity) // acquire: pairs with the consumer's release of the head
            {
                return false; // full
            }

            long sequence = TAtomics.LoadAcquire(ref _sequences[tail % capacity]); // acquire: pairs with the consumer's release of the slot
            if (sequence != 2 * tail)
            {
                TAtomics.SpinOnce(ref spinner); // another producer took the position (or its consumer is mid-release)
                continue;
            }

            if (TAtomics.CompareExchange(ref _tail, tail + 1, tail) != tail) // full fence: the claim
            {
                continue;
            }

            TAtomics.StorePlain(ref _items[tail % capacity], item); // plain: claimed, published below
            TAtomics.StoreRelease(ref _sequences[tail % capacity], (2 * tail) + 1); // release: publishes the item
            return true;
        }
    }

    /// <summary>
    /// Producers gating on their slot (many consumers): claim a released slot by CAS on the tail; a slot not yet released
    /// gets the catch-up pause, a re-read, and then the head decides (see the design note).
    /// </summary>
    private bool TryEnqueuePolling(object item)
    {
        var spinner = default(SpinWait);
        bool paused = false;
        while (true)
        {
            long tail = TAtomics.LoadAcquire(ref _tail); // acquire: a start point for the claim
            long sequence = TAtomics.LoadAcquire(ref _sequences[tail % capacity]); // acquire: pairs with the consumer's release of the slot
            if (sequence == 2 * tail)
            {
                if (TAtomics.CompareExchange(ref _tail, tail + 1, tail) != tail) // full fence: the claim
                {
                    continue;
                }

                TAtomics.StorePlain(ref _items[tail % capacity], item); // plain: claimed, published below
                TAtomics.StoreRelease(ref _sequences[tail % capacity], (2 * tail) + 1); // release: publishes the item
                return true;
            }

            if (sequence > 2 * tail)
            {
                continue; // another producer took the position: reread the tail
            }

            if (FullAfterCatchUp(tail, ref paused, ref spinner))
            {
                return false;
            }
        }
    }

    /// <summary>
    /// The tail slot is not released: the first time, the catch-up pause (then the caller re-reads the slot); after it,
    /// true for "full" when the head says so (or at once with the planted bug), else a spin while its consumer releases.
    /// </summary>
    private bool FullAfterCatchUp(long tail, ref bool paused, ref SpinWait spinner)
    {
        if (!paused)
        {
            paused = true;
            TAtomics.Pause(1); // the catch-up pause, then re-read the slot
            return false;
        }

        if (bug == CatchUpBug.TrustFullPause)
        {
            return true; // PLANTED BUG (TrustFullPause): "full" without reading the head
        }

        if (tail - TAtomics.LoadAcquire(ref _head) >= capacity) // acquire: the read where a full answer linearizes
        {
            return true; // full
        }

        TAtomics.SpinOnce(ref spinner); // claimed, not yet released: wait for its consumer
        return false;
    }

    public bool TryDequeue([MaybeNullWhen(false)] out object item)
    {
        if (multiConsumer)
        {
            return TryDequeueShared(out item);
        }

        if (!TryPeek(out item))
        {
            return false;
        }

        long head = _head; // plain: only the consumer writes the head
        TAtomics.StorePlain(ref _items[head % capacity], null); // plain: ours until the release below
        TAtomics.StoreRelease(ref _sequences[head % capacity], 2 * (head + capacity)); // release: frees the slot
        TAtomics.StoreRelease(ref _head, head + 1); // release: opens the producers' gate after the slot release
        return true;
    }

    /// <summary>Many consumers: claim a published slot by CAS on the head, with the same pause and empty answer as <see cref="TryPeek"/>.</summary>
    private bool TryDequeueShared([MaybeNullWhen(false)] out object item)
    {
        var spinner = default(SpinWait);
        bool paused = false;
        while (true)
        {
            long head = TAtomics.LoadAcquire(ref _head); // acquire: a start point for the claim
            long sequence = TAtomics.LoadAcquire(ref _sequences[head % capacity]); // acquire: pairs with the publish
            if (sequence == (2 * head) + 1)
            {
                if (TAtomics.CompareExchange(ref _head, head + 1, head) != head) // full fence: the claim
                {
                    continue;
                }

                item = TAtomics.LoadPlain(ref _items[head % capacity])!; // plain: ours since the claim
                TAtomics.StorePlain(ref _items[head % capacity], null); // plain: ours until the release below
                TAtomics.StoreRelease(ref _sequences[head % capacity], 2 * (head + capacity)); // release: frees the slot
                return true;
            }

            if (sequence > (2 * head) + 1)
            {
                continue; // another consumer took the position: reread the head
            }

            if (EmptyAfterCatchUp(head, ref paused, ref spinner))
            {
                item = null;
                return false;
            }
        }
    }

    public bool TryPeek([MaybeNullWhen(false)] out object item)
    {
        long head = _head; // plain: only the consumer writes the head
        var spinner = default(SpinWait);
        bool paused = false;
        while (true)
        {
            if (TAtomics.LoadAcquire(ref _sequences[head % capacity]) == (2 * head) + 1) // acquire: pairs with the publish
            {
                item = TAtomics.LoadPlain(ref _items[head % capacity])!;
                return true;
            }

            if (EmptyAfterCatchUp(head, ref paused, ref spinner))
            {
                item = null;
                return false;
            }
        }
    }

    /// <summary>
    /// The head slot is not published: the first time, the catch-up pause (then the caller re-reads the slot); after
    /// it, true for "empty" when tail says so (or at once with the planted bug), else a spin while its producer writes.
    /// </summary>
    private bool EmptyAfterCatchUp(long head, ref bool paused, ref SpinWait spinner)
    {
        if (!paused)
        {
            paused = true;
            TAtomics.Pause(1); // the catch-up pause, then re-read the slot
            return false;
        }

        if (bug == CatchUpBug.TrustCatchUpPause)
        {
            return true; // PLANTED BUG (TrustCatchUpPause): "empty" without reading the tail
        }

        if (TAtomics.LoadAcquire(ref _tail) <= head) // acquire: the read where an empty answer linearizes
        {
            return true; // empty
        }

        TAtomics.SpinOnce(ref spinner); // claimed, not yet published: wait for its producer
        return false;
    }
}

/// <summary>
/// <see cref="PlantedCatchUpRing{TAtomics}"/> behind the test queue face. Its batches move at most one item (see
/// <see cref="PlantedRingBox"/>).
/// </summary>
internal sealed class PlantedCatchUpRingBox(int capacity, CatchUpBug bug, bool multiConsumer = false, bool pollingProducers = false) : ITestQueue
{
    private readonly PlantedCatchUpRing<TestAtomics> _ring = new(capacity, bug, multiConsumer, pollingProducers);

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
