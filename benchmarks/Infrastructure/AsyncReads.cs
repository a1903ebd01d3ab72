using System.Threading.Channels;

namespace LockFree.Benchmarks.Infrastructure;

/// <summary>The asynchronous consumer loops the back-pressure benchmarks share: read a count of longs, sum them, count the reads that waited.</summary>
public static class AsyncReads
{
    /// <summary>Reads <paramref name="count"/> items with <c>ReadAsync</c>; their sum and how many reads did not complete synchronously.</summary>
    public static async Task<(long Sum, long Waits)> FromBuffer(BackpressureBuffer<long> buffer, long count)
    {
        long sum = 0, waits = 0;
        for (long i = 0; i < count; i++)
        {
            ValueTask<long> read = buffer.ReadAsync();
            waits += read.IsCompleted ? 0 : 1;
            sum += await read.ConfigureAwait(false);
        }

        return (sum, waits);
    }

    /// <summary>As <see cref="FromBuffer"/>, from a channel reader.</summary>
    public static async Task<(long Sum, long Waits)> FromChannel(ChannelReader<long> reader, long count)
    {
        long sum = 0, waits = 0;
        for (long i = 0; i < count; i++)
        {
            ValueTask<long> read = reader.ReadAsync();
            waits += read.IsCompleted ? 0 : 1;
            sum += await read.ConfigureAwait(false);
        }

        return (sum, waits);
    }
}
