using System.Collections.Concurrent;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Review of session 12 (s12-rev): the pooled parked operations under churn. Writers and readers whose waits end every
/// way at once (a read's signal, a short timeout, a cancellation, completion) on a one-slot buffer, with results taken on
/// whatever thread ends the wait, and the operations and waiters recycled all along: every item accepted is read exactly
/// once, no write reports success for an item not in the buffer, nothing hangs, and each call reports one of the
/// documented outcomes.
/// </summary>
public sealed class BackpressurePooledOperationChurnTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ParkedWritesAndReads_EndedEveryWay_NoItemLostOrDuplicated(bool single)
    {
        const int Writers = 4;
        const int PerWriter = 1_500;
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            SingleReader = single,
        });
        var accepted = new ConcurrentDictionary<int, byte>();
        var read = new ConcurrentDictionary<int, int>();
        int unexpected = 0;

        Task[] writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            for (int i = 0; i < PerWriter; i++)
            {
                int item = (w * PerWriter) + i;
                using var cts = new CancellationTokenSource();
                if (random.Next(4) == 0)
                {
                    cts.CancelAfter(random.Next(0, 2));
                }

                TimeSpan timeout = random.Next(3) == 0 ? TimeSpan.FromMilliseconds(random.Next(0, 3)) : Timeout.InfiniteTimeSpan;
                try
                {
                    WriteResult result = await buffer.WriteAsync(item, OverflowPolicy.Wait, timeout, cts.Token);
                    if (result.Outcome == WriteOutcome.Accepted)
                    {
                        accepted[item] = 0;
                    }
                    else if (result.Outcome is not (WriteOutcome.Rejected or WriteOutcome.Completed))
                    {
                        Interlocked.Increment(ref unexpected);
                    }
                }
                catch (OperationCanceledException error) when (error.CancellationToken == cts.Token)
                {
                }
            }
        })).ToArray();

        int readers = single ? 1 : 3;
        Task[] readerTasks = Enumerable.Range(0, readers).Select(r => Task.Run(async () =>
        {
            var random = new Random(100 + r);
            while (true)
            {
                using var cts = new CancellationTokenSource();
                if (random.Next(5) == 0)
                {
                    cts.CancelAfter(random.Next(0, 2));
                }

                try
                {
                    int item = await buffer.ReadAsync(cts.Token);
                    read.AddOrUpdate(item, 1, (_, n) => n + 1);
                }
                catch (OperationCanceledException error) when (error.CancellationToken == cts.Token)
                {
                }
                catch (InvalidOperationException) when (buffer.IsCompleted)
                {
                    return; // completed and drained
                }
            }
        })).ToArray();

        await Task.WhenAll(writers).WaitAsync(Generous);
        buffer.Complete();
        await Task.WhenAll(readerTasks).WaitAsync(Generous);

        Assert.Equal(0, unexpected);
        Assert.All(read, pair => Assert.Equal(1, pair.Value)); // never read twice
        Assert.Equal(accepted.Keys.OrderBy(k => k), read.Keys.OrderBy(k => k)); // every accepted item read, nothing else
    }
}
