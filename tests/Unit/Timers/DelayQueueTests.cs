using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="DelayQueue{T}"/> on a manual clock: visibility, ordering, overflow policies with their accounting,
/// asynchronous waits, completion and bad arguments. Waits that must end are bounded by a generous timeout;
/// nothing asserts that anything is fast.
/// </summary>
public sealed class DelayQueueTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static DelayQueue<int> Create(ManualTimeProvider time, int capacity = 16, OverflowPolicy mode = OverflowPolicy.Reject, Action<int, DropReason>? dropped = null) =>
        new(capacity, new DelayQueueOptions<int> { TimeProvider = time, FullMode = mode, ItemDropped = dropped });

    private static TimeSpan Ms(int ms) => TimeSpan.FromMilliseconds(ms);

    private static List<int> DrainDue(DelayQueue<int> queue)
    {
        var items = new List<int>();
        while (queue.TryDequeue(out int item))
        {
            items.Add(item);
        }

        return items;
    }

    /// <summary>Gives a started wait every chance to park (no assertion depends on it having parked).</summary>
    private static Task Settle() => Task.Delay(50);

    [Fact]
    public void TryDequeue_BeforeDue_IsNeverVisible()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(1, Ms(100)));

        Assert.False(queue.TryDequeue(out _));
        time.Advance(Ms(99));
        Assert.False(queue.TryDequeue(out _));
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void TryDequeue_OnceDue_IsVisible()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(100));

        time.Advance(Ms(100));

        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void TryDequeue_ZeroDelay_IsVisibleAtOnce()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(7, TimeSpan.Zero);

        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(7, item);
    }

    [Fact]
    public void TryDequeue_SeveralDue_ComeOutByDueTimeThenFifo()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(30));
        queue.TryEnqueue(2, Ms(10));
        queue.TryEnqueue(3, Ms(20));
        queue.TryEnqueue(4, Ms(10));
        queue.TryEnqueue(5, Ms(20));

        time.Advance(Ms(15));
        Assert.Equal([2, 4], DrainDue(queue));
        time.Advance(Ms(15));
        Assert.Equal([3, 5, 1], DrainDue(queue));
    }

    [Fact]
    public void TryEnqueue_Reject_FullQueueRejectsWithTimeUntilRootDue()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time, capacity: 2);
        queue.TryEnqueue(1, Ms(50));
        queue.TryEnqueue(2, Ms(80));
        Assert.False(queue.TryDequeue(out _)); // moves the inbox into the heap so the root is known

        WriteResult result = queue.TryEnqueue(3, Ms(1));

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.Full, result.Reason);
        Assert.Equal(Ms(50), result.RetryAfter);
        BackpressureStatistics stats = queue.GetStatistics();
        Assert.Equal((2L, 0L, 0L, 0L, 1L, 2), (stats.Enqueued, stats.Dequeued, stats.DroppedIncoming, stats.Evicted, stats.Rejected, stats.Remaining));
    }

    [Fact]
    public void TryEnqueue_Wait_FullQueueAnswersRejectedWithoutWaiting()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time, capacity: 1, mode: OverflowPolicy.Wait);
        queue.TryEnqueue(1, Ms(50));

        Assert.Equal(WriteOutcome.Rejected, queue.TryEnqueue(2, Ms(1)).Outcome);
    }

    [Fact]
    public void TryEnqueue_DropIncoming_DiscardsAndReportsIncoming()
    {
        var time = new ManualTimeProvider();
        var dropped = new List<(int, DropReason)>();
        using DelayQueue<int> queue = Create(time, capacity: 2, mode: OverflowPolicy.DropIncoming, dropped: (i, r) => dropped.Add((i, r)));
        queue.TryEnqueue(1, Ms(10));
        queue.TryEnqueue(2, Ms(10));

        Assert.Equal(WriteResult.DroppedIncoming, queue.TryEnqueue(3, Ms(1)));

        Assert.Equal([(3, DropReason.Incoming)], dropped);
        time.Advance(Ms(10));
        Assert.Equal([1, 2], DrainDue(queue));
        BackpressureStatistics stats = queue.GetStatistics();
        Assert.Equal((2L, 2L, 1L, 0L, 0), (stats.Enqueued, stats.Dequeued, stats.DroppedIncoming, stats.Evicted, stats.Remaining));
    }

    [Fact]
    public void TryEnqueue_DropOldest_EvictsTheItemDueEarliest()
    {
        var time = new ManualTimeProvider();
        var dropped = new List<(int, DropReason)>();
        using DelayQueue<int> queue = Create(time, capacity: 3, mode: OverflowPolicy.DropOldest, dropped: (i, r) => dropped.Add((i, r)));
        queue.TryEnqueue(1, Ms(30));
        queue.TryEnqueue(2, Ms(10));
        queue.TryEnqueue(3, Ms(20));

        Assert.Equal(WriteResult.EvictedOldest, queue.TryEnqueue(4, Ms(40)));

        Assert.Equal([(2, DropReason.Oldest)], dropped);
        time.Advance(Ms(40));
        Assert.Equal([3, 1, 4], DrainDue(queue));
        BackpressureStatistics stats = queue.GetStatistics();
        Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);
        Assert.Equal((4L, 3L, 1L), (stats.Enqueued, stats.Dequeued, stats.Evicted));
    }

    [Fact]
    public void TryEnqueue_DropCallback_RunsOutsideTheConsumerLock()
    {
        var time = new ManualTimeProvider();
        DelayQueue<int>? queue = null;
        bool dequeuedInCallback = false;
        queue = Create(time, capacity: 1, mode: OverflowPolicy.DropOldest, dropped: (_, _) =>
        {
            // Another thread must be able to take the consumer lock while the callback runs.
            dequeuedInCallback = Task.Run(() => queue!.TryDequeue(out _)).Wait(Generous);
        });
        queue.TryEnqueue(1, TimeSpan.Zero);

        queue.TryEnqueue(2, TimeSpan.Zero);

        Assert.True(dequeuedInCallback);
        queue.Dispose();
    }

    [Fact]
    public async Task DequeueAsync_ItemComesDue_Completes()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(5, Ms(100));
        ValueTask<int> pending = queue.DequeueAsync();
        await Settle();
        Assert.False(pending.IsCompleted);

        time.Advance(Ms(100));

        Assert.Equal(5, await pending.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task DequeueAsync_EmptyThenEnqueued_Completes()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        ValueTask<int> pending = queue.DequeueAsync();
        await Settle();
        Assert.False(pending.IsCompleted);

        queue.TryEnqueue(3, TimeSpan.Zero);

        Assert.Equal(3, await pending.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task DequeueAsync_EarlierItemArrivesWhileArmedForLater_WakesAtTheEarlier()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(100));
        ValueTask<int> pending = queue.DequeueAsync();
        await Settle();

        queue.TryEnqueue(2, Ms(10));
        await Settle(); // the woken reader re-arms for the earlier item
        time.Advance(Ms(10));

        Assert.Equal(2, await pending.AsTask().WaitAsync(Generous));
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public async Task DequeueAsync_TwoReadersTwoItemsDueAtOnce_BothComplete()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(10));
        queue.TryEnqueue(2, Ms(10));
        Task<int> a = queue.DequeueAsync().AsTask();
        Task<int> b = queue.DequeueAsync().AsTask();
        await Settle();

        time.Advance(Ms(10));

        int[] items = await Task.WhenAll(a, b).WaitAsync(Generous);
        Assert.Equal([1, 2], items.Order());
    }

    [Fact]
    public async Task DequeueAsync_TwoReadersItemsDueApart_EachCompletesAtItsDueTime()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(10));
        queue.TryEnqueue(2, Ms(20));
        Task<int> a = queue.DequeueAsync().AsTask();
        Task<int> b = queue.DequeueAsync().AsTask();
        await Settle();

        time.Advance(Ms(10));
        int first = await Task.WhenAny(a, b).Unwrap().WaitAsync(Generous);
        await Settle(); // the reader that took it arms the wake-up for the next item
        Assert.Equal(1, first);
        Assert.False(a.IsCompleted && b.IsCompleted);

        time.Advance(Ms(10));
        int[] items = await Task.WhenAll(a, b).WaitAsync(Generous);
        Assert.Equal([1, 2], items.Order());
    }

    [Fact]
    public async Task DequeueAsync_Cancelled_LeavesNoTrace()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(100));
        using var cts = new CancellationTokenSource();
        ValueTask<int> pending = queue.DequeueAsync(cts.Token);
        await Settle();

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().WaitAsync(Generous));
        Assert.Equal(1, queue.Count);
        time.Advance(Ms(100));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
    }

    [Fact]
    public async Task DequeueAsync_CancelledBeforeCall_ReturnsCanceled()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, TimeSpan.Zero);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queue.DequeueAsync(new CancellationToken(true)).AsTask());
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public async Task EnqueueAsync_WaitOnFull_CompletesWhenAReaderFreesRoom()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time, capacity: 1, mode: OverflowPolicy.Wait);
        queue.TryEnqueue(1, TimeSpan.Zero);
        ValueTask<WriteResult> pending = queue.EnqueueAsync(2, Ms(5));
        await Settle();
        Assert.False(pending.IsCompleted);

        Assert.True(queue.TryDequeue(out _));

        Assert.Equal(WriteResult.Accepted, await pending.AsTask().WaitAsync(Generous));
        time.Advance(Ms(5));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(2, item);
    }

    [Fact]
    public async Task Complete_PendingItems_AreDrainedThenCompletionFinishes()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(10));
        queue.Complete();

        Assert.Equal(WriteResult.Completed, queue.TryEnqueue(2, TimeSpan.Zero));
        Assert.False(queue.Completion.IsCompleted);
        ValueTask<int> pending = queue.DequeueAsync();
        time.Advance(Ms(10));
        Assert.Equal(1, await pending.AsTask().WaitAsync(Generous));
        await queue.Completion.WaitAsync(Generous);
        await Assert.ThrowsAsync<InvalidOperationException>(() => queue.DequeueAsync().AsTask().WaitAsync(Generous));
        Assert.Throws<InvalidOperationException>(() => queue.Complete());
    }

    [Fact]
    public async Task Dispose_EmptyQueueWithParkedReader_IsWokenWithObjectDisposed()
    {
        // Empty at Dispose: the queue is also completed and drained. Before, the reader saw the completion's
        // InvalidOperationException ("completed and empty") instead of the documented ObjectDisposedException.
        var time = new ManualTimeProvider();
        DelayQueue<int> queue = Create(time);
        ValueTask<int> pending = queue.DequeueAsync();
        await Settle();

        queue.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.DequeueAsync().AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task Dispose_ParkedReader_IsWokenWithObjectDisposed()
    {
        var time = new ManualTimeProvider();
        DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(1, Ms(10));
        ValueTask<int> pending = queue.DequeueAsync();
        await Settle();

        queue.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.AsTask().WaitAsync(Generous));
        Assert.Throws<ObjectDisposedException>(() => queue.TryEnqueue(2, TimeSpan.Zero));
        Assert.Equal(0, time.ActiveTimers);
    }

    [Fact]
    public void GetTimeUntilNextDue_ReportsTheRoot()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        Assert.Null(queue.GetTimeUntilNextDue());
        queue.TryEnqueue(1, Ms(40));
        time.Advance(Ms(15));
        Assert.Equal(Ms(25), queue.GetTimeUntilNextDue());
        time.Advance(Ms(30));
        Assert.Equal(TimeSpan.Zero, queue.GetTimeUntilNextDue());
    }

    [Fact]
    public void Metrics_NamedQueue_ReportsDepthAndAccountingUnderTheLockFreeMeter()
    {
        string name = $"delay-{Guid.NewGuid():N}";
        var values = new Dictionary<string, double>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == BackpressureMetrics.NameTag && (string?)tag.Value == name)
                {
                    lock (values)
                    {
                        values[instrument.Name] = value;
                    }
                }
            }
        });
        listener.Start();
        var time = new ManualTimeProvider();
        using var queue = new DelayQueue<int>(2, new DelayQueueOptions<int> { TimeProvider = time, Name = name, FullMode = OverflowPolicy.Reject });
        queue.TryEnqueue(1, TimeSpan.Zero);
        queue.TryEnqueue(2, Ms(10));
        queue.TryEnqueue(3, Ms(10)); // rejected
        queue.TryDequeue(out _);

        listener.RecordObservableInstruments();

        Assert.Equal(1, values["lockfree.queue.depth"]);
        Assert.Equal(2, values["lockfree.queue.capacity"]);
        Assert.Equal(2, values["lockfree.queue.enqueued"]);
        Assert.Equal(1, values["lockfree.queue.dequeued"]);
        Assert.Equal(1, values["lockfree.queue.rejected"]);
    }

    [Fact]
    public void Constructor_BadArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DelayQueue<int>(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DelayQueue<int>((1 << 30) + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DelayQueue<int>(4, new DelayQueueOptions<int> { FullMode = (OverflowPolicy)42 }));
        Assert.Throws<ArgumentNullException>(() => new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = null! }));
    }

    [Fact]
    public void TryEnqueue_BadDelay_ThrowsAndQueueStaysUsable()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.TryEnqueue(1, Ms(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.TryEnqueue(1, DelayQueue<int>.MaxDelay + TimeSpan.FromTicks(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.EnqueueAsync(1, Ms(-1)));

        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(1, DelayQueue<int>.MaxDelay));
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void Capacity_IsExact()
    {
        using var queue = new DelayQueue<int>(3, new DelayQueueOptions<int> { FullMode = OverflowPolicy.Reject });
        Assert.Equal(3, queue.Capacity);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(i, TimeSpan.FromHours(1)));
        }

        Assert.Equal(WriteOutcome.Rejected, queue.TryEnqueue(9, TimeSpan.FromHours(1)).Outcome);
    }
}
