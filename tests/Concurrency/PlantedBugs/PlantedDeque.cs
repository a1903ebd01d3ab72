using LockFree.Internal;
using LockFree.Tests.Concurrency.WorkStealing;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: a deliberately small Chase-Lev deque written for the planted-bug tests (not a copy of src): object
// slots, positions from 0, growth by doubling, owner clears the slots it pops (no lazy clearing of stolen
// slots), the same orderings as src/LockFree/WorkStealing/ChaseLevDeque.cs. Planted bugs:
//   MissingLastElementCas: the owner takes its last item without racing the thieves' CAS, so an owner and a
//     thief can both take it (the classic Chase-Lev mistake).
//   SlotReadAfterCas: a thief claims position t with its CAS and only then reads the slot, which the owner may
//     already have reused for position t + Length (or popped and cleared): a wrong or missing item.
//   SingleCasBatch: a batch steal claims k items with one CAS on top (crossbeam's FIFO-flavour steal_batch).
//     Unsound for a LIFO owner, which pops positions above top + 1 without touching top.
//   EarlyBufferLoadNoReread: a thief loads the buffer before bottom and never rereads it, so after a growth it
//     can read position t from a buffer that never held it (a stale taken item: delivered twice).
//   EarlyBufferLoad: the same early load, but with the reread after the slot read (the CVE-2021-32810 fix):
//     the reread repairs it; a negative control that must pass.
//   MissingPopFence: TryPop has no full fence between its store of bottom and its load of top, so on a TSO
//     machine the store can still sit in the store buffer when top is read (store-load reordering), and the
//     owner and a thief both take the last item. Invisible to sequentially consistent exploration: only the
//     store-buffer simulation (ExploreOptions.StoreBuffers) can find it, which is why bottom and top live in a
//     pinned array here and the owner reads its own bottom through the seam (store forwarding).
internal enum DequeBug
{
    None,
    MissingLastElementCas,
    SlotReadAfterCas,
    SingleCasBatch,
    EarlyBufferLoadNoReread,
    EarlyBufferLoad,
    MissingPopFence,
}

internal sealed class PlantedDeque<TAtomics>(int capacity, DequeBug bug) : ITestDeque
    where TAtomics : struct, IAtomics
{
    private const int Bottom = 0;
    private const int Top = 16; // 128 bytes away

    // bottom and top in a pinned array, so the store-buffer simulation may write them later through a raw pointer.
    private readonly long[] _indices = GC.AllocateArray<long>(Top + 1, pinned: true);
    private object?[] _buffer = new object?[capacity];

    private ref long _bottom => ref _indices[Bottom];

    private ref long _top => ref _indices[Top];

    public int Capacity => TAtomics.LoadAcquireReference(ref _buffer).Length;

    public void Push(object item)
    {
        long b = TAtomics.LoadPlain(ref _bottom); // plain: only the owner writes bottom (through the seam for store forwarding)
        long t = TAtomics.LoadAcquire(ref _top); // acquire: pairs with the takers' CAS
        object?[] buffer = _buffer; // plain: only the owner writes it
        if (b - t >= buffer.Length)
        {
            var grown = new object?[buffer.Length * 2];
            for (long p = t; p < b; p++)
            {
                grown[p % grown.Length] = buffer[p % buffer.Length];
            }

            TAtomics.StoreReleaseReference(ref _buffer, grown); // release: publishes the copies
            buffer = grown;
        }

        TAtomics.StorePlain(ref buffer[b % buffer.Length], item); // plain: published by the release below
        TAtomics.StoreRelease(ref _bottom, b + 1); // release: publishes the item
    }

    public bool TryPop(out object? item)
    {
        long b = TAtomics.LoadPlain(ref _bottom) - 1; // plain: only the owner writes bottom (through the seam for store forwarding)
        object?[] buffer = _buffer; // plain: only the owner writes it
        TAtomics.StoreRelease(ref _bottom, b);
        if (bug != DequeBug.MissingPopFence)
        {
            TAtomics.FullFence(); // PLANTED BUG (MissingPopFence): skipped
        }

        long t = TAtomics.LoadAcquire(ref _top);
        if (b - t < 0)
        {
            TAtomics.StoreRelease(ref _bottom, b + 1);
            item = null;
            return false;
        }

        item = TAtomics.LoadPlain(ref buffer[b % buffer.Length]);
        if (b - t > 0 || bug == DequeBug.MissingLastElementCas) // PLANTED BUG (MissingLastElementCas): the last item taken without the CAS
        {
            TAtomics.StorePlain(ref buffer[b % buffer.Length], null);
            if (b - t == 0)
            {
                TAtomics.StoreRelease(ref _bottom, b + 1);
                TAtomics.StoreRelease(ref _top, t + 1); // the bug's owner moves top with a plain store, racing the thieves' CAS
            }

            return true;
        }

        bool won = TAtomics.CompareExchange(ref _top, t + 1, t) == t;
        TAtomics.StoreRelease(ref _bottom, b + 1);
        if (!won)
        {
            item = null;
        }

        return won;
    }

    public StealResult TrySteal(out object? item)
    {
        item = null;
        bool early = bug is DequeBug.EarlyBufferLoad or DequeBug.EarlyBufferLoadNoReread;
        object?[] buffer = early ? TAtomics.LoadAcquireReference(ref _buffer) : null!; // PLANTED BUG (EarlyBufferLoad*): loaded before bottom
        long t = TAtomics.LoadAcquire(ref _top);
        TAtomics.FullFence();
        long b = TAtomics.LoadAcquire(ref _bottom);
        if (b - t <= 0)
        {
            return StealResult.Empty;
        }

        if (!early)
        {
            buffer = TAtomics.LoadAcquireReference(ref _buffer);
        }

        if (bug == DequeBug.SlotReadAfterCas)
        {
            if (TAtomics.CompareExchange(ref _top, t + 1, t) != t)
            {
                return StealResult.Retry;
            }

            item = TAtomics.LoadSpeculative(ref buffer[t % buffer.Length]); // PLANTED BUG (SlotReadAfterCas): read after the claim
            return StealResult.Success;
        }

        object? value = TAtomics.LoadSpeculative(ref buffer[t % buffer.Length]);
        bool reread = bug != DequeBug.EarlyBufferLoadNoReread; // PLANTED BUG (EarlyBufferLoadNoReread): no reread
        if ((reread && !ReferenceEquals(TAtomics.LoadAcquireReference(ref _buffer), buffer))
            || TAtomics.CompareExchange(ref _top, t + 1, t) != t)
        {
            return StealResult.Retry;
        }

        item = value;
        return StealResult.Success;
    }

    public StealResult TryStealBatch(ITestDeque destination, bool popOne, out int moved, out object? first)
    {
        var dest = (PlantedDeque<TAtomics>)destination;
        moved = 0;
        first = null;
        long t = TAtomics.LoadAcquire(ref _top);
        TAtomics.FullFence();
        long b = TAtomics.LoadAcquire(ref _bottom);
        if (b - t <= 0)
        {
            return StealResult.Empty;
        }

        int want = (int)Math.Min((b - t + 1) / 2, 32);
        object?[] buffer = TAtomics.LoadAcquireReference(ref _buffer);
        var taken = new List<object?>();
        if (bug == DequeBug.SingleCasBatch)
        {
            for (int i = 0; i < want; i++)
            {
                taken.Add(TAtomics.LoadSpeculative(ref buffer[(t + i) % buffer.Length]));
            }

            if (!ReferenceEquals(TAtomics.LoadAcquireReference(ref _buffer), buffer)
                || TAtomics.CompareExchange(ref _top, t + want, t) != t) // PLANTED BUG (SingleCasBatch): one CAS for k items
            {
                return StealResult.Retry;
            }
        }
        else
        {
            for (int i = 0; i < want; i++)
            {
                if (i > 0 && TAtomics.LoadAcquire(ref _bottom) - t <= 0)
                {
                    break;
                }

                object? value = TAtomics.LoadSpeculative(ref buffer[t % buffer.Length]);
                if (!ReferenceEquals(TAtomics.LoadAcquireReference(ref _buffer), buffer)
                    || TAtomics.CompareExchange(ref _top, t + 1, t) != t)
                {
                    break;
                }

                taken.Add(value);
                t++;
            }
        }

        for (int i = 0; i < taken.Count; i++)
        {
            if (popOne && i == 0)
            {
                first = taken[0];
            }
            else
            {
                dest.Push(taken[i]!);
            }
        }

        moved = taken.Count;
        return moved > 0 ? StealResult.Success : StealResult.Retry;
    }
}
