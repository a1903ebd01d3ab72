using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// The retry hint of a rejected enqueue (the time until the earliest item is due) reads the user's
/// <see cref="TimeProvider"/>. When that reading throws, the enqueue's outcome is already decided (rejected: the item stays
/// with the caller): it answers <see cref="WriteOutcome.Rejected"/> with no estimate (<see cref="Timeout.InfiniteTimeSpan"/>)
/// and the failure is counted (<see cref="DelayQueue{T}.ClockFailureCount"/>, and in an <see cref="AckQueue{T}"/> its
/// <see cref="AckQueue{T}.FailedCallbackCount"/>) and reported. Before (session 10) the enqueue threw the clock's
/// exception. A waiting enqueue's own attempts compute no hint (they discard it): before, each tried the consumer lock,
/// drained the inbox and read the clock for nothing, and a clock that threw there faulted the waiting enqueue.
/// </summary>
public sealed class DelayQueueRetryHintClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    [Fact]
    public void TryEnqueue_FullUnderRejectAndTheHintsClockThrows_AnswersRejectedWithNoHintAndReportsIt()
    {
        var clock = new FailingReadingClock(new ManualTimeProvider());
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = clock, FullMode = OverflowPolicy.Reject });
        var reported = new List<Exception>();
        queue.ClockFailed += (sender, error) =>
        {
            Assert.Same(queue, sender);
            reported.Add(error);
        };
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);

        clock.FailReading(1); // a rejected enqueue reads the clock only for its hint (the earliest item is due in a second)
        WriteResult result = queue.TryEnqueue(2, TimeSpan.Zero); // before: threw InvalidOperationException("clock failed")

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.Full, result.Reason);
        Assert.Equal(Timeout.InfiniteTimeSpan, result.RetryAfter);
        Assert.Equal(1, queue.ClockFailureCount);
        Assert.Equal("clock failed", Assert.Single(reported).Message);
        Assert.Equal(1, queue.GetStatistics().Rejected);
        Assert.Equal(1, queue.Count);

        // A working clock gives the hint again.
        WriteResult next = queue.TryEnqueue(3, TimeSpan.Zero);
        Assert.Equal(WriteOutcome.Rejected, next.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(1), next.RetryAfter);
        Assert.Equal(1, queue.ClockFailureCount);
    }

    [Fact]
    public async Task EnqueueAsync_WaitingEnqueueWhoseClockWouldFailTheHint_ReadsNoHintAndLands()
    {
        var clock = new HintFailingClock(new ManualTimeProvider());
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = clock, FullMode = OverflowPolicy.Wait });
        Assert.True(queue.TryEnqueue(1, TimeSpan.Zero).IsAccepted);
        clock.Fail = true;

        ValueTask<WriteResult> waiting = queue.EnqueueAsync(2, TimeSpan.Zero); // before: threw at once (its first attempt's hint)
        Assert.False(waiting.IsCompleted);

        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
        Assert.True((await waiting.AsTask().WaitAsync(Generous)).IsAccepted);
        Assert.Equal(0, queue.ClockFailureCount); // no hint was ever computed
        Assert.True(queue.TryDequeue(out item));
        Assert.Equal(2, item);
    }

    [Fact]
    public void AckQueue_FullUnderRejectAndTheHintsClockThrows_AnswersRejectedAndCountsTheFailure()
    {
        var clock = new FailingReadingClock(new ManualTimeProvider());
        using var queue = new AckQueue<int>(new AckQueueOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Reject, TimeProvider = clock });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, error) => reported.Add(error);
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);

        clock.FailReading(1); // the inner delay queue's hint
        WriteResult result = queue.TryEnqueue(2); // before: threw InvalidOperationException("clock failed")

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(Timeout.InfiniteTimeSpan, result.RetryAfter);
        Assert.Equal(1, queue.FailedCallbackCount);
        Assert.Equal("clock failed", Assert.Single(reported).Message);
        Assert.Equal(1, queue.Count);
    }
}
