using LockFree.Internal;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>The variants of <see cref="DelayWakeupProtocol{TAtomics}"/>: the real one and two planted bugs.</summary>
public enum DelayWakeupVariant
{
    /// <summary>As <c>DelayQueue</c>: write the armed time, full fence, recheck the inbox.</summary>
    Correct,

    /// <summary>Planted: the reader arms and parks without rechecking the inbox (found under sequential consistency).</summary>
    NoRecheck,

    /// <summary>Planted: the reader rechecks but arms with a plain release store, no fence (found only with store buffers).</summary>
    NoFence,
}

// Design: a model of DelayQueue<T>'s second wake-up handshake (see its design comment), small enough to explore
// exhaustively: one producer, one parking reader, the shared words in a pinned array (the store-buffer simulation
// needs pinned locations), each access through the atomics seam.
//
// Start state: the reader's heap holds an item due at 10, the wake-up is still armed for 3 (for an item since taken
// by another reader), and the reader is linked as a waiter (the first handshake, done). The producer publishes an
// item due at 5 into the inbox, fences, and signals only when readers wait and 5 < armedFor. The reader drains the
// inbox, arms for its root, then (correct variant) fences and rechecks the inbox, re-arming for the new root.
//
// Safety (checked after both finish): the item due at 5 is either in the reader's heap with the wake-up armed no
// later than 5, or the producer signalled. Otherwise it would sleep until 10: a late wake-up, the bug a missing
// recheck or a missing fence causes.
internal sealed class DelayWakeupProtocol<TAtomics>(DelayWakeupVariant variant)
    where TAtomics : struct, IAtomics
{
    private const int Inbox = 0;    // due time of the one inbox item, 0 when empty
    private const int ArmedFor = 1; // when the wake-up fires
    private const int Waiters = 2;  // readers linked
    private const int ProducerDue = 5;

    private readonly long[] _shared = GC.AllocateArray<long>(3, pinned: true);
    private long _root = 10; // reader-local: the heap root's due time
    private bool _drained;

    public DelayWakeupProtocol()
        : this(DelayWakeupVariant.Correct)
    {
    }

    public bool Signalled { get; private set; }

    public void Setup()
    {
        _shared[ArmedFor] = 3;
        _shared[Waiters] = 1;
    }

    public void Producer()
    {
        TAtomics.StoreRelease(ref _shared[Inbox], ProducerDue); // publish
        TAtomics.FullFence(); // full fence: the publish before the reads below (HasWaiters' fence)
        // (Readers are known to wait: the first handshake, waiter count vs. publish, is WaiterList's and modelled elsewhere.)
        if (ProducerDue < TAtomics.LoadAcquire(ref _shared[ArmedFor]))
        {
            Signalled = true;
        }
    }

    public void Reader()
    {
        Drain();
        TAtomics.StoreRelease(ref _shared[ArmedFor], _root); // arm for the root
        if (variant == DelayWakeupVariant.NoRecheck)
        {
            Park();
            return; // PLANTED: parks without the recheck
        }

        if (variant == DelayWakeupVariant.Correct)
        {
            TAtomics.FullFence(); // full fence: the armed time before the recheck (the store and full fence in ArmWakeup)
        }

        if (TAtomics.LoadAcquire(ref _shared[Inbox]) != 0 && !_drained) // recheck: an item published meanwhile
        {
            Drain();
            TAtomics.StoreRelease(ref _shared[ArmedFor], _root);
            TAtomics.FullFence();
        }

        Park();
    }

    /// <summary>
    /// The reader parks: a scheduling point that does not drain its store buffer (a thread's end would), so the
    /// producer can run while the reader's armed time is still buffered.
    /// </summary>
    private void Park() => _ = TAtomics.LoadAcquire(ref _shared[Waiters]);

    public void Check()
    {
        bool covered = Signalled || (_drained && TAtomics.LoadAcquire(ref _shared[ArmedFor]) <= ProducerDue);
        if (!covered)
        {
            throw new InvalidOperationException(
                $"lost wake-up: the item due at {ProducerDue} waits for the wake-up armed at {_shared[ArmedFor]} (drained {_drained}, signalled {Signalled})");
        }
    }

    private void Drain()
    {
        long due = TAtomics.LoadAcquire(ref _shared[Inbox]);
        if (due != 0 && !_drained)
        {
            _drained = true;
            _root = Math.Min(_root, due);
        }
    }
}
