using System.Runtime.CompilerServices;

namespace LockFree.Internal;

// Design: an exact statistics counter whose increment is no read-modify-write instruction. Each thread counts into a
// slot of its own (a padded cell found by its managed thread id), so a slot has one writer at a time and the
// increment is a plain load and a release store: no locked instruction, and no increment can be lost (two threads
// never share a slot). A read sums the slots (a snapshot: each slot is monotone and the slot table only grows, so
// successive reads never go down).
//
// Thread ids. Environment.CurrentManagedThreadId is unique among live threads and the runtime hands a dead thread's
// id to a later thread. The later thread then continues the dead one's slot: single writer still holds (the dead
// thread writes no more), and it reads the dead thread's last count because the runtime's id dispenser is
// serialised (releasing the id after the thread's last write, taking it before the new thread's first). Ids at or
// above MaxIndexedId (thousands of threads at once) count with an atomic add on a shared cell instead: still exact.
//
// Slot table. A slot is created by its thread on first use (one small allocation per thread and counter, then
// 0 B per increment). The table (slot references indexed by thread id) is grown and filled under a lock; a grown
// table copies every reference, and slots never move, so no count is lost when the table is replaced.
// Memory: a table sized to the largest id that counted here, plus one padded cell per thread that counted here.

/// <summary>
/// An exact counter incremented without an interlocked instruction: one single-writer slot per thread, summed on read.
/// For hot statistics (refusal counts) on paths where a locked add would be most of the cost.
/// </summary>
internal sealed class ThreadOwnedCounter
{
    /// <summary>Thread ids at or above this count on the shared, atomic cell (bounds the table at 32 KB).</summary>
    public const int MaxIndexedId = 4096;

    private const int MinTable = 16;

    [ThreadStatic]
    private static int t_id; // Environment.CurrentManagedThreadId + 1, cached (0 = not read yet): an inlined thread-static read instead of a call

    private Slot?[] _slots = new Slot?[MinTable];
    private long _shared; // ids >= MaxIndexedId: atomic adds
    private readonly object _growLock = new();

    /// <summary>Adds one, on the calling thread's own slot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Increment()
    {
        int id = t_id - 1;
        Slot?[] slots = Volatile.Read(ref _slots); // acquire: pairs with the release store of a grown table (its slots are constructed)
        if ((uint)id < (uint)slots.Length && slots[id] is { } slot)
        {
            // Single writer (this thread owns the id): a plain read and a release store; readers see whole values.
            Volatile.Write(ref slot.Cell.Value, slot.Cell.Value + 1);
            return;
        }

        IncrementSlow(id);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void IncrementSlow(int id)
    {
        if (id < 0)
        {
            t_id = Environment.CurrentManagedThreadId + 1; // first use on this thread (a thread's id never changes)
            id = t_id - 1;
        }

        if ((uint)id >= MaxIndexedId)
        {
            Interlocked.Increment(ref _shared); // full fence: shared by every thread beyond the table
            return;
        }

        Slot slot = ThreadSlotTable.GetOrAdd(ref _slots, _growLock, id, MaxIndexedId);

        Volatile.Write(ref slot.Cell.Value, slot.Cell.Value + 1); // single writer, as the fast path
    }

    /// <summary>The count: a snapshot (monotone across calls).</summary>
    public long Sum()
    {
        long sum = Volatile.Read(ref _shared);
        foreach (Slot? slot in Volatile.Read(ref _slots)) // acquire: pairs with the table's release store
        {
            if (slot is not null)
            {
                sum += Volatile.Read(ref slot.Cell.Value);
            }
        }

        return sum;
    }

    /// <summary>One thread's count, alone on its padded region.</summary>
    private sealed class Slot
    {
        public PaddedIndex Cell;
    }
}
