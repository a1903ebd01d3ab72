using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.WorkStealing;

// Design: the Chase-Lev work-stealing deque.
//
// Algorithm: D. Chase, Y. Lev, "Dynamic circular work-stealing deque", SPAA 2005, with the memory orderings of
// N. M. Lê, A. Pop, A. Cohen, F. Zappa Nardelli, "Correct and efficient work-stealing for weak memory models",
// PPoPP 2013 (their Figure 1), mapped to .NET: C11 acquire loads / release stores are Volatile.Read/Write,
// their seq_cst fence is Interlocked.MemoryBarrier (a locked `or [rsp], 0` on x64, `dmb ish` on arm64) and
// their seq_cst CAS is Interlocked.CompareExchange (`lock cmpxchg` on x64; a casal or ldaxr/stlxr loop followed
// by `dmb ish` on arm64 - a full fence either way). docs/work-stealing.md has the argument per operation.
//
// Encoding: bottom (_owner.Index) and top (_top.Value) are signed 64-bit positions; the deque holds the items
// at positions [top, bottom). The slot of position p is p & (buffer.Length - 1). Every comparison is written
// as a difference (b - t > 0, never t < b), so the positions may even wrap past long.MaxValue (tests start
// them just below it).
//
// Roles: one owner thread at a time pushes and pops at the bottom (LIFO); any number of thieves take from
// the top (FIFO) with a CAS on top. Only the owner writes bottom, the slots and _buffer; top only grows.
//
// Invariants: top - 1 <= bottom (bottom dips one below top only inside an owner's TryPop of an empty deque),
// bottom - top <= buffer.Length; the slots of [top, bottom) hold the items; the item at position p is in the
// buffer that was current when it was pushed or the one growth copied it into.
//
// Growth: when full, the owner copies [top, bottom) into a buffer twice as large, then release-stores the
// buffer reference. The old buffer is never written again, so a thief still reading it sees the items it
// held; the garbage collector reclaims it once no thief holds it (no epochs or hazard pointers needed in
// .NET). A thief rereads _buffer after reading its slot and retries when the buffer changed (the
// crossbeam-deque CVE-2021-32810 lesson: a slot must be validated against the buffer that is current when
// the CAS claims it). With grow-only buffers that are never reused this is defence in depth; it becomes
// necessary the day buffers shrink or are pooled.
//
// Clearing (so the GC can reclaim taken items): the owner clears the slot it pops. A thief never writes a
// slot: after its CAS the owner may already be reusing the slot for position p + Length, and before its CAS
// it does not own the item. So slots of stolen items are cleared lazily by the owner, which knows they are
// dead once it reads a top beyond them: at every TryPop that finds the deque empty or takes its last item, and
// whenever a Push rereads top because the buffer looked full. A stolen item therefore stays referenced by its
// slot until the owner next runs dry or refreshes top - at most Capacity stale references, never more.
// Clearing a slot while a slow thief speculatively reads it is benign: that thief's CAS must fail.
//
// Taking the last item (session 22). Chase-Lev's pop claims position bottom - 1 (a store of bottom, then a seq_cst fence,
// then a read of top) and, when that was the last item, races the thieves for it with their CAS on top: two locked
// instructions. When the last top the owner read already says at most one item is left (top only grows, so a cached top
// is a lower bound), the owner skips the claim: it reads top, and either finds the deque empty (top has reached bottom,
// which only the owner moves up) or takes the one item at position top with the thieves' own CAS, as a steal would.
// Bottom is not touched, so no fence is needed to order it; exactly one CAS on top from that position succeeds, so the
// item goes to the owner or to one thief. One locked instruction for the last item, none for an empty deque. A pop with
// a stale cached top that still finds one item or none after its claim takes the classic path.
//
// Batch steal: a thief claims items one CAS at a time (crossbeam's steal_batch for its LIFO flavor), with one
// up-front reservation of room in the destination and one publication of the destination's bottom. One CAS
// claiming k items at once (what crossbeam does for FIFO workers) is unsound here: the LIFO owner pops
// positions above top + 1 without touching top, so a claim [t, t + k) sized from a stale bottom can include
// items the owner has already popped (tests/Concurrency/PlantedBugs has that variant and the test finding it).
//
// Progress: Push and TryPop are wait-free (TryPop's single CAS is not retried, on either path); TrySteal is lock-free, answering
// Retry when it lost a race (another thief or the owner took the item first), and so are the batch steals.
[DebuggerDisplay("Capacity = {Capacity}")]
internal struct ChaseLevDeque<T, TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>The largest buffer (2^30 slots); a Push beyond it throws.</summary>
    public const int MaxCapacity = 1 << 30;

    /// <summary>
    /// The most items one batch steal moves: enough to amortise the search for a victim, small enough that a
    /// thief does not hoard work other thieves could run (crossbeam-deque uses the same figure).
    /// </summary>
    public const int MaxBatch = 32;

    // Owner role: Index = bottom (next position to push; written only by the owner, read by thieves);
    // Cached = the last top the owner read (owner-private, only ever lags the real top).
    private PaddedIndexPair _owner;

    // top: the oldest item's position; advanced only by CAS (thieves, and the owner taking the last item).
    private PaddedIndex _top;

    // The current buffer: written only by the owner (release), read by thieves (acquire). Its length is a power of two.
    private T[] _buffer;

    // Owner-private: every slot of a position below this that is not live has been cleared (lazy clearing of stolen slots).
    private long _cleared;

    public ChaseLevDeque(int initialCapacity, long startPosition = 0)
    {
        if (initialCapacity < 1 || initialCapacity > MaxCapacity)
        {
            ThrowHelper.ThrowInitialCapacityOutOfRange(initialCapacity, MaxCapacity);
        }

        _buffer = new T[BitOperations.RoundUpToPowerOf2((uint)initialCapacity)];
        _owner.Index = startPosition;
        _owner.Cached = startPosition;
        _top.Value = startPosition;
        _cleared = startPosition;
    }

    /// <summary>The current buffer length (any thread; a snapshot).</summary>
    public int Capacity => TAtomics.LoadAcquireReference(ref _buffer).Length; // acquire: pairs with the release in Grow

    /// <summary>An approximate count (any thread): bottom - top from two separate loads, clamped to [0, int.MaxValue].</summary>
    public readonly int Count
    {
        get
        {
            long t = TAtomics.LoadAcquire(ref Unsafe.AsRef(in _top.Value)); // acquire: a snapshot, no edge needed
            long b = TAtomics.LoadAcquire(ref Unsafe.AsRef(in _owner.Index)); // acquire: a snapshot, no edge needed
            long n = b - t;
            return n <= 0 ? 0 : n >= int.MaxValue ? int.MaxValue : (int)n;
        }
    }

    /// <summary>Owner only: pushes <paramref name="item"/> at the bottom, growing the buffer when it is full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(T item)
    {
        long b = TAtomics.LoadOwn(ref _owner.Index); // plain: only the owner writes bottom (its own store)
        T[] buffer = _buffer; // plain: only the owner writes _buffer
        if (b - _owner.Cached >= buffer.Length)
        {
            buffer = MakeRoom(b, 1);
        }

        TAtomics.StorePlain(ref Slot(buffer, b), item); // plain: no thief reads position b before bottom passes it
        TAtomics.StoreRelease(ref _owner.Index, b + 1); // release: publishes the item; pairs with the acquire of bottom in the steals
    }

    /// <summary>Owner only: pops the most recently pushed item (LIFO end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPop([MaybeNullWhen(false)] out T item)
    {
        long b = TAtomics.LoadOwn(ref _owner.Index) - 1; // plain: only the owner writes bottom (its own store)
        T[] buffer = _buffer; // plain: only the owner writes _buffer
        if (b - _owner.Cached <= 0)
        {
            // At most one item (the last top we read is a lower bound: top only grows): no claim of b, no fence
            // (see "Taking the last item").
            return TakeLastOrEmpty(buffer, b, out item);
        }

        TAtomics.StoreRelease(ref _owner.Index, b); // claims position b: a thief that reads bottom from now on leaves it alone
        TAtomics.FullFence(); // seq_cst: the store above is visible before top is read; pairs with the fence in the steals (store-load, Dekker)
        long t = TAtomics.LoadAcquire(ref _top.Value); // acquire: pairs with the thieves' CAS on top; their slot reads are done
        _owner.Cached = t;
        long remaining = b - t;
        if (remaining > 0)
        {
            // Not the last item: no thief can claim position b (it would need to read a bottom above b after a
            // top of b, and our store of bottom is ordered before that by the two fences).
            ref T slot = ref Slot(buffer, b);
            item = TAtomics.LoadPlain(ref slot); // plain: the owner wrote it
            if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
            {
                TAtomics.StorePlain(ref slot, default!); // plain: position b is the owner's; lets the GC reclaim the item
            }

            return true;
        }

        return PopLastOrEmpty(buffer, b, t, out item);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PopLastOrEmpty(T[] buffer, long b, long t, [MaybeNullWhen(false)] out T item)
    {
        AssertInvariants(buffer, t, b + 1);
        if (b - t < 0)
        {
            // Empty: restore bottom (= top, the empty deque).
            TAtomics.StoreRelease(ref _owner.Index, b + 1); // release: no new item; keeps the store order of bottom simple
            ClearTaken(buffer, t, b + 1);
            item = default;
            return false;
        }

        // The last item (b == t): race the thieves for it with the same CAS they use, then restore bottom.
        return TakeAt(buffer, b, t, restoreBottom: true, out item);
    }

    /// <summary>
    /// Owner only, with at most one item left by the last top it read (<paramref name="b"/> is bottom - 1): takes that
    /// item with the thieves' CAS on top, or finds the deque empty, without moving bottom (see "Taking the last item").
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TakeLastOrEmpty(T[] buffer, long b, [MaybeNullWhen(false)] out T item)
    {
        long t = TAtomics.LoadAcquire(ref _top.Value); // acquire: pairs with the thieves' CAS on top; their slot reads are done
        AssertInvariants(buffer, t, b + 1);
        Debug.Assert(b - t <= 0, "more than one item although the cached top said at most one");
        if (b - t < 0)
        {
            // Empty: top has reached bottom, and only this thread could move bottom up. Stores only what changed: Cached
            // shares its line with bottom, which thieves read, and an idle owner may ask an empty deque again and again.
            if (_owner.Cached != t)
            {
                _owner.Cached = t;
            }

            ClearTaken(buffer, t, b + 1);
            item = default;
            return false;
        }

        // One item, at position b == t: take it as a thief would. Bottom stays b + 1; whoever wins, top becomes b + 1.
        return TakeAt(buffer, b, t, restoreBottom: false, out item);
    }

    /// <summary>
    /// Owner only: takes the last item, at position <paramref name="t"/> (== <paramref name="b"/>), with the thieves' CAS on
    /// top; with <paramref name="restoreBottom"/> (the classic pop, which claimed b by lowering bottom) bottom goes back to
    /// b + 1, empty either way. The slot read is t's, the position the CAS claims: were the cached top ever ahead of the
    /// real one (TakeLastOrEmpty's assertion), the owner would still take exactly the item it claims, as a steal does.
    /// </summary>
    private bool TakeAt(T[] buffer, long b, long t, bool restoreBottom, [MaybeNullWhen(false)] out T item)
    {
        item = TAtomics.LoadPlain(ref Slot(buffer, t)); // plain: the owner wrote it; read before the CAS that claims it
        bool won = TAtomics.IsPlanted(PlantedFault.DequeTakesLastWithoutCas)
            ? TakeWithoutCas(t)
            : TAtomics.CompareExchange(ref _top.Value, t + 1, t) == t; // seq_cst CAS: pairs with the thieves' CAS on top
        if (restoreBottom)
        {
            TAtomics.StoreRelease(ref _owner.Index, b + 1); // bottom = top = t + 1: empty either way
        }

        _owner.Cached = t + 1;
        ClearTaken(buffer, t + 1, b + 1); // position t is dead whoever took it
        if (!won)
        {
            item = default;
            return false;
        }

        return true;
    }

    /// <summary>The planted <see cref="PlantedFault.DequeTakesLastWithoutCas"/>: the claim of position <paramref name="t"/> as a read, then a store.</summary>
    private bool TakeWithoutCas(long t)
    {
        if (TAtomics.LoadAcquire(ref _top.Value) != t)
        {
            return false;
        }

        TAtomics.StoreRelease(ref _top.Value, t + 1);
        return true;
    }

    /// <summary>Any thread: takes the oldest item (FIFO end).</summary>
    public StealResult TrySteal([MaybeNullWhen(false)] out T item)
    {
        long t = TAtomics.LoadAcquire(ref _top.Value); // acquire: pairs with the CAS of the previous taker
        TAtomics.FullFence(); // seq_cst: top is read before bottom; pairs with the owner's fence in TryPop
        long b = TAtomics.LoadAcquire(ref _owner.Index); // acquire: pairs with the release of bottom in Push; the slot is written
        if (b - t <= 0)
        {
            item = default!; // [MaybeNullWhen(false)] on a StealResult: callers read item only after Success
            return StealResult.Empty;
        }

        T[] buffer = TAtomics.LoadAcquireReference(ref _buffer); // acquire: pairs with the release in Grow; read after bottom, so it holds position t
        item = TAtomics.LoadSpeculative(ref Slot(buffer, t)); // speculative: ours only if the CAS below succeeds
        if (!ReferenceEquals(TAtomics.LoadAcquireReference(ref _buffer), buffer) // reread after the slot read (CVE-2021-32810)
            || TAtomics.CompareExchange(ref _top.Value, t + 1, t) != t) // seq_cst CAS: claims position t; pairs with every other taker's CAS
        {
            item = default!; // [MaybeNullWhen(false)] on a StealResult: callers read item only after Success
            return StealResult.Retry;
        }

        return StealResult.Success;
    }

    /// <summary>
    /// Any thread, owning <paramref name="destination"/>: moves about half of the items (at most
    /// <see cref="MaxBatch"/>) into <paramref name="destination"/>; with <paramref name="popOne"/> the oldest one
    /// is returned in <paramref name="first"/> instead of being pushed. <paramref name="moved"/> counts every
    /// item taken (including <paramref name="first"/>).
    /// </summary>
    public StealResult TryStealBatch(ref ChaseLevDeque<T, TAtomics> destination, bool popOne, out int moved, [MaybeNullWhen(false)] out T first)
    {
        moved = 0;
        first = default!;
        long t = TAtomics.LoadAcquire(ref _top.Value); // acquire: pairs with the CAS of the previous taker
        TAtomics.FullFence(); // seq_cst: as in TrySteal
        long b = TAtomics.LoadAcquire(ref _owner.Index); // acquire: pairs with the release of bottom in Push
        long available = b - t;
        if (available <= 0)
        {
            return StealResult.Empty;
        }

        int want = (int)Math.Min((available + 1) / 2, MaxBatch);

        // Room first, so no allocation happens between the claims; the items go at [db, db + pushed).
        int toPush = popOne ? want - 1 : want;
        long db = TAtomics.LoadOwn(ref destination._owner.Index); // plain: the caller owns destination (its own store)
        T[] dbuffer = destination._buffer; // plain: the caller owns destination
        if (toPush > 0 && db + toPush - destination._owner.Cached > dbuffer.Length)
        {
            dbuffer = destination.MakeRoom(db, toPush);
        }

        T[] buffer = TAtomics.LoadAcquireReference(ref _buffer); // acquire: pairs with the release in Grow
        int pushed = 0;
        for (int i = 0; i < want; i++)
        {
            if (i > 0)
            {
                // The previous CAS was a full fence, so this is TrySteal's "top, fence, bottom" with top = t.
                b = TAtomics.LoadAcquire(ref _owner.Index); // acquire: pairs with the release of bottom in Push
                if (b - t <= 0)
                {
                    break;
                }
            }

            T value = TAtomics.LoadSpeculative(ref Slot(buffer, t)); // speculative: ours only if the CAS below succeeds
            if (!ReferenceEquals(TAtomics.LoadAcquireReference(ref _buffer), buffer) // reread after the slot read (CVE-2021-32810)
                || TAtomics.CompareExchange(ref _top.Value, t + 1, t) != t) // seq_cst CAS: claims position t
            {
                break;
            }

            t++;
            if (popOne && i == 0)
            {
                first = value;
            }
            else
            {
                TAtomics.StorePlain(ref Slot(dbuffer, db + pushed), value); // plain: unpublished until the release below
                pushed++;
            }

            moved++;
        }

        if (pushed > 0)
        {
            TAtomics.StoreRelease(ref destination._owner.Index, db + pushed); // release: publishes the moved items; pairs with the destination's thieves
        }

        return moved > 0 ? StealResult.Success : StealResult.Retry;
    }

    /// <summary>Owner only: makes room for <paramref name="count"/> more items after position <paramref name="b"/>; returns the buffer to write.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private T[] MakeRoom(long b, int count)
    {
        long t = TAtomics.LoadAcquire(ref _top.Value); // acquire: pairs with the thieves' CAS; their slot reads are done before we overwrite
        _owner.Cached = t;
        T[] buffer = _buffer; // plain: only the owner writes _buffer
        AssertInvariants(buffer, t, b);
        ClearTaken(buffer, t, b);
        if (b + count - t > buffer.Length)
        {
            buffer = Grow(buffer, t, b, count);
        }

        return buffer;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private T[] Grow(T[] old, long t, long b, int count)
    {
        long needed = b + count - t;
        long length = old.Length;
        while (length < needed)
        {
            length *= 2;
        }

        if (length > MaxCapacity)
        {
            ThrowHelper.ThrowInvalidOperation($"The deque cannot hold more than {MaxCapacity} items.");
        }

        var grown = new T[length];

        // Copy the live positions [t, b). Reading the old slots is safe: the owner wrote them and thieves only
        // read them. The new buffer is private until the release store below.
        long p = t;
        while (p != b)
        {
            int from = (int)(p & (old.Length - 1));
            int to = (int)(p & (grown.Length - 1));
            int run = (int)Math.Min(b - p, Math.Min(old.Length - from, grown.Length - to));
            TAtomics.CopyPlain<T>(old.AsSpan(from, run), grown.AsSpan(to, run)); // plain: published by the release below
            p += run;
        }

        TAtomics.StoreReleaseReference(ref _buffer, grown); // release: the copies are visible to a thief that acquires the new buffer
        _cleared = t; // the new buffer holds nothing below t
        return grown;
    }

    /// <summary>
    /// Owner only: clears the slots of positions below <paramref name="t"/> (taken, so dead) that still hold an
    /// item, without touching the live positions [t, <paramref name="b"/>). Thieves may read these slots
    /// speculatively at the same time; their CAS fails, so the cleared value is never used.
    /// </summary>
    private void ClearTaken(T[] buffer, long t, long b)
    {
        if (!RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            return;
        }

        long from = _cleared;
        if (b - buffer.Length - from > 0)
        {
            from = b - buffer.Length; // older positions share slots with live ones (or were overwritten already)
        }

        if (t - from == 1)
        {
            TAtomics.StorePlain(ref Slot(buffer, from), default!); // plain: a dead slot, as below; the common case (one item taken since the last clear) without a span
            _cleared = t;
            return;
        }

        while (t - from > 0)
        {
            int index = (int)(from & (buffer.Length - 1));
            int run = (int)Math.Min(t - from, buffer.Length - index);
            TAtomics.ClearPlain(buffer.AsSpan(index, run)); // plain: dead slots; only speculative readers race with this
            from += run;
        }

        if (_cleared != t)
        {
            _cleared = t; // only when it moves: a pop of an empty deque again and again stores nothing
        }
    }

    /// <summary>DEBUG builds: top is at most one past the (possibly decremented) bottom and the live range fits the buffer.</summary>
    [Conditional("DEBUG")]
    private readonly void AssertInvariants(T[] buffer, long t, long b)
    {
        Debug.Assert(t - b <= 1, $"top {t} is more than one past bottom {b}");
        Debug.Assert(b - t <= buffer.Length, $"{b - t} live items in a buffer of {buffer.Length}");
        Debug.Assert(t - _cleared >= 0, $"clearing watermark {_cleared} is past top {t}");
    }

    /// <summary>Byte offsets of the fields inside the engine, for the layout unit test.</summary>
    internal (nint Bottom, nint CachedTop, nint Top, nint Buffer, nint Cleared) FieldOffsets()
    {
        ref byte start = ref Unsafe.As<ChaseLevDeque<T, TAtomics>, byte>(ref this);
        return (
            FieldLayout.Offset(ref start, ref _owner.Index),
            FieldLayout.Offset(ref start, ref _owner.Cached),
            FieldLayout.Offset(ref start, ref _top.Value),
            FieldLayout.Offset(ref start, ref _buffer),
            FieldLayout.Offset(ref start, ref _cleared));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref T Slot(T[] buffer, long position) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(buffer), (nint)(position & (buffer.Length - 1)));
}
