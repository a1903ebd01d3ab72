using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.Timers;

// Design: a model of DelayQueue<T>'s admission (see its design comment) on the real MPSC inbox engine
// (SequencedRing<Multi, Single> over TestAtomics): producers reserve a unit of a count bounded by the capacity
// (BoundedCount's CAS loop, through the seam), then enqueue into an inbox whose capacity equals the bound; the
// consumer (the lock holder: one logical thread stands for the sequence of holders) dequeues from the inbox and
// only then returns the unit. The claim under test: after a reservation the inbox is never full, so an accepted
// enqueue never spins on the inbox. The planted variant returns the unit before it takes the item from the inbox.
internal sealed class DelayAdmissionProtocol
{
    public const int Capacity = 2;

    private readonly bool _plantedEarlyRelease;
    private readonly int _itemsPerProducer;
    private readonly int _producers;
    private SequencedRing<object, TestAtomics, MultiRole, SingleRole> _inbox = new(Capacity);
    private long _count;

    public DelayAdmissionProtocol(bool plantedEarlyRelease, int producers, int itemsPerProducer)
    {
        _plantedEarlyRelease = plantedEarlyRelease;
        _producers = producers;
        _itemsPerProducer = itemsPerProducer;
    }

    public List<int> Received { get; } = new();

    public void Producer(int id)
    {
        for (int i = 0; i < _itemsPerProducer; i++)
        {
            var spinner = default(SpinWait);
            while (!TryReserve())
            {
                TestAtomics.SpinOnce(ref spinner); // full: the Wait policy, polled
            }

            if (!_inbox.TryEnqueue((id * 100) + i))
            {
                throw new InvalidOperationException("the inbox was full after a successful reservation");
            }
        }
    }

    public void Consumer()
    {
        for (int taken = 0; taken < _producers * _itemsPerProducer; taken++)
        {
            var spinner = default(SpinWait);
            if (_plantedEarlyRelease)
            {
                while (_inbox.IsEmpty)
                {
                    TestAtomics.SpinOnce(ref spinner);
                }

                TestAtomics.Add(ref _count, -1); // PLANTED: the unit goes back while its item still occupies the inbox
            }

            object? item;
            while (!_inbox.TryDequeue(out item))
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            Received.Add((int)item);
            if (!_plantedEarlyRelease)
            {
                TestAtomics.Add(ref _count, -1); // after the item left the inbox (DelayQueue.Release after TryTake)
            }
        }
    }

    public void Check()
    {
        var expected = Enumerable.Range(0, _producers).SelectMany(p => Enumerable.Range(0, _itemsPerProducer).Select(i => (p * 100) + i)).Order();
        if (!Received.Order().SequenceEqual(expected))
        {
            throw new InvalidOperationException($"items lost or duplicated: got [{string.Join(", ", Received)}]");
        }
    }

    /// <summary>BoundedCount.TryReserve, through the seam.</summary>
    private bool TryReserve()
    {
        long current = TestAtomics.LoadAcquire(ref _count);
        while (current < Capacity)
        {
            long seen = TestAtomics.CompareExchange(ref _count, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }
}
