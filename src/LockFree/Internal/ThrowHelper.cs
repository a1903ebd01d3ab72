using System.Diagnostics.CodeAnalysis;

namespace LockFree.Internal;

/// <summary>Throw sites kept out of hot paths so the callers stay small and inlinable.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowCapacityOutOfRange(int capacity) =>
        throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
            $"Capacity must be between 1 and {QueueCapacity.Max}.");

    [DoesNotReturn]
    public static void ThrowInvalidOperation(string message) => throw new InvalidOperationException(message);
}
