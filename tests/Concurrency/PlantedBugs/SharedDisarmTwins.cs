using LockFree.Backpressure;
using LockFree.Internal;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: planted bugs in the disarm of a side played by many threads (ParkingGate.TryDisarmShared, see "Disarming a
// side played by many threads" in src/LockFree/Backpressure/ParkingGate.cs). Each wraps the real gate and replaces
// only the step it plants. tests/Concurrency/Backpressure/SharedDisarmTests.cs shows the exploration finds each and
// passes the real gate.

/// <summary>
/// Planted: the disarm re-arms when it finds a registration but tells its caller nothing, so nobody wakes the waiters
/// (the one-signaller disarm's rule, which is right there because no other signaller runs in the window). Another
/// signaller that published and read the bit clear between the clear and the re-arm asked nothing: a waiter that
/// registered and rechecked before that publish sleeps beside its item.
/// </summary>
internal struct SilentReArmSharedGate<TAtomics> : ISharedArmingGate<TAtomics>
    where TAtomics : struct, IAtomics
{
    private ParkingGate<TAtomics> _gate;

    public void RegisterArming(ref StickyBits<TAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

    public void Unregister() => _gate.Unregister();

    public bool HasWaitersAfterLockedPublish() => _gate.HasWaitersAfterLockedPublish();

    public bool TryDisarmShared(ref StickyBits<TAtomics> bits, long armedBit)
    {
        _gate.TryDisarmShared(ref bits, armedBit);
        return true; // planted: a re-arm is not reported, so the caller wakes nobody
    }
}

/// <summary>
/// Planted: the disarm clears the bit without reading the count afterwards. A waiter that counted itself and read the
/// bit still set (so it ran no barrier and set nothing) is left with no signaller asking.
/// </summary>
internal struct BlindSharedDisarmGate<TAtomics> : ISharedArmingGate<TAtomics>
    where TAtomics : struct, IAtomics
{
    private ParkingGate<TAtomics> _gate;

    public void RegisterArming(ref StickyBits<TAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

    public void Unregister() => _gate.Unregister();

    public bool HasWaitersAfterLockedPublish() => _gate.HasWaitersAfterLockedPublish();

    public bool TryDisarmShared(ref StickyBits<TAtomics> bits, long armedBit)
    {
        bits.Clear(armedBit); // planted: no read of the count after the clear, no re-arm
        return true;
    }
}
