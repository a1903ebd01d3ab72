using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: a bounded pool of reusable objects owned by one buffer, queue, limiter or adapter (not by a thread), so an
// object goes back where it came from whatever thread returns it. Empty: Rent answers null and the caller creates one;
// full: Return drops the object for the GC. So at most MaxSize objects are kept, and a steady state with at most MaxSize
// operations in flight at once allocates nothing.
//
// Two tiers. The first InlineSize slots are created with the pool: a fixed array, each slot taken with an exchange and
// filled with a compare-exchange (a plain read first skips the slots that cannot answer without a locked instruction);
// lock-free. Past them, an overflow stack created the first time a Return finds the first tier full (more than
// InlineSize operations of one kind in flight at once: many writers parked on one full buffer), amortized O(1) per call,
// grown by doubling up to MaxSize - InlineSize, under its own lock. That lock is only ever tried, never waited for: a
// call that finds it taken a few times gives up (Rent answers null, Return drops the object). So every call ends in a
// bounded number of its own steps, none can be interrupted (a Return runs in GetResult's finally, after an item was
// taken), and a pool shared by many threads (the retry policy's, process-wide per type) never makes them wait. The bound
// is also the waiter lists' (WaiterList.PoolLimit); docs/backpressure.md has the history of the sizes.

/// <summary>A bounded pool of <typeparamref name="TItem"/> objects; see the design note.</summary>
/// <typeparam name="TItem">The pooled objects.</typeparam>
internal sealed class OperationPool<TItem>
    where TItem : class
{
    /// <summary>Slots created with the pool: the operations of one kind in flight at once on most buffers.</summary>
    internal const int InlineSize = 8;

    /// <summary>Objects kept at most (parked operations of one kind in flight at once that still find one).</summary>
    internal const int MaxSize = 1024;

    /// <summary>The overflow stack's first capacity; it doubles up to <see cref="MaxSize"/> - <see cref="InlineSize"/>.</summary>
    private const int FirstOverflowCapacity = 56;

    private readonly TItem?[] _slots = new TItem?[InlineSize];
    private Overflow? _overflow; // the second tier, created by the first Return that needs it

    /// <summary>Takes a pooled object, or null when the pool is empty.</summary>
    public TItem? Rent()
    {
        TItem? item = TryTake(_slots);
        if (item is null && Volatile.Read(ref _overflow) is { } overflow) // acquire: the stack's creation before its use
        {
            item = overflow.Pop();
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

        Overflow? overflow = Volatile.Read(ref _overflow); // acquire
        if (overflow is null)
        {
            overflow = new Overflow(); // once per pool, when more than InlineSize were in flight
            overflow = Interlocked.CompareExchange(ref _overflow, overflow, null) ?? overflow; // full fence: publishes it; a racing Return's wins
        }

        overflow.Push(item);
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

            return count + (Volatile.Read(ref _overflow)?.Count ?? 0);
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

    /// <summary>The second tier: a stack under its own lock, never waited for (see the design note).</summary>
    private sealed class Overflow
    {
        /// <summary>Tries at the lock before a call gives up (each after a short spin; the holder runs a few instructions).</summary>
        private const int Attempts = 4;

        private readonly Lock _gate = new();
        private TItem[] _items = new TItem[FirstOverflowCapacity];
        private int _count;

        public int Count => Volatile.Read(ref _count); // a snapshot (tests)

        /// <summary>An object from the stack; null when it is empty or its lock stayed taken (the caller creates one).</summary>
        public TItem? Pop()
        {
            if (!TryEnter())
            {
                return null;
            }

            try
            {
                if (_count == 0)
                {
                    return null;
                }

                TItem item = _items[--_count];
                _items[_count] = null!; // the stack holds only what it keeps
                return item;
            }
            finally
            {
                _gate.Exit();
            }
        }

        /// <summary>Keeps <paramref name="item"/>; drops it for the GC when the stack is at its bound or its lock stayed taken.</summary>
        public void Push(TItem item)
        {
            if (!TryEnter())
            {
                return;
            }

            try
            {
                if (_count == _items.Length)
                {
                    if (_count >= MaxSize - InlineSize)
                    {
                        return; // full: dropped for the GC
                    }

                    Array.Resize(ref _items, Math.Min(_items.Length * 2, MaxSize - InlineSize));
                }

                _items[_count++] = item;
            }
            finally
            {
                _gate.Exit();
            }
        }

        /// <summary>
        /// Takes the lock without ever waiting on it: a blocking wait could throw <see cref="ThreadInterruptedException"/>
        /// (a <c>Return</c> runs in <c>GetResult</c>'s finally, after the item was taken: the exception would lose it), and a
        /// caller never waits on another's pool call. A few tries with a short spin between, then the caller gives up.
        /// </summary>
        private bool TryEnter()
        {
            for (int attempt = 0; attempt < Attempts; attempt++)
            {
                if (_gate.TryEnter())
                {
                    return true;
                }

                Thread.SpinWait(20); // no interrupt point
            }

            return false;
        }
    }
}
