using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Review of session 11's wrap-safe timestamps (s11-rev): the reserved marks (<see cref="long.MaxValue"/> as "empty" /
/// "nothing armed", <see cref="long.MinValue"/> as "due at once") met by real due times a clock near the wrap produces.
/// </summary>
public sealed class ClockWrapReviewTests
{
    [Fact]
    public void GetTimeUntilNextDue_RootDueAtLongMaxValue_TheTimeUntilItNotEmpty()
    {
        // Before (s11-rev): long.MaxValue also marked "heap empty" there, so a queue whose earliest item was due exactly
        // at long.MaxValue answered null ("the queue is empty") while it held that item.
        var time = new ManualTimeProvider(long.MaxValue - 10);
        using var queue = new DelayQueue<int>(2, new DelayQueueOptions<int> { TimeProvider = time });
        Assert.True(queue.TryEnqueue(7, TimeSpan.FromTicks(10)).IsAccepted); // due at long.MaxValue

        Assert.Equal(TimeSpan.FromTicks(10), queue.GetTimeUntilNextDue());
        time.Advance(TimeSpan.FromTicks(10));
        Assert.Equal(TimeSpan.Zero, queue.GetTimeUntilNextDue());
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(7, item);
        Assert.Null(queue.GetTimeUntilNextDue());
    }
    [Fact]
    public void ScheduleAt_WheelCreatedBeforeTheWrapAndUsedAfterIt_NeverEarly()
    {
        // Before (s11-rev): the distance to the wheel's origin was a numeric comparison (dueTimestamp <= origin: past), so
        // once the clock had wrapped every due time read as before an origin near long.MaxValue and fired at the next
        // advance, however far ahead it was.
        var time = new ManualTimeProvider(long.MaxValue - TimeSpan.FromSeconds(1).Ticks);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        time.Advance(TimeSpan.FromSeconds(2)); // past the wrap: timestamps are now near long.MinValue
        wheel.Advance();
        int fired = 0;
        wheel.ScheduleAt(time.GetTimestamp() + TimeSpan.FromMilliseconds(5).Ticks, _ => fired++, null);

        Assert.Equal(0, wheel.Advance()); // before: 1
        time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(0, wheel.Advance());
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, wheel.Advance());
        Assert.Equal(1, fired);

        // A time already past (before the wrap, or just after it) still fires at the next advance.
        wheel.ScheduleAt(long.MaxValue - 5, _ => fired++, null);
        wheel.ScheduleAt(time.GetTimestamp() - 1, _ => fired++, null);
        Assert.Equal(2, wheel.Advance());
    }

    [Fact]
    public void ScheduleAt_DueTimePastTheWrapOnAWheelCreatedBeforeIt_NeverEarly()
    {
        var time = new ManualTimeProvider(long.MaxValue - TimeSpan.FromMilliseconds(2).Ticks);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        int fired = 0;
        wheel.ScheduleAt(unchecked(time.GetTimestamp() + TimeSpan.FromMilliseconds(5).Ticks), _ => fired++, null); // past long.MaxValue

        Assert.Equal(0, wheel.Advance()); // before: 1
        time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(0, wheel.Advance());
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, wheel.Advance());
    }

    [Fact]
    public async Task RetryWait_OnAWheelCreatedBeforeTheWrap_WaitNotEndedEarly()
    {
        // A retry policy's backoff wait on a wheel created before the clock wrapped and armed after: before (s11-rev) it
        // ended at the wheel's next advance. (This was a test of Wakeups.DelayAsync, the Task-based wait the retry used
        // until session 13; the wait is now the pooled operation's own, so the scenario runs through ExecuteAsync.)
        var time = new ManualTimeProvider(long.MaxValue - TimeSpan.FromSeconds(1).Ticks);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        time.Advance(TimeSpan.FromSeconds(2)); // past the wrap: timestamps are now near long.MinValue
        wheel.Advance();
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(100), Jitter = RetryJitter.None, TimeProvider = time, TimerWheel = wheel });
        int calls = 0;
        Task<int> run = policy.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException() : new ValueTask<int>(calls)).AsTask();
        Assert.Equal(1, calls); // failed after the wrap: the retry is due 100 ms later

        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount); // before: 1, and the retry ran at once
        time.Advance(TimeSpan.FromMilliseconds(99));
        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount);
        Assert.False(run.IsCompleted);

        time.Advance(TimeSpan.FromMilliseconds(1)); // due now: fires at the first advance that reaches it
        wheel.Advance();
        Assert.Equal(1, wheel.FiredCount);
        Assert.Equal(2, await run.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task DelayQueue_OnAWheelCreatedBeforeTheWrap_NoSpuriousWakeUpAfterIt()
    {
        // The delay queue's wake-up on the wheel after the wrap: before (s11-rev) it fired at every advance (the reader
        // woke, found nothing due, re-armed) until the item was due.
        var time = new ManualTimeProvider(long.MaxValue - TimeSpan.FromSeconds(1).Ticks);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        time.Advance(TimeSpan.FromSeconds(2));
        wheel.Advance();
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time, TimerWheel = wheel });
        Assert.True(queue.TryEnqueue(7, TimeSpan.FromSeconds(1)).IsAccepted);
        ValueTask<int> read = queue.DequeueAsync();

        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(0, wheel.Advance()); // before: 1, at every advance
        Assert.False(read.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(1, wheel.Advance());
        Assert.Equal(7, await read.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
