using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// <see cref="BackpressureBuffer{T}.GetStatistics"/> read while writers evict (DropOldest): the counts a snapshot gives
/// must be ones the buffer went through (the metrics publish them as monotonic counters). Bounded, real threads.
/// </summary>
public sealed class BackpressureStatisticsRaceTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void GetStatistics_WhileWritersEvictAndNobodyReads_DequeuedStaysZero(bool singleWriter)
    {
        // Before, Dequeued was derived as the head's position minus the eviction count, and an eviction moves the head
        // before it is counted: a snapshot in between counted the evicted item as read (Dequeued 1 with no reader), and
        // the next one took it back (the lockfree.queue.dequeued counter went down).
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 4, FullMode = OverflowPolicy.DropOldest, SingleWriter = singleWriter,
        });
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
        }

        using var stop = new CancellationTokenSource();
        int writers = singleWriter ? 1 : 2;
        var evictors = new Thread[writers];
        for (int w = 0; w < writers; w++)
        {
            evictors[w] = new Thread(() =>
            {
                int n = 0;
                while (!stop.IsCancellationRequested)
                {
                    buffer.TryWrite(n++);
                }
            }) { IsBackground = true };
            evictors[w].Start();
        }

        long worst = 0;
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
            for (int sample = 0; sample < 5_000_000 && worst == 0 && DateTime.UtcNow < deadline; sample++)
            {
                worst = Math.Max(worst, buffer.GetStatistics().Dequeued);
            }
        }
        finally
        {
            stop.Cancel();
            foreach (Thread t in evictors)
            {
                Assert.True(t.Join(TimeSpan.FromSeconds(30)));
            }
        }

        Assert.Equal(0, worst);
        BackpressureStatistics final = buffer.GetStatistics();
        Assert.Equal(final.Enqueued, final.Dequeued + final.Evicted + final.Remaining);
        Assert.Equal(0, final.Dequeued);
    }
}
