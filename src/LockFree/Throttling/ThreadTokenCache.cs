using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Throttling;

// Design: per-thread caches of a token bucket's pre-credited batch (see "Thread caches" in TokenBucketCore.cs for
// why an admission from a cache is one the exact bucket also makes). Each thread owns one slot per bucket, found by
// its managed thread id as in ThreadOwnedCounter (the same id-reuse argument: a later thread with a dead thread's
// id continues its slot, one writer at a time). A slot is read and written by its thread only, with plain accesses;
// the engine never reads it (a cache's leftover is charged as spent when its epoch ends). The table of slot
// references grows under a lock and is published with a release store; slots never move.

/// <summary>Per-thread token caches of one bucket: a slot per thread holding (epoch, tokens left).</summary>
internal sealed class ThreadTokenCache
{
    /// <summary>Thread ids at or above this take from the shared batch instead (bounds the table at 32 KB).</summary>
    public const int MaxIndexedId = 4096;

    private const int MinTable = 16;

    [ThreadStatic]
    private static int t_id; // Environment.CurrentManagedThreadId + 1, cached (0 = not read yet)

    private Slot?[] _slots = new Slot?[MinTable];
    private readonly object _growLock = new();
    private long _dead;

    /// <summary>
    /// Takes <paramref name="tokens"/> from the calling thread's cache if it belongs to <paramref name="epoch"/> and
    /// holds them. The slot is the thread's own: plain accesses, no fence, no shared store.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTake(long tokens, long epoch)
    {
        int id = t_id - 1;
        Slot?[] slots = Volatile.Read(ref _slots); // acquire: pairs with the release store of a grown table
        if ((uint)id < (uint)slots.Length && slots[id] is { } slot)
        {
            if (slot.Cell.Epoch == epoch)
            {
                long left = slot.Cell.Left - tokens;
                if (left >= 0)
                {
                    slot.Cell.Left = left; // plain: only this thread touches its slot
                    return true;
                }
            }
            else if (slot.Cell.Left != 0)
            {
                ReportDead(slot);
            }
        }

        return false;
    }

    /// <summary>
    /// Tokens left in caches whose epoch had ended, as their threads reported them (statistics: they were charged by
    /// the settlement that ended the epoch and never admitted, so the bucket's admitted count leaves them out).
    /// </summary>
    public long DeadTokens => Volatile.Read(ref _dead);

    /// <summary>Counts a dead cache's leftover once (its thread's first acquire after the epoch ended).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReportDead(Slot slot)
    {
        Interlocked.Add(ref _dead, slot.Cell.Left); // statistics only: a locked add, once per dead cache
        slot.Cell.Left = 0; // plain: only this thread touches its slot
    }

    /// <summary>The calling thread's slot, created on first use; null for a thread id beyond the table (it does not cache).</summary>
    public Slot? OwnSlot()
    {
        int id = t_id - 1;
        Slot?[] slots = Volatile.Read(ref _slots); // acquire: as above
        if ((uint)id < (uint)slots.Length && slots[id] is { } slot)
        {
            return slot;
        }

        return CreateSlot();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Slot? CreateSlot()
    {
        if (t_id == 0)
        {
            t_id = Environment.CurrentManagedThreadId + 1; // first use on this thread (a thread's id never changes)
        }

        int id = t_id - 1;
        if ((uint)id >= MaxIndexedId)
        {
            return null;
        }

        return ThreadSlotTable.GetOrAdd(ref _slots, _growLock, id, MaxIndexedId);
    }

    /// <summary>Bytes held now (tests and docs): the table plus one padded slot per thread that cached here.</summary>
    public int SlotCount
    {
        get
        {
            int n = 0;
            foreach (Slot? slot in Volatile.Read(ref _slots))
            {
                n += slot is null ? 0 : 1;
            }

            return n;
        }
    }

    /// <summary>One thread's cache, alone on its padded region.</summary>
    internal sealed class Slot
    {
        public PaddedCache Cell;
    }

    /// <summary>(epoch, tokens left), with a cache line of padding before and after.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 2 * CacheLine.Size)]
    internal struct PaddedCache
    {
        /// <summary>The batch epoch the cached tokens belong to (they are dead once the bucket's epoch moves on).</summary>
        [FieldOffset(CacheLine.Size)]
        public long Epoch;

        /// <summary>Tokens left in the cache.</summary>
        [FieldOffset(CacheLine.Size + sizeof(long))]
        public long Left;
    }
}
