using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: a small bounded pool of reusable objects owned by one buffer or adapter (not by a thread), so an object goes
// back where it came from whatever thread returns it. A fixed array of slots, each taken with an exchange and filled
// with a compare-exchange (a plain read first skips the slots that cannot answer without a locked instruction). Empty:
// Rent answers null and the caller creates one; full: Return drops the object for the GC. So at most MaxSize objects are
// kept, and a steady state with at most MaxSize operations in flight at once allocates nothing. Lock-free.
//
// Two tiers (session 13): the first InlineSize slots are created with the pool; the rest (MaxSize - InlineSize) only when
// a Return finds the first tier full, that is when more than InlineSize operations of one kind were in flight at once
// (many writers parked on one full buffer). Before, the pool kept eight and every park past the eighth allocated, in
// steady state, for as long as that many callers kept parking; a buffer that never sees more than eight pays nothing
// for the larger bound. The bound matches the waiter lists' (WaiterList.PoolLimit).

/// <summary>A bounded pool of <typeparamref name="TItem"/> objects; see the design note.</summary>
/// <typeparam name="TItem">The pooled objects.</typeparam>
internal sealed class OperationPool<TItem>
    where TItem : class
{
    /// <summary>Slots created with the pool: the operations of one kind in flight at once on most buffers.</summary>
    internal const int InlineSize = 8;

    /// <summary>Objects kept at most (parked operations of one kind in flight at once that still find one).</summary>
    internal const int MaxSize = 64;

    private readonly TItem?[] _slots = new TItem?[InlineSize];
    private TItem?[]? _more; // the second tier, MaxSize - InlineSize slots, created by the first Return that needs it

    /// <summary>Takes a pooled object, or null when the pool is empty.</summary>
    public TItem? Rent()
    {
        TItem? item = TryTake(_slots);
        if (item is null && Volatile.Read(ref _more) is { } more) // acquire: the array's creation before its use
        {
            item = TryTake(more);
        }

        if (item is null)
        {
            PoolGrowth.Count(); // the caller creates one
        }

        return item;
    }

    /// <summary>Gives <paramref name="item"/> back (its fields cleared first); dropped when the pool is full.</summary>
    public void Return(TItem item)
    {
        if (TryPut(_slots, item))
        {
            return;
        }

        TItem?[]? more = Volatile.Read(ref _more); // acquire
        if (more is null)
        {
            more = new TItem?[MaxSize - InlineSize]; // once per pool, when more than InlineSize were in flight
            more = Interlocked.CompareExchange(ref _more, more, null) ?? more; // full fence: publishes the array; a racing Return's wins
        }

        TryPut(more, item);
    }

    /// <summary>Objects in the pool now (a snapshot; tests).</summary>
    internal int Count
    {
        get
        {
            int count = 0;
            foreach (TItem? item in _slots)
            {
                count += item is null ? 0 : 1;
            }

            foreach (TItem? item in Volatile.Read(ref _more) ?? [])
            {
                count += item is null ? 0 : 1;
            }

            return count;
        }
    }

    private static TItem? TryTake(TItem?[] slots)
    {
        for (int i = 0; i < slots.Length; i++)
        {
            if (Volatile.Read(ref slots[i]) is not null) // acquire: pairs with the CAS in TryPut
            {
                TItem? item = Interlocked.Exchange(ref slots[i], null); // full fence: the object is ours alone
                if (item is not null)
                {
                    return item;
                }
            }
        }

        return null;
    }

    private static bool TryPut(TItem?[] slots, TItem item)
    {
        for (int i = 0; i < slots.Length; i++)
        {
            if (Volatile.Read(ref slots[i]) is null && Interlocked.CompareExchange(ref slots[i], item, null) is null) // release: the cleared fields before the object
            {
                return true;
            }
        }

        return false;
    }
}
