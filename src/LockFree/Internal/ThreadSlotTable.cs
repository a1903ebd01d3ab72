namespace LockFree.Internal;

/// <summary>
/// The slow path shared by the per-thread slot tables (<see cref="ThreadOwnedCounter"/>, the token bucket's thread
/// caches): a table of slots indexed by managed thread id, grown to a power of two under a lock and published with a
/// release store, so readers and each slot's single writer index it without a lock. A thread's id never changes;
/// ids at or above the table's limit get no slot (the owners fall back to a shared path).
/// </summary>
internal static class ThreadSlotTable
{
    /// <summary>Returns the slot of thread <paramref name="id"/>, creating it (and growing the table) under <paramref name="growLock"/>.</summary>
    /// <param name="table">The owner's table field; replaced by a grown copy when too short.</param>
    /// <param name="growLock">The owner's lock for growth and slot creation.</param>
    /// <param name="id">The thread's managed id, below <paramref name="maxIndexedId"/>.</param>
    /// <param name="maxIndexedId">The table's size limit.</param>
    public static TSlot GetOrAdd<TSlot>(ref TSlot?[] table, object growLock, int id, int maxIndexedId)
        where TSlot : class, new()
    {
        using (InterruptDeferral.Lock(growLock))
        {
            TSlot?[] slots = table;
            if (id >= slots.Length)
            {
                TSlot?[] grown = new TSlot?[Math.Min((int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)id + 1), maxIndexedId)];
                Array.Copy(slots, grown, slots.Length);
                slots = grown;
            }

            TSlot slot = slots[id] ??= new TSlot();
            Volatile.Write(ref table, slots); // release: publishes the table and the new slot to readers and the slot's writer
            return slot;
        }
    }
}
