using LockFree.Backpressure;
using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// The arming face of <see cref="ParkingGate{TAtomics}"/> as the disarm and re-arm models drive it
/// (<see cref="DisarmTests"/>, <see cref="ReArmWindowTests"/>), with the real gate and each planted twin behind it, so
/// a model is written once and instantiated per gate (a struct type argument: no virtual calls in the explored code).
/// </summary>
internal static class ArmingGates
{
    /// <summary>The gate under test, as the scenarios drive it.</summary>
    internal interface IGate
    {
        void RegisterArming(ref StickyBits<TestAtomics> bits, long armedBit);

        void Unregister();

        bool HasWaiters();

        bool TryDisarm(ref StickyBits<TestAtomics> bits, long armedBit);
    }

    /// <summary>The real gate.</summary>
    internal struct RealGate : IGate
    {
        private ParkingGate<TestAtomics> _gate;

        public void RegisterArming(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

        public void Unregister() => _gate.Unregister();

        public bool HasWaiters() => _gate.HasWaiters();

        public bool TryDisarm(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.TryDisarm(ref bits, armedBit);
    }

    /// <summary>Planted: bit before count.</summary>
    internal struct BitBeforeCount : IGate
    {
        private BitBeforeCountGate<TestAtomics> _gate;

        public void RegisterArming(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

        public void Unregister() => _gate.Unregister();

        public bool HasWaiters() => _gate.HasWaiters();

        public bool TryDisarm(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.TryDisarm(ref bits, armedBit);
    }

    /// <summary>Planted: blind disarm.</summary>
    internal struct BlindDisarm : IGate
    {
        private BlindDisarmGate<TestAtomics> _gate;

        public void RegisterArming(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

        public void Unregister() => _gate.Unregister();

        public bool HasWaiters() => _gate.HasWaiters();

        public bool TryDisarm(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.TryDisarm(ref bits, armedBit);
    }

    /// <summary>Planted: the disarm keeps the stale flag.</summary>
    internal struct StaleFlag : IGate
    {
        private StaleFlagDisarmGate<TestAtomics> _gate;

        public void RegisterArming(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.RegisterArming(ref bits, armedBit);

        public void Unregister() => _gate.Unregister();

        public bool HasWaiters() => _gate.HasWaiters();

        public bool TryDisarm(ref StickyBits<TestAtomics> bits, long armedBit) => _gate.TryDisarm(ref bits, armedBit);
    }
}
