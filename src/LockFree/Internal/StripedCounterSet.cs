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

    /// <summary>Adds <paramref name="delta"/> to counter <paramref name="counter"/> (in [0, <see cref="MaxCounters"/>)) on this processor's stripe; a full fence.</summary>
    public void Add(int counter, long delta) =>
        Interlocked.Add(ref _slots[(((Thread.GetCurrentProcessorId() & _mask) + 1) * Stride) + counter], delta);

    /// <summary>Counter <paramref name="counter"/> summed over the stripes (a snapshot).</summary>
    public long Sum(int counter)
    {
        long sum = 0;
        for (int i = 1; i <= _mask + 1; i++)
        {
            sum += Volatile.Read(ref _slots[(i * Stride) + counter]); // acquire: in stripe order
        }

        return sum;
    }
}
