using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree;

/// <summary>
/// The admission side of an adaptive limiter alone on a padded region: the in-flight count every acquire and
/// completion writes, and next to it the limit every acquire reads and the counters the same operations touch
/// (the line is owned by the writer at that point anyway).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 2 * CacheLine.Size)]
internal struct AdmissionCounters
{
    /// <summary>Requests admitted and not completed.</summary>
    [FieldOffset(CacheLine.Size)]
    public long InFlight;

    /// <summary>The current limit; written only by the window updater.</summary>
    [FieldOffset(CacheLine.Size + 8)]
    public long Limit;

    /// <summary>Requests admitted, ever.</summary>
    [FieldOffset(CacheLine.Size + 16)]
    public long Acquired;

    /// <summary>Requests refused, ever.</summary>
    [FieldOffset(CacheLine.Size + 24)]
    public long Rejected;
}

/// <summary>
/// The sample side of an adaptive limiter alone on a padded region: the open window's accumulators, written by
/// every completion, and the window's start and updater claim, read by every completion.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 2 * CacheLine.Size)]
internal struct SampleCounters
{
    /// <summary>Successful samples of the open window, packed: count in the low 24 bits, latency sum (100 ns units) above.</summary>
    [FieldOffset(CacheLine.Size)]
    public long Accumulator;

    /// <summary>Dropped samples of the open window.</summary>
    [FieldOffset(CacheLine.Size + 8)]
    public long Dropped;

    /// <summary>The most requests in flight seen at a completion in the open window.</summary>
    [FieldOffset(CacheLine.Size + 16)]
    public long MaxInFlight;

    /// <summary>Timestamp at which the open window started.</summary>
    [FieldOffset(CacheLine.Size + 24)]
    public long WindowStart;

    /// <summary>1 while a thread closes the window (the single-updater claim), else 0.</summary>
    [FieldOffset(CacheLine.Size + 32)]
    public long Updating;

    /// <summary>Successful samples of the open window moved out of <see cref="Accumulator"/> before it could overflow; only the claim holder touches it.</summary>
    [FieldOffset(CacheLine.Size + 40)]
    public long SpilledCount;

    /// <summary>Their latency sum in microseconds; only the claim holder touches it.</summary>
    [FieldOffset(CacheLine.Size + 48)]
    public long SpilledSum;
}
