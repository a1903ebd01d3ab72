using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Timers;

/// <summary>
/// The tick and flags every Schedule reads, padded onto their own cache line (written by the driver a few times
/// per pass, so they share a line with nothing producers CAS). Non-generic: generic types cannot use explicit layout.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 2 * CacheLine.Size)]
internal struct WheelClock
{
    /// <summary>The wheel's current tick. Release-stored by the driver; acquire-loaded by Schedule.</summary>
    [FieldOffset(CacheLine.Size)]
    public long Tick;

    /// <summary>Stale (1: the driver sleeps past the next tick or runs callbacks) | Disposed (2); changed by CAS.</summary>
    [FieldOffset(CacheLine.Size + sizeof(long))]
    public long Flags;
}
