namespace LockFree.Internal;

/// <summary>
/// Statistics counters (up to <see cref="MaxCounters"/>) striped over padded slots picked by the current processor, one
/// cache line per stripe holding all of them: threads counting at once on different cores rarely share a line, so an
/// add is an uncontended atomic add; a read sums one counter over the stripes (a snapshot; each slot read with acquire,
/// in stripe order). Also the keyed rate limiter's failed-lease count (one counter; until session 16 a one-counter
/// twin of this class).
/// </summary>
/// <remarks>
/// Session 16: the back-pressure buffer's overflow counters with many writers. A full buffer under contention counted
/// every eviction three times (in flight, evicted, out of flight) and every drop or rejection once on lines all its
/// writers shared, a cross-core transfer each; striped, the lines stay with their cores.
/// </remarks>
internal sealed class StripedCounterSet
{
    /// <summary>Longs between two stripes: one <see cref="CacheLine.Size"/> (at least <see cref="MaxCounters"/>).</summary>
    private const int Stride = CacheLine.Size / sizeof(long);

    /// <summary>Counters per set: they share each stripe's line.</summary>
    public const int MaxCounters = 8;

    /// <summary>At most this many stripes (2 KB).</summary>
    private const int MaxStripes = 16;

    private readonly long[] _slots;
    private readonly int _mask;

    public StripedCounterSet()
    {
        int stripes = (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Environment.ProcessorCount), MaxStripes);
        _mask = stripes - 1;
        _slots = new long[(stripes + 1) * Stride]; // stripe i at (i + 1) * Stride: padding before the first
    }

    /// <summary>Test seam (null in production): the stripe an <see cref="Add"/> uses instead of this processor's.</summary>
    internal Func<int>? StripeOverride;

    /// <summary>Test seam (null in production): runs in <see cref="Sum"/> after each stripe's read, with (counter, stripe).</summary>
    internal Action<int, int>? AfterStripeRead;

    /// <summary>The number of stripes.</summary>
    internal int Stripes => _mask + 1;

    /// <summary>
    /// Adds <paramref name="delta"/> to counter <paramref name="counter"/> (in [0, <see cref="MaxCounters"/>)) on this
    /// processor's stripe; a full fence. Returns the stripe, for a later <see cref="AddAt"/> that must land on the same one.
    /// </summary>
    public int Add(int counter, long delta)
    {
        int stripe = StripeOverride is { } chosen ? chosen() & _mask : Thread.GetCurrentProcessorId() & _mask;
        AddAt(stripe, counter, delta);
        return stripe;
    }

    /// <summary>
    /// Adds <paramref name="delta"/> to counter <paramref name="counter"/> on stripe <paramref name="stripe"/> (one an
    /// <see cref="Add"/> returned); a full fence. A mark and its unmark (+1, then -1) must land on one stripe: on two, a
    /// <see cref="Sum"/> that reads the mark's stripe before the mark and the unmark's after the unmark sees -1 alone.
    /// </summary>
    public void AddAt(int stripe, int counter, long delta) =>
        Interlocked.Add(ref _slots[((stripe + 1) * Stride) + counter], delta);

    /// <summary>Counter <paramref name="counter"/> summed over the stripes (a snapshot, not atomic: see <see cref="AddAt"/>).</summary>
    public long Sum(int counter)
    {
        long sum = 0;
        for (int i = 1; i <= _mask + 1; i++)
        {
            sum += Volatile.Read(ref _slots[(i * Stride) + counter]); // acquire: in stripe order
            AfterStripeRead?.Invoke(counter, i - 1);
        }

        return sum;
    }
}
