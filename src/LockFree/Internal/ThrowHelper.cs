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

    [DoesNotReturn]
    public static void ThrowInitialCapacityOutOfRange(int initialCapacity, int max) =>
        throw new ArgumentOutOfRangeException(nameof(initialCapacity), initialCapacity,
            $"The initial capacity must be between 1 and {max}.");

    [DoesNotReturn]
    public static void ThrowArgument(string paramName, string message) => throw new ArgumentException(message, paramName);
}
