using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Queues;

// The index and slot accessors of SequencedRing (see "Encoding" and "Gating" in the design note in SequencedRing.cs):
// loads and claims of the tail and head, the publish and release of a slot, the reads of the other side's index where
// a full or empty answer linearizes, the cached copies, and the slot address.
internal partial struct SequencedRing<T, TAtomics, TProducers, TConsumers>
    where TAtomics : struct, IAtomics
    where TProducers : struct, IRolePolicy
    where TConsumers : struct, IRolePolicy
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadTail() =>
        TProducers.IsSingle
            ? TAtomics.LoadOwn(ref _producers.Index) // plain: only the single producer writes the tail (its own store)
            : TAtomics.LoadAcquire(ref _producers.Index); // acquire: a start point for the claim; the CAS validates it

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadHead() =>
        TConsumers.IsSingle
            ? TAtomics.LoadOwn(ref _consumers.Index) // plain: only the single consumer writes the head (its own store)
            : TAtomics.LoadAcquire(ref _consumers.Index); // acquire: a start point for the claim; the CAS validates it

    /// <summary>Claims positions [position, position + count) for this producer; a single producer needs no claim.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ClaimTail(long position, long count) =>
        TProducers.IsSingle
        || TAtomics.CompareExchange(ref _producers.Index, position + count, position) == position; // full fence: the claim

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ClaimHead(long position, long count) =>
        TConsumers.IsSingle
        || TAtomics.CompareExchange(ref _consumers.Index, position + count, position) == position; // full fence: the claim

    /// <summary>Publishes the item of <paramref name="position"/>; a single producer then moves the tail to <paramref name="newTail"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PublishSlot(ref SequencedSlot<T> slot, long position, long newTail)
    {
        TAtomics.StoreRelease(ref slot.Sequence, (position << 1) | 1); // release: publishes the item; pairs with the acquire in the dequeue methods
        if (TProducers.IsSingle)
        {
            TAtomics.StoreRelease(ref _producers.Index, newTail); // release: opens the consumers' gate after the publish
        }
    }

    /// <summary>Hands the slot of <paramref name="position"/> to the producer one lap ahead; a single consumer then moves the head to <paramref name="newHead"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseSlot(ref SequencedSlot<T> slot, long position, long newHead)
    {
        TAtomics.StoreRelease(ref slot.Sequence, (position + _capacity) << 1); // release: the item is read and cleared; pairs with the acquire in the enqueue methods
        if (TConsumers.IsSingle)
        {
            TAtomics.StoreRelease(ref _consumers.Index, newHead); // release: opens the producers' gate after the release
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T TakeItem(ref SequencedSlot<T> slot)
    {
        T item = TAtomics.LoadPlain(ref slot.Item); // plain: ordered after the acquire of the published Sequence
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            TAtomics.StorePlain(ref slot.Item, default!); // plain: the slot is ours until its release
        }

        return item;
    }

    /// <summary>Many producers: whether one has claimed <paramref name="position"/> (the tail is past it); the read is where an empty answer linearizes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ProducerInFlight(long position) =>
        (TAtomics.LoadAcquire(ref _producers.Index) & ~ClosedBit) > position; // acquire: pairs with the claim CAS

    /// <summary>Many consumers: whether one has claimed <c>position - capacity</c> (the head is past it); the read is where a full answer linearizes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ConsumerInFlight(long position) =>
        position - TAtomics.LoadAcquire(ref _consumers.Index) < _capacity; // acquire: pairs with the claim CAS

    /// <summary>
    /// Single consumer: free positions from <paramref name="position"/> on, by the cached head when it shows at
    /// least <paramref name="wanted"/>, otherwise by the real head (whose read is where a full answer linearizes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long RoomAt(long position, int wanted)
    {
        long cached = LoadCachedHead();
        long room = _capacity - (position - cached);
        if (room >= wanted)
        {
            return room;
        }

        long head = TAtomics.LoadAcquire(ref _consumers.Index); // acquire: pairs with the consumer's release of the head
        if (head - cached > 0)
        {
            StoreCachedHead(head); // only when it moved: many producers share this line, and a full ring's refusals all reread one head (session 22)
        }

        return _capacity - (position - head);
    }

    /// <summary>
    /// Single producer: items from <paramref name="position"/> on, by the cached tail when it shows at least
    /// <paramref name="wanted"/>, otherwise by the real tail (whose read is where an empty answer linearizes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long AvailableAt(long position, int wanted)
    {
        long cached = LoadCachedTail();
        long available = cached - position;
        if (available >= wanted)
        {
            return available;
        }

        long tail = TAtomics.LoadAcquire(ref _producers.Index); // acquire: pairs with the producer's release of the tail
        if (tail - cached > 0)
        {
            StoreCachedTail(tail); // only when it moved: many consumers share this line, and an empty ring's polls all reread one tail (session 22)
        }

        return tail - position;
    }

    // The cached copies: private to a single producer (consumer), plain; a shared hint among many producers
    // (consumers): a stale or reordered hint is safe because every value ever stored is a real index that only grows,
    // so the hint only ever lags.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadCachedHead() => LoadHint(ref _producers.Cached, shared: !TProducers.IsSingle);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreCachedHead(long head) => StoreHint(ref _producers.Cached, head, shared: !TProducers.IsSingle);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long LoadCachedTail() => LoadHint(ref _consumers.Cached, shared: !TConsumers.IsSingle);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreCachedTail(long tail) => StoreHint(ref _consumers.Cached, tail, shared: !TConsumers.IsSingle);

    /// <summary>
    /// A hint word (a cached index, a poll state): plain when one thread owns it; through the seam as acquire when
    /// several threads of a side share it (a plain move on x64, and visible to the controlled scheduler). Every caller
    /// passes a constant <paramref name="shared"/>, folded away once inlined.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long LoadHint(ref long word, bool shared) =>
        shared ? TAtomics.LoadAcquire(ref word) : word; // acquire: pairs with StoreHint's release

    /// <summary>Stores a hint word: plain when one thread owns it, release when a side shares it (see <see cref="LoadHint"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreHint(ref long word, long value, bool shared)
    {
        if (shared)
        {
            TAtomics.StoreRelease(ref word, value); // release: a hint for the side's other threads
        }
        else
        {
            word = value; // plain: private to the one thread of its side
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly ref SequencedSlot<T> Slot(long position) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), (nint)(position & _mask) + SlotPadding);
}
