using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: a small bounded pool of reusable objects owned by one buffer or adapter (not by a thread), so an object goes
// back where it came from whatever thread returns it. A fixed array of slots, each taken with an exchange and filled
// with a compare-exchange (a plain read first skips the slots that cannot answer without a locked instruction). Empty:
// Rent answers null and the caller creates one; full: Return drops the object for the GC. So at most Size objects are
// kept, and a steady state with at most Size operations in flight at once allocates nothing. Lock-free.

/// <summary>A bounded pool of <typeparamref name="TItem"/> objects; see the design note.</summary>
/// <typeparam name="TItem">The pooled objects.</typeparam>
internal sealed class OperationPool<TItem>
    where TItem : class
{
    /// <summary>
    /// Objects kept: parked operations of one side in flight at once that still find one (a parked caller holds its
    /// operation until its result is taken). Eight covers a few callers per core on the machines measured; more callers
    /// allocate past it, and the GC takes what does not fit back.
    /// </summary>
    internal const int Size = 8;

    private readonly TItem?[] _slots = new TItem?[Size];

    /// <summary>Takes a pooled object, or null when the pool is empty.</summary>
    public TItem? Rent()
    {
        TItem?[] slots = _slots;
        for (int i = 0; i < slots.Length; i++)
        {
            if (Volatile.Read(ref slots[i]) is not null) // acquire: pairs with the CAS in Return
            {
                TItem? item = Interlocked.Exchange(ref slots[i], null); // full fence: the object is ours alone
                if (item is not null)
                {
                    return item;
                }
            }
        }

        PoolGrowth.Count(); // the caller creates one
        return null;
    }

    /// <summary>Gives <paramref name="item"/> back (its fields cleared first); dropped when the pool is full.</summary>
    public void Return(TItem item)
    {
        TItem?[] slots = _slots;
        for (int i = 0; i < slots.Length; i++)
        {
            if (Volatile.Read(ref slots[i]) is null && Interlocked.CompareExchange(ref slots[i], item, null) is null) // release: the cleared fields before the object
            {
                return;
            }
        }
    }
}
