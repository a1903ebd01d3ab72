using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Timers;

using LockFree.Tests.Concurrency.Timers;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: a copy of DelayQueueCore's TryEnqueue / TryDequeue paths (src/LockFree/Timers/DelayQueueCore.cs, as
// DelayQueue<T> calls them) over the test atomics, with one bug planted: the drain does not publish "root unknown"
// before it moves items out of the inbox, so a concurrent TryDequeue that sees the inbox emptied by the drain
// answers "nothing due" from the stale root (the bug the marker exists to prevent). The library has no test hooks,
// so the planted variant is a copy, as PlantedRing is of the rings. The clock is fixed (due = now + delay).
internal sealed class PlantedDelayQueue : IDelayQueueUnderTest
{
    private const long Now = 1_000;
    private const long Free = 0;
    private const long Held = 1;

    private readonly int _capacity;
    private readonly DelayHeap<int> _heap;
    private SequencedRing<DelayEntry<int>, TestAtomics, MultiRole, SingleRole> _inbox;
    private long _count;
    private long _lock;
    private long _rootDue = long.MaxValue;
    private long _sequence; // under the lock

    public PlantedDelayQueue(int capacity)
    {
        _capacity = capacity;
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

    public bool TryDequeue(bool parking, out int value) // parking: not modelled (the polling path is where the bug is)
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

        // PLANTED: no "root unknown" (StoreRelease(ref _rootDue, long.MinValue)) before the first item leaves the inbox.
        while (_inbox.TryDequeueWithoutPolls(out DelayEntry<int> entry)) // as DelayQueueCore.DrainInbox
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
