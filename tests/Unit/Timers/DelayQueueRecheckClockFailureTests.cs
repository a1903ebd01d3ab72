using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="DelayQueue{T}.EnqueueAsync(T, TimeSpan, CancellationToken)"/> under <see cref="OverflowPolicy.Wait"/>: a
/// writer links its waiter, then tries once more (the recheck), and that attempt reads the user's clock (the retry hint
/// of a full queue, or the enqueue's own reading). A clock that throws there must take the waiter back (helper s9-room,
/// 2026-11-23): before, the waiter stayed linked and never awaited, the next wake-up was spent on it, and the writer
/// parked behind it slept beside a free slot.
/// </summary>
public sealed class DelayQueueRecheckClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task EnqueueAsync_RetryHintThrowsInTheRecheckAfterLinking_LeavesNoWaiterBehind()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = clock, FullMode = OverflowPolicy.Wait });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted); // not due: the full queue's hint reads the clock

        clock.FailReading(2); // reading 1: the first attempt's hint (full); reading 2: the recheck's hint, after linking
        ValueTask<WriteResult> failing = queue.EnqueueAsync(2, TimeSpan.Zero);
        await Assert.ThrowsAsync<InvalidOperationException>(() => failing.AsTask().WaitAsync(Generous));

        ValueTask<WriteResult> next = queue.EnqueueAsync(3, TimeSpan.Zero); // parks
        Assert.False(next.IsCompleted);
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
        Assert.Equal(WriteOutcome.Accepted, (await next.AsTask().WaitAsync(Generous)).Outcome); // before: timed out here
        Assert.True(queue.TryDequeue(out item));
        Assert.Equal(3, item);
    }
}
