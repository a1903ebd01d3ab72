using LockFree.Backpressure;
using LockFree.Internal;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: planted bug, the parking gate as it would be with a two-state first-park flag (Never / Raised): the
// first registrant raises the flag and runs the process-wide barrier, and every later registrant trusts a raised
// flag, even one whose barrier has not run yet. Otherwise the code of src/LockFree/Backpressure/ParkingGate.cs,
// line for line. A registrant racing the first park then rechecks before the barrier flushed a signaller that read
// the flag clear (and so neither fenced nor signalled), and sleeps beside an item the barrier was about to expose.
// tests/Concurrency/Backpressure/FirstParkWindowTests.cs shows the exploration finds that and passes the real gate.
internal struct TwoStateParkingGate<TAtomics> : IParkingGate
    where TAtomics : struct, IAtomics
{
    private const long Never = 0;
    private const long Raised = 1;

    private long _waiters;
    private long _everParked;

    public long Waiters => TAtomics.LoadAcquire(ref _waiters); // acquire: snapshot

    public bool EverParked => TAtomics.LoadAcquire(ref _everParked) != Never; // acquire: the test's cue

    public void Register()
    {
        TAtomics.Add(ref _waiters, 1); // full fence: our registration before the recheck
        if (TAtomics.LoadAcquire(ref _everParked) == Never) // planted: a raised flag is trusted before its barrier finished
        {
            TAtomics.StoreRelease(ref _everParked, Raised); // release: from now on signallers fence
            TAtomics.ProcessWideBarrier(); // every other thread's pending stores are visible before our recheck
        }
    }

    public void Unregister() => TAtomics.Add(ref _waiters, -1); // full fence

    public bool HasWaiters()
    {
        if (TAtomics.LoadAcquire(ref _everParked) != Never) // acquire: raised by the first waiter
        {
            TAtomics.FullFence(); // store-load: our publish before the read of the count
        }

        return TAtomics.LoadAcquire(ref _waiters) != 0; // acquire: the registration count
    }
}
