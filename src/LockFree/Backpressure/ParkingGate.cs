using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: the lost-wake-up handshake of WaiterList, on its own so the controlled scheduler can run this exact
// code (tests/Concurrency/Backpressure/ParkingGateTests.cs) under a TSO store-buffer simulation.
//
// The protocol is Dekker's: a waiter registers (Waiters += 1), then rechecks its condition; a signaller publishes
// (its queue store), then reads Waiters. Each side needs store-load order between its store and its load, or
// both can read stale values (the signaller sees no waiter, the waiter sees no item) and the waiter sleeps on.
// The waiter's side is a full fence (the atomic add). The signaller's side is where the cost would land on
// every write, so it is paid as you go (asymmetric fences, as Linux membarrier): until the first waiter ever
// registers, signallers read Waiters with no fence, and that first waiter runs a process-wide barrier after
// raising EverParked, which forces every other thread's pending stores out (a signaller's publish included)
// before its recheck. From then on signallers fence before the read (a few ns) and waiters need only their own
// full fence. A signaller that still reads EverParked as 0 after the first waiter raised it ran its loads
// before that waiter's barrier reached its core, so the barrier covers it.
//
// Encoding: _waiters counts registered waiters; _everParked is 0 until the first registration, then 1 forever.
internal struct ParkingGate<TAtomics>
    where TAtomics : struct, IAtomics
{
    private long _waiters;
    private long _everParked;

    /// <summary>Registered waiters (a snapshot).</summary>
    public long Waiters => TAtomics.LoadAcquire(ref _waiters); // acquire: snapshot

    /// <summary>Whether a waiter has ever registered (signallers fence from then on).</summary>
    public readonly bool EverParked => Volatile.Read(ref Unsafe.AsRef(in _everParked)) != 0; // acquire: diagnostics only

    /// <summary>
    /// Waiter side: registers, with store-load order against the caller's recheck that follows. The first
    /// registration ever also runs the process-wide barrier that covers signallers that do not fence yet.
    /// </summary>
    public void Register()
    {
        TAtomics.Add(ref _waiters, 1); // full fence: our registration before the recheck; pairs with the signaller's fence
        if (TAtomics.LoadAcquire(ref _everParked) == 0) // acquire: whether signallers fence yet
        {
            TAtomics.StoreRelease(ref _everParked, 1); // release: from now on signallers fence
            TAtomics.ProcessWideBarrier(); // every other thread's pending stores (a publish) are visible before our recheck
        }
    }

    /// <summary>Waiter side: a registration ends (woken, cancelled, timed out, or abandoned after a successful recheck).</summary>
    public void Unregister() => TAtomics.Add(ref _waiters, -1); // full fence: the count only ever matters to the next signaller

    /// <summary>Signaller side, after its publish: whether any waiter is registered.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool HasWaiters()
    {
        if (TAtomics.LoadAcquire(ref _everParked) != 0) // acquire: set by the first waiter
        {
            TAtomics.FullFence(); // store-load: our publish before the read of the count; pairs with the waiter's add
        }

        return TAtomics.LoadAcquire(ref _waiters) != 0; // acquire: the registration count
    }
}
