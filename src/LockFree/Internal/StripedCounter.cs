namespace LockFree.Internal;

/// <summary>
/// A statistics counter striped over padded slots picked by the current processor, so threads counting at once
/// rarely share a cache line: an increment is an uncontended atomic add; a read sums the slots (a snapshot).
/// </summary>
internal sealed class StripedCounter
{
    /// <summary>Longs between two slots: one <see cref="CacheLine.Size"/>.</summary>
    private const int Stride = CacheLine.Size / sizeof(long);

    /// <summary>At most this many stripes (2 KB): enough to spread a few hot threads, small enough for one per limiter.</summary>
    private const int MaxStripes = 16;

    private readonly long[] _slots;
    private readonly int _mask;

    public StripedCounter()
    {
        int stripes = (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Environment.ProcessorCount), MaxStripes);
        _mask = stripes - 1;
        _slots = new long[(stripes + 1) * Stride]; // slot i at (i + 1) * Stride: padding before the first
    }

    public void Increment() => Interlocked.Increment(ref _slots[((Thread.GetCurrentProcessorId() & _mask) + 1) * Stride]);

    public long Sum()
    {
        long sum = 0;
        for (int i = 1; i <= _mask + 1; i++)
        {
            sum += Volatile.Read(ref _slots[i * Stride]);
        }

        return sum;
    }
}
