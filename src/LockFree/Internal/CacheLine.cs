namespace LockFree.Internal;

/// <summary>The one padding primitive of the library.</summary>
internal static class CacheLine
{
    /// <summary>
    /// Bytes between fields that different threads write. 128, not 64: x64 parts with the adjacent-line
    /// (spatial) prefetcher pull cache lines in 128-byte pairs, and Apple/ARM64 server cores use 128-byte
    /// lines, so two hot fields closer than 128 bytes can still false-share. crossbeam's
    /// <c>CachePadded</c> and the .NET runtime's <c>PaddingHelpers</c> pick the same figure.
    /// </summary>
    public const int Size = 128;
}
