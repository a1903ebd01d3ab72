using System.Numerics;

namespace LockFree.Internal;

/// <summary>Capacity validation and rounding shared by the queue family.</summary>
internal static class QueueCapacity
{
    /// <summary>The largest capacity a queue accepts (2^30 slots).</summary>
    public const int Max = 1 << 30;

    /// <summary>
    /// Validates <paramref name="capacity"/> and rounds it up to the next power of two, so positions map
    /// to slots with a mask. Throws <see cref="ArgumentOutOfRangeException"/> outside [1, <see cref="Max"/>].
    /// </summary>
    public static int RoundUp(int capacity)
    {
        if (capacity < 1 || capacity > Max)
        {
            ThrowHelper.ThrowCapacityOutOfRange(capacity);
        }

        return (int)BitOperations.RoundUpToPowerOf2((uint)capacity);
    }
}
