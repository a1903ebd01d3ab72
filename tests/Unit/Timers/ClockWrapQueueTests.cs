using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="DelayQueue{T}"/> and <see cref="AckQueue{T}"/> on a clock that passes <see cref="long.MaxValue"/> and wraps
/// (a timestamp is a counter: only differences mean anything). Before (session 11) both compared timestamps with
/// <c>&lt;</c>/<c>&lt;=</c>: a due time or deadline past the wrap read as long past, so an item came out at once, ahead of
/// earlier ones, and a message in flight timed out early.
/// </summary>
public sealed class ClockWrapQueueTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    /// <summary>A manual clock <paramref name="beforeWrap"/> short of <see cref="long.MaxValue"/>.</summary>
    private static ManualTimeProvider NearWrap(TimeSpan beforeWrap) => new(long.MaxValue - beforeWrap.Ticks);

    [Fact]
    public void DelayQueue_DueTimePastTheWrap_NotVisibleEarlyAndInDueOrder()
    {
        var time = NearWrap(TimeSpan.FromSeconds(5));
        using var queue = new DelayQueue<string>(4, new DelayQueueOptions<string> { TimeProvider = time });
        Assert.True(queue.TryEnqueue("late", TimeSpan.FromSeconds(10)).IsAccepted); // due after the wrap
        Assert.True(queue.TryEnqueue("early", TimeSpan.FromSeconds(1)).IsAccepted); // due before it

        Assert.False(queue.TryDequeue(out _)); // before: "late" came out at once
        Assert.Equal(TimeSpan.FromSeconds(1), queue.GetTimeUntilNextDue());

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryDequeue(out string? first));
        Assert.Equal("early", first);

        time.Advance(TimeSpan.FromSeconds(8)); // past the wrap, 1 s short of "late"
        Assert.False(queue.TryDequeue(out _));
        Assert.Equal(TimeSpan.FromSeconds(1), queue.GetTimeUntilNextDue());
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryDequeue(out string? second));
        Assert.Equal("late", second);
    }

    [Fact]
    public async Task DelayQueue_ParkedReaderAcrossTheWrap_WokenWhenDueNotBefore()
    {
        var time = NearWrap(TimeSpan.FromSeconds(1));
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time });
        Assert.True(queue.TryEnqueue(7, TimeSpan.FromSeconds(3)).IsAccepted);

        ValueTask<int> read = queue.DequeueAsync();
        Assert.False(read.IsCompleted); // before: completed at once
        time.Advance(TimeSpan.FromSeconds(2)); // across the wrap, not yet due
        Assert.False(read.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(7, await read.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public void DelayQueue_FullAcrossTheWrap_RetryHintIsTheTimeUntilDue()
    {
        var time = NearWrap(TimeSpan.FromSeconds(1));
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { TimeProvider = time, FullMode = OverflowPolicy.Reject });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(4)).IsAccepted);

        Assert.Equal(TimeSpan.FromSeconds(4), queue.TryEnqueue(2, TimeSpan.Zero).RetryAfter); // before: zero (read as due)
    }

    [Fact]
    public void DelayQueue_DueTimesOnLongMaxValueAndMinValue_OnTimeOrOneTimestampLate()
    {
        // long.MinValue is the "due at once" mark (an item put back while the clock threw): a due time landing there is
        // moved one timestamp later (never early). long.MaxValue is an ordinary due time (the published root's "empty" mark
        // is kept apart from it).
        var time = new ManualTimeProvider(long.MaxValue - 10);
        using var queue = new DelayQueue<string>(4, new DelayQueueOptions<string> { TimeProvider = time });
        Assert.True(queue.TryEnqueue("at MinValue", TimeSpan.FromTicks(11)).IsAccepted);
        Assert.True(queue.TryEnqueue("at MaxValue", TimeSpan.FromTicks(10)).IsAccepted);

        Assert.False(queue.TryDequeue(out _));
        time.Advance(TimeSpan.FromTicks(10)); // now = MaxValue
        Assert.True(queue.TryDequeue(out string? first));
        Assert.Equal("at MaxValue", first);
        Assert.True(queue.TryEnqueue("now", TimeSpan.Zero).IsAccepted); // due at this very reading: visible at once
        Assert.True(queue.TryDequeue(out string? second));
        Assert.Equal("now", second);

        time.Advance(TimeSpan.FromTicks(1)); // now = MinValue
        Assert.False(queue.TryDequeue(out _)); // one timestamp late, not early
        time.Advance(TimeSpan.FromTicks(1));
        Assert.True(queue.TryDequeue(out string? third));
        Assert.Equal("at MinValue", third);
    }

    [Fact]
    public async Task DelayQueue_ParkedReaderForAnItemDueAtLongMaxValue_WokenWhenDue()
    {
        var time = new ManualTimeProvider(long.MaxValue - TimeSpan.FromSeconds(1).Ticks);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time });
        Assert.True(queue.TryEnqueue(7, TimeSpan.FromSeconds(1)).IsAccepted); // due exactly at long.MaxValue
        ValueTask<int> read = queue.DequeueAsync(); // must arm a wake-up (MaxValue also reads "nothing armed")

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(7, await read.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task DelayQueue_OnAWheelAcrossTheWrap_NoSpuriousWakeUpAndWokenWhenDue()
    {
        // The wheel's absolute due times do not wrap: a wake-up due past long.MaxValue fired at every wheel advance
        // (the reader woke, found nothing due, re-armed) until the clock wrapped too. It is timed by its span instead.
        var time = NearWrap(TimeSpan.FromSeconds(1));
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time, TimerWheel = wheel });
        Assert.True(queue.TryEnqueue(7, TimeSpan.FromSeconds(3)).IsAccepted);
        ValueTask<int> read = queue.DequeueAsync();

        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(0, wheel.Advance()); // before: 1 (a spurious wake-up), at every advance
        Assert.False(read.IsCompleted);

        time.Advance(TimeSpan.FromMilliseconds(2500)); // the span's timer fires
        Assert.Equal(7, await read.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public void AckQueue_DeadlinePastTheWrap_NotExpiredWithAnEarlierOne()
    {
        var time = NearWrap(TimeSpan.FromSeconds(12));
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 4, VisibilityTimeout = TimeSpan.FromSeconds(10), TimeProvider = time });
        queue.TryEnqueue("a");
        queue.TryEnqueue("b");
        Assert.True(queue.TryReceive(out Delivery<string> a)); // deadline 2 s before the wrap
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(queue.TryReceive(out Delivery<string> b)); // deadline 3 s after the wrap

        time.Advance(TimeSpan.FromSeconds(5)); // a's deadline: its timeout fires
        Assert.Equal(1, queue.InFlightCount); // before: 0, b timed out 5 s early with a
        Assert.True(queue.Ack(b));
        Assert.False(queue.Ack(a));
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
    }

    [Fact]
    public void AckQueue_VisibilityTimeoutAcrossTheWrap_ExactlyOnTime()
    {
        var time = NearWrap(TimeSpan.FromSeconds(1));
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 2, VisibilityTimeout = TimeSpan.FromSeconds(3), TimeProvider = time });
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> first));

        time.Advance(TimeSpan.FromMilliseconds(2999));
        Assert.Equal(1, queue.InFlightCount);
        Assert.False(queue.TryReceive(out _));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(queue.TryReceive(out Delivery<string> second));
        Assert.Equal(("a", 2), (second.Message, second.DeliveryCount));
        Assert.False(queue.Ack(first));
        Assert.True(queue.Ack(second));
    }
}
