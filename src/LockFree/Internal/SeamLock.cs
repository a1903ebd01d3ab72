using System.Runtime.CompilerServices;

namespace LockFree.Internal;

/// <summary>
/// A lock taken through the atomics seam (<see cref="IAtomics.EnterLock"/>): with <see cref="RealAtomics"/> the same
/// monitor and interrupt deferral as <see cref="InterruptDeferral.Lock"/>; under the controlled scheduler a lock it
/// controls. Use: <c>using (SeamLock&lt;TAtomics&gt;.Enter(gate)) { ... }</c>.
/// </summary>
/// <typeparam name="TAtomics">The atomics seam.</typeparam>
internal readonly ref struct SeamLock<TAtomics>
    where TAtomics : struct, IAtomics
{
    private readonly object _gate;
    private readonly bool _interrupted;

    private SeamLock(object gate, bool interrupted)
    {
        _gate = gate;
        _interrupted = interrupted;
    }

    /// <summary>Takes <paramref name="gate"/>'s lock.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SeamLock<TAtomics> Enter(object gate) => new(gate, TAtomics.EnterLock(gate));

    /// <summary>Releases the lock, then delivers an interrupt deferred while taking it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dispose() => TAtomics.ExitLock(_gate, _interrupted);
}
