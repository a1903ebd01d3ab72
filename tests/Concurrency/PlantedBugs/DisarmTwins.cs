using LockFree.Backpressure;
using LockFree.Internal;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: planted bugs, the arming and disarming of src/LockFree/Backpressure/ParkingGate.cs as they would be with
// one step of the protocol wrong. Each wraps the real gate and replaces only the step it plants, so a failure is that
// step's. tests/Concurrency/Backpressure/DisarmTests.cs shows the exploration finds each and passes the real gate.

/// <summary>
/// Planted: the registrant sets the armed bit BEFORE it counts itself (the order the buffer used while the bit was
/// sticky). A disarm that runs between the two reads no waiter and clears the bit the registrant already trusts; the
/// registrant sleeps, and the signaller, reading the bit clear, never asks.
/// </summary>
internal struct BitBeforeCountGate<TAtomics> : IArmingGate<TAtomics>
    where TAtomics : struct, IAtomics
{
    private ParkingGate<TAtomics> _gate;

    public long Waiters => _gate.Waiters;

    public void RegisterArming(ref StickyBits<TAtomics> bits, long armedBit)
    {
        bits.SetIfClear(armedBit); // planted: the bit before the count, and never looked at again
        _gate.Register();
    }

    public void Unregister() => _gate.Unregister();

    public bool HasWaiters() => _gate.HasWaiters();

    public bool TryDisarm(ref StickyBits<TAtomics> bits, long armedBit) => _gate.TryDisarm(ref bits, armedBit);
}

/// <summary>
/// Planted: the disarm clears the armed bit without reading the count afterwards. A registrant that counted itself
/// and read the bit still set (so it neither sets it nor runs a barrier) is left with no signaller asking.
/// </summary>
internal struct BlindDisarmGate<TAtomics> : IArmingGate<TAtomics>
    where TAtomics : struct, IAtomics
{
    private ParkingGate<TAtomics> _gate;

    public long Waiters => _gate.Waiters;

    public void RegisterArming(ref StickyBits<TAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

    public void Unregister() => _gate.Unregister();

    public bool HasWaiters() => _gate.HasWaiters();

    public bool TryDisarm(ref StickyBits<TAtomics> bits, long armedBit)
    {
        bits.Clear(armedBit); // planted: no read of the count after the clear, no re-arm
        return true;
    }
}

/// <summary>
/// Planted: the disarm leaves the gate's flag as it was (BarrierDone from the earlier park) instead of storing Never
/// before its clear. The first parker after the disarm finds the bit clear, sets it and runs its barrier; a second
/// registrant that finds the bit already set trusts the stale BarrierDone, skips its own barrier and rechecks before
/// the first one's barrier flushed a signaller that read the bit clear (the first-park window, once per disarm).
/// </summary>
internal struct StaleFlagDisarmGate<TAtomics> : IArmingGate<TAtomics>
    where TAtomics : struct, IAtomics
{
    private ParkingGate<TAtomics> _gate;

    public long Waiters => _gate.Waiters;

    public void RegisterArming(ref StickyBits<TAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

    public void Unregister() => _gate.Unregister();

    public bool HasWaiters() => _gate.HasWaiters();

    public bool TryDisarm(ref StickyBits<TAtomics> bits, long armedBit)
    {
        bits.Clear(armedBit); // planted: no store of Never before the clear
        if (_gate.Waiters == 0)
        {
            return true;
        }

        bits.Set(armedBit);
        return false;
    }
}
