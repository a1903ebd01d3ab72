using System.Runtime.InteropServices;

namespace LockFree.Internal;

/// <summary>
/// One thread role's hot index and its private cache of the other role's index, alone on a 128-byte
/// region with 128 bytes of padding before it. Two of these side by side keep their hot fields at least
/// <see cref="CacheLine.Size"/> bytes apart whatever order the runtime lays them out in, and keep them
/// away from the object header and the fields before them. Explicit layout needs a non-generic struct.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 2 * CacheLine.Size)]
internal struct PaddedIndexPair
{
    /// <summary>The role's own index: written only by that role, read by the other.</summary>
    [FieldOffset(CacheLine.Size)]
    public long Index;

    /// <summary>The role's private, possibly stale copy of the other role's index.</summary>
    [FieldOffset(CacheLine.Size + sizeof(long))]
    public long Cached;

    /// <summary>A third word private to the role (SequencedRing: the single side's boundary-poll budget; SpscRing: the consumer's streak of takes beyond its bound).</summary>
    [FieldOffset(CacheLine.Size + (2 * sizeof(long)))]
    public long Spare;

    /// <summary>A fourth word private to the role (SequencedRing: the single side's last catch-up position; SpscRing: the consumer's pause backoff).</summary>
    [FieldOffset(CacheLine.Size + (3 * sizeof(long)))]
    public long Spare2;

    /// <summary>A fifth word private to the role (SequencedRing: the single side's current catch-up pause).</summary>
    [FieldOffset(CacheLine.Size + (4 * sizeof(long)))]
    public long Spare3;
}

/// <summary>A single shared 64-bit index alone on its own padded region (see <see cref="PaddedIndexPair"/>).</summary>
[StructLayout(LayoutKind.Explicit, Size = 2 * CacheLine.Size)]
internal struct PaddedIndex
{
    /// <summary>The index.</summary>
    [FieldOffset(CacheLine.Size)]
    public long Value;
}
