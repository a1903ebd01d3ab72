namespace LockFree.Internal;

/// <summary>
/// Counts, process-wide, the objects the library's pools created because they were empty (a waiter list's waiters, an
/// operation pool's operations): diagnostics for the allocation tests, which tell a pool growing to a new high-water mark
/// (bounded by the pool's size) from an allocation on every call. Touched only on the allocating path.
/// </summary>
internal static class PoolGrowth
{
    private static long s_created;

    /// <summary>Objects created on a pool miss since the process started.</summary>
    internal static long Created => Volatile.Read(ref s_created); // acquire

    /// <summary>Counts one object created on a pool miss.</summary>
    internal static void Count() => Interlocked.Increment(ref s_created); // full fence; beside an allocation
}
