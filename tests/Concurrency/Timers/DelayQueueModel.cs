using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Timers;

namespace LockFree.Tests.Concurrency.Timers;

// Design: DelayQueue<T>'s TryEnqueue / TryDequeue (see its design comment) re-expressed over the test atomics so
// the controlled scheduler can interleave them: the bounded count reserved by CAS (BoundedCount's loop), the real
// MPSC inbox engine (SequencedRing<Multi, Single> over TestAtomics), the real DelayHeap under the consumer lock
// (a CAS spin lock through the seam here, a Monitor in the queue: the same mutual exclusion, and a scheduling
// point where the Monitor would block), the drain's "root unknown" marker and the lock-free "nothing due" fast
// path (inbox empty, then the published root). The clock is fixed (a due time is now + delay, items with delay 0
// are due, the rest never are during the run), as DelayQueueSpec requires of histories with enqueues in flight.
// The async paths (waiters, wake-ups) are not part of it: their handshakes have their own models
// (DelayWakeupProtocol) and the real-thread tests.
//
// Planted: the drain does not publish "root unknown" before it moves items out of the inbox, so a concurrent
// TryDequeue that sees the inbox emptied by the drain answers "nothing due" from the stale root (the bug the
// marker exists to prevent).
internal sealed class DelayQueueModel
{
    private const long Now = 1_000;
    private const long Free = 0;
    private const long Held = 1;

    private readonly int _capacity;
    private readonly bool _plantedNoMarker;
    private readonly DelayHeap<int> _heap;
    private SequencedRing<DelayEntry<int>, TestAtomics, MultiRole, SingleRole> _inbox;
    private long _count;
    private long _lock;
    private long _rootDue = long.MaxValue;
    private long _sequence; // under the lock

    public DelayQueueModel(int capacity, bool plantedNoMarker)
    {
        _capacity = capacity;
        _plantedNoMarker = plantedNoMarker;
        _heap = new DelayHeap<int>(capacity);
        _inbox = new(capacity);
    }

    public bool TryEnqueue(int value, long delay)
    {
        long current = TestAtomics.LoadAcquire(ref _count);
        while (true)
        {
            if (current >= _capacity)
            {
                return false; // the Reject policy
            }

            long seen = TestAtomics.CompareExchange(ref _count, current + 1, current);
            if (seen == current)
            {
                break;
            }

            current = seen;
        }

        if (!_inbox.TryEnqueue(new DelayEntry<int> { Due = Now + delay, Sequence = Now, Item = value }))
        {
            throw new InvalidOperationException("the inbox was full after a reservation");
        }

        return true;
    }

    public bool TryDequeue(out int value)
    {
        if (_inbox.IsEmpty)
        {
            long rootDue = TestAtomics.LoadAcquire(ref _rootDue);
            if (rootDue == long.MaxValue || rootDue > Now)
            {
                value = 0;
                return false; // lock-free "nothing due"
            }
        }

        bool taken;
        Enter();
        try
        {
            Drain();
            taken = _heap.Count > 0 && _heap.PeekDue <= Now;
            value = taken ? _heap.Pop() : 0;
            if (taken)
            {
                PublishRoot();
            }
        }
        finally
        {
            Exit();
        }

        if (taken)
        {
            TestAtomics.Add(ref _count, -1); // after the item left the heap (DelayQueue.AfterTake)
        }

        return taken;
    }

    private void Drain()
    {
        if (_inbox.IsEmpty)
        {
            return;
        }

        if (!_plantedNoMarker)
        {
            TestAtomics.StoreRelease(ref _rootDue, long.MinValue); // "root unknown" before the first item leaves the inbox
        }

        while (_inbox.TryDequeue(out DelayEntry<int> entry))
        {
            _heap.Push(entry.Due, _sequence++, entry.Item);
        }

        PublishRoot();
    }

    private void PublishRoot() => TestAtomics.StoreRelease(ref _rootDue, _heap.Count == 0 ? long.MaxValue : _heap.PeekDue);

    private void Enter()
    {
        var spinner = default(SpinWait);
        while (TestAtomics.CompareExchange(ref _lock, Held, Free) != Free)
        {
            TestAtomics.SpinOnce(ref spinner);
        }
    }

    private void Exit() => TestAtomics.StoreRelease(ref _lock, Free);
}
