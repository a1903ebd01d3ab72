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

    /// <summary>
    /// The totals of a finished round of <paramref name="producers"/> (each answering its waits) and
    /// <paramref name="consumers"/> (each answering its sum and waits): the consumers' sum, the writes and reads that waited.
    /// </summary>
    public static (long Sum, long WriteWaits, long ReadWaits) Totals(Task<long>[] producers, Task<(long Sum, long Waits)>[] consumers)
    {
        long sum = 0, writeWaits = 0, readWaits = 0;
        for (int i = 0; i < consumers.Length; i++)
        {
            writeWaits += producers[i].Result;
            sum += consumers[i].Result.Sum;
            readWaits += consumers[i].Result.Waits;
        }

        return (sum, writeWaits, readWaits);
    }
}
