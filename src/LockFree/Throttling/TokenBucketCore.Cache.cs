using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Throttling;

// The per-thread token caches of TokenBucketCore (see "Thread caches" in the design note in TokenBucketCore.cs): the
// refill of a thread's cache from the batch word, and the epoch bump that ends every cache before a settlement.
internal partial struct TokenBucketCore<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>
    /// Tokens a thread caches at once for a batch of <paramref name="batch"/>: <c>batch / 64</c> up to 16, none below a
    /// batch of 128. 16 already amortises the CAS to a few tenths of a nanosecond; larger caches only waste more (each
    /// settlement kills the other threads' leftovers).
    /// </summary>
    public static long DefaultThreadCache(long batch) => batch >= 128 ? Math.Min(batch / 64, 16) : 0;

    /// <summary>Tokens a thread takes into its cache at once (0: no caches).</summary>
    public readonly long ThreadCache => _threadCache;

    /// <summary>Threads that have a cache slot on this bucket (tests).</summary>
    public readonly int CachedThreads => _cache?.SlotCount ?? 0;

    /// <summary>
    /// The calling thread's cache could not serve: take <see cref="ThreadCache"/> tokens from the batch with one CAS and
    /// keep the rest, or (a request as large as a cache, a batch nearly drained, a thread id beyond the table) take the
    /// request alone.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TakeAndCache(ThreadTokenCache cache, long tokens, long epoch)
    {
        long take = _threadCache;
        if (tokens < take && cache.OwnSlot() is { } slot)
        {
            long word = TAtomics.LoadAcquire(ref _fast.Value); // acquire: pairs with the owner's release store of a new batch
            if ((ulong)(word - take) <= CountMask && word > take // no flag set, and more than a cache left: the last tokens go one at a time, so the drain settles promptly
                && TAtomics.CompareExchange(ref _fast.Value, word - take, word) == word) // full fence: takes the cache's tokens; pairs with other takers and the owner's close
            {
                long leftover = slot.Cell.Epoch == epoch ? slot.Cell.Left : 0; // plain: our own slot
                if (TAtomics.LoadAcquire(ref _epoch) == epoch) // acquire: unchanged across the CAS, so the batch we took from is this epoch's (see design)
                {
                    slot.Cell.Epoch = epoch;                   // plain: our own slot
                    slot.Cell.Left = leftover + take - tokens; // plain: our own slot
                }

                return true; // the request's tokens, taken at the CAS; if the epoch moved, the rest is dead (charged, never admitted)
            }
        }

        return TryTakeWord(tokens);
    }

    /// <summary>
    /// Owner only, before a settlement's clock read (or before setting Waiting): moves the cache epoch on, so every
    /// thread cache filled so far is dead. The locked add is a full fence: a cached admission that loaded the old
    /// epoch precedes it, and so precedes the clock read that charges its token.
    /// </summary>
    private void EndCacheEpoch()
    {
        if (_cache is not null && !_plantedSkipEpochBump)
        {
            TAtomics.Add(ref _epoch, 1); // full fence: pairs with the cached admissions' acquire load of _epoch
        }
    }
}
