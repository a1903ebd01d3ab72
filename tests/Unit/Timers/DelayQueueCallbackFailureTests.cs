using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// A throwing <see cref="DelayQueueOptions{T}.ItemDropped"/> handler: the enqueue answers its true outcome (before, the
/// exception reached the enqueuer after the drop or eviction had happened, so a caller retrying on it enqueued twice),
/// the failure is counted and handed to <see cref="DelayQueue{T}.CallbackFailed"/>, and the queue's accounting holds.
/// </summary>
public sealed class DelayQueueCallbackFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static (DelayQueue<int> Queue, List<Exception> Reported) Create(OverflowPolicy mode)
    {
        var queue = new DelayQueue<int>(1, new DelayQueueOptions<int>
        {
            TimeProvider = new ManualTimeProvider(),
            FullMode = mode,
            ItemDropped = static (item, _) => throw new InvalidOperationException($"drop handler failed on {item}"),
        });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, error) => reported.Add(error);
        return (queue, reported);
    }

    [Fact]
    public void TryEnqueue_DropIncomingHandlerThrows_AnswersDroppedAndReports()
    {
        (DelayQueue<int> queue, List<Exception> reported) = Create(OverflowPolicy.DropIncoming);
        using (queue)
        {
            Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(1, TimeSpan.Zero));

            Assert.Equal(WriteResult.DroppedIncoming, queue.TryEnqueue(2, TimeSpan.Zero));

            Assert.Equal(1, queue.CallbackFailures);
            Assert.Equal("drop handler failed on 2", Assert.Single(reported).Message);
            Assert.Equal(1, queue.GetStatistics().DroppedIncoming);
            Assert.True(queue.TryDequeue(out int item));
            Assert.Equal(1, item);
        }
    }

    [Fact]
    public async Task EnqueueAsync_DropOldestHandlerThrows_AnswersEvictedKeepsTheNewItemAndReports()
    {
        (DelayQueue<int> queue, List<Exception> reported) = Create(OverflowPolicy.DropOldest);
        using (queue)
        {
            Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(1, TimeSpan.Zero));

            Assert.Equal(WriteResult.EvictedOldest, await queue.EnqueueAsync(2, TimeSpan.Zero).AsTask().WaitAsync(Generous));

            Assert.Equal(1, queue.CallbackFailures);
            Assert.Equal("drop handler failed on 1", Assert.Single(reported).Message);
            BackpressureStatistics stats = queue.GetStatistics();
            Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);
            Assert.True(queue.TryDequeue(out int item));
            Assert.Equal(2, item);
        }
    }

    [Fact]
    public void TryEnqueue_FailureHandlerThrowsToo_StillAnswersAndCountsOnce()
    {
        (DelayQueue<int> queue, _) = Create(OverflowPolicy.DropIncoming);
        using (queue)
        {
            queue.CallbackFailed += static (_, _) => throw new InvalidOperationException("observer failed");
            queue.TryEnqueue(1, TimeSpan.Zero);

            Assert.Equal(WriteResult.DroppedIncoming, queue.TryEnqueue(2, TimeSpan.Zero));
            Assert.Equal(1, queue.CallbackFailures);
        }
    }
}
