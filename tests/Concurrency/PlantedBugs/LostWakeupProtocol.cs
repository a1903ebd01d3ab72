using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: planted bug (e), a lost wake-up in a flag + event protocol. The waiter must take its event-count
// ticket (register as a waiter) before it checks the flag, so a notification between the check and the wait
// is not lost (the eventcount discipline; the same reason futex waits pass the expected value). The planted
// variant checks the flag first and registers afterwards: if the notifier raises the flag and notifies in
// between, the waiter sleeps forever, and the controlled scheduler reports a deadlock.
internal sealed class LostWakeupProtocol<TAtomics>(bool planted)
    where TAtomics : struct, IAtomics
{
    private readonly ControlledEventCount _event = new();
    private long _flag;

    public bool Woke { get; private set; }

    public void Waiter()
    {
        while (TAtomics.LoadAcquire(ref _flag) == 0) // acquire: pairs with the notifier's release
        {
            long ticket = _event.PrepareWait();
            if (!planted && TAtomics.LoadAcquire(ref _flag) != 0) // re-check after registering: nothing can be lost now
            {
                break;
            }

            // PLANTED BUG (planted == true): the ticket was taken after the only check, so a NotifyAll between that
            // check and PrepareWait is missed.
            _event.CommitWait(ticket);
        }

        Woke = true;
    }

    public void Notifier()
    {
        TAtomics.StoreRelease(ref _flag, 1); // release: the condition
        _event.NotifyAll();
    }
}
