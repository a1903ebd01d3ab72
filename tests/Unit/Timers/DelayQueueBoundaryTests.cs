using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Contract points of <see cref="DelayQueue{T}"/> that a mutation run of session 14 found untested (Stryker on
/// DelayQueue.cs: each check below could be deleted, or never ran, with every unit test still passing). Session 15 added
/// the ones that run left (the wake-up's arming conditions are in <see cref="DelayQueueWakeupArmingTests"/>).
/// </summary>
public sealed class DelayQueueBoundaryTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public void Ctor_NullTimeProvider_ThrowsNamingIt()
    {
        ArgumentNullException e = Assert.Throws<ArgumentNullException>(() => new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = null! }));
        Assert.Equal("options.TimeProvider", e.ParamName);
    }

    [Theory]
    [InlineData(OverflowPolicy.Reject)]
    [InlineData(OverflowPolicy.Wait)]
    [InlineData(OverflowPolicy.DropIncoming)]
    [InlineData(OverflowPolicy.DropOldest)]
    public void TryEnqueue_FullAndCompleted_AnswersCompletedAndEvictsDropsOrRejectsNothing(OverflowPolicy mode)
    {
        // A completed queue takes nothing, full or not. Without the completed check on the full path the write fell to
        // its policy: rejected (and counted), dropped (and reported), or, under DropOldest, it evicted a held item.
        var dropped = new List<int>();
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { FullMode = mode, TimeProvider = new ManualTimeProvider(), ItemDropped = (item, _) => dropped.Add(item) });
        Assert.True(queue.TryEnqueue(1, TimeSpan.Zero).IsAccepted);
        queue.Complete();

        Assert.Equal(WriteOutcome.Completed, queue.TryEnqueue(2, TimeSpan.Zero).Outcome);

        Assert.Empty(dropped);
        BackpressureStatistics stats = queue.GetStatistics();
        Assert.Equal((0L, 0L, 0L), (stats.DroppedIncoming, stats.Evicted, stats.Rejected));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
    }

    [Fact]
    public void GetTimeUntilNextDue_LeavesTheConsumerLockFree()
    {
        // It drains the inbox under the consumer lock; a reader on another thread must get the lock afterwards. (Kept on
        // this thread throughout: the lock is reentrant, so a lock left held fails the wait here, not the Dispose.)
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = new ManualTimeProvider() });
        Assert.True(queue.TryEnqueue(1, TimeSpan.Zero).IsAccepted);
        Assert.Equal(TimeSpan.Zero, queue.GetTimeUntilNextDue());

        bool taken = false;
        var reader = new Thread(() => taken = queue.TryDequeue(out _)) { IsBackground = true }; // a due root: this take needs the lock
        reader.Start();
        Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "the consumer lock was left held");
        Assert.True(taken);
    }

    [Theory]
    [InlineData(864_000_000_000L)] // one day of ticks
    [InlineData(-864_000_000_000L)] // a clock with negative timestamps
    public void Restore_DueAtOnceAndTheClockThrows_DueNowWhateverTheClocksRange(long start)
    {
        // An owner's put-back due at once whose reading throws is due before everything, without a reading: not at
        // timestamp 0 (which is a day ahead of a clock reading -1 day), and its time until due is zero (not the distance
        // from the "due now" mark to the clock).
        var clock = new FailingReadingClock(new ManualTimeProvider(start));
        using var queue = new DelayQueue<int>(2, new DelayQueueOptions<int> { TimeProvider = clock });
        clock.FailReading(1);
        queue.Restore(7, TimeSpan.Zero);
        Assert.Equal(1, queue.ClockFailureCount);

        Assert.Equal(TimeSpan.Zero, queue.GetTimeUntilNextDue());
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(7, item);
    }

    [Fact]
    public void Dispose_NamedQueue_StopsReportingOnTheMeter()
    {
        string name = $"delay-{Guid.NewGuid():N}";
        using var recorder = new NamedMetricsRecorder(name);
        var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = new ManualTimeProvider(), Name = name });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);
        Assert.Equal(1, recorder.Observe()["lockfree.queue.depth"]);

        queue.Dispose();

        Assert.Empty(recorder.Observe()); // without the unregistration: still reported (the queue is alive: this test holds it)
        GC.KeepAlive(queue);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Ctor_CapacityBelowOne_Throws(int capacity)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DelayQueue<int>(capacity));
    }

    [Fact]
    public void IsCompleted_FalseUntilCompleted()
    {
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = new ManualTimeProvider() });
        Assert.False(queue.IsCompleted);
        Assert.True(queue.TryComplete());
        Assert.True(queue.IsCompleted);
        Assert.False(queue.TryComplete());
    }

    [Fact]
    public void Dispose_CompletesTheQueue()
    {
        var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = new ManualTimeProvider() });
        queue.Dispose();
        Assert.True(queue.IsCompleted);
        queue.Dispose(); // a second Dispose returns
    }

    [Fact]
    public async Task Complete_WhileAWriterWaitsForRoom_EndsItsWaitAsCompleted()
    {
        // A full Wait-policy queue parks EnqueueAsync; completing the queue must end that wait (it would wait for ever).
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { FullMode = OverflowPolicy.Wait, TimeProvider = new ManualTimeProvider() });
        Assert.True(queue.TryEnqueue(1, TimeSpan.Zero).IsAccepted);
        ValueTask<WriteResult> parked = queue.EnqueueAsync(2, TimeSpan.Zero);
        Assert.False(parked.IsCompleted);

        queue.Complete();

        WriteResult result = await parked.AsTask().WaitAsync(Generous);
        Assert.Equal(WriteOutcome.Completed, result.Outcome);
        Assert.True(queue.TryDequeue(out int item)); // the queued item stays readable
        Assert.Equal(1, item);
        Assert.False(queue.TryDequeue(out _));
    }
}
