namespace LockFree.Internal;

/// <summary>An item count that never exceeds a bound: the admission step of the queues whose bound is exact (not a ring's).</summary>
internal static class BoundedCount
{
    /// <summary>
    /// Adds one to <paramref name="count"/> unless it has reached <paramref name="bound"/>. Lock-free: a CAS loop that
    /// retries only when another thread changed the count. The CAS is a full fence.
    /// </summary>
    public static bool TryReserve(ref long count, long bound) => TryReserve<RealAtomics>(ref count, bound);

    /// <summary>As <see cref="TryReserve(ref long, long)"/>, through the atomics seam <typeparamref name="TAtomics"/> (the composed build's callers).</summary>
    public static bool TryReserve<TAtomics>(ref long count, long bound)
        where TAtomics : struct, IAtomics
    {
        long current = TAtomics.LoadAcquire(ref count);
        while (current < bound)
        {
            long seen = TAtomics.CompareExchange(ref count, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }
}
