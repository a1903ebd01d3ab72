using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Timestamps are opaque: a <see cref="TimeProvider"/> may start its readings anywhere, negative included (review,
/// 2026-11-23). The time-driven types must only compare readings with each other, never with 0.
/// </summary>
public sealed class ClockOriginTests
{
    public static TheoryData<long> Origins => new()
    {
        -TimeSpan.FromDays(3650).Ticks, // a clock whose readings are negative
        -1,
        0,
        long.MaxValue / 4,                // far from 0, with room for every delay
    };

    [Theory]
    [MemberData(nameof(Origins))]
    public void DelayQueue_AnyClockOrigin_ItemNeverVisibleEarly(long origin)
    {
        var clock = ShiftedClock.Reading(origin);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = clock });

        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);
        Assert.False(queue.TryDequeue(out _));
        Assert.Equal(TimeSpan.FromSeconds(1), queue.GetTimeUntilNextDue());

        clock.Inner.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(queue.TryDequeue(out _));

        clock.Inner.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
    }

    [Theory]
    [MemberData(nameof(Origins))]
    public async Task DelayQueue_AnyClockOrigin_ParkedReaderWokenWhenDueNotBefore(long origin)
    {
        var clock = ShiftedClock.Reading(origin);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = clock });

        Assert.True(queue.TryEnqueue(7, TimeSpan.FromSeconds(2)).IsAccepted);
        ValueTask<int> read = queue.DequeueAsync(); // parks: the item is not due (a wake-up armed for it)
        Assert.False(read.IsCompleted);
        clock.Inner.Advance(TimeSpan.FromSeconds(1));
        Assert.False(read.IsCompleted); // the wake-up fires on this thread when due; nothing here is due yet

        clock.Inner.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(7, await read.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [MemberData(nameof(Origins))]
    public void TimerWheel_AnyClockOrigin_ScheduleAndScheduleAtNeverEarly(long origin)
    {
        var clock = ShiftedClock.Reading(origin);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        int relative = 0, absolute = 0;
        wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => relative++, null);
        wheel.ScheduleAt(clock.GetTimestamp() + TimeSpan.FromMilliseconds(5).Ticks, _ => absolute++, null);

        clock.Inner.Advance(TimeSpan.FromMilliseconds(4));
        wheel.Advance();
        Assert.Equal((0, 0), (relative, absolute));

        clock.Inner.Advance(TimeSpan.FromMilliseconds(3)); // relative: due at most two ticks after its 5 ms
        wheel.Advance();
        Assert.Equal((1, 1), (relative, absolute));
    }

    [Theory]
    [MemberData(nameof(Origins))]
    public async Task DelayQueue_AnyClockOriginOnAWheel_ParkedReaderWokenWhenDueNotBefore(long origin)
    {
        var clock = ShiftedClock.Reading(origin);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = clock, TimerWheel = wheel });

        Assert.True(queue.TryEnqueue(7, TimeSpan.FromMilliseconds(20)).IsAccepted);
        ValueTask<int> read = queue.DequeueAsync();
        clock.Inner.Advance(TimeSpan.FromMilliseconds(19));
        wheel.Advance();
        Assert.False(read.IsCompleted);

        clock.Inner.Advance(TimeSpan.FromMilliseconds(1));
        wheel.Advance();
        Assert.Equal(7, await read.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [MemberData(nameof(Origins))]
    public void AckQueue_AnyClockOrigin_VisibilityTimeoutExactlyOnTime(long origin)
    {
        var clock = ShiftedClock.Reading(origin);
        using var queue = new AckQueue<int>(new AckQueueOptions<int> { Capacity = 2, VisibilityTimeout = TimeSpan.FromSeconds(1), TimeProvider = clock, Name = "origin" });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);
        Assert.False(queue.TryReceive(out _));
        clock.Inner.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryReceive(out Delivery<int> first));

        clock.Inner.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(queue.TryReceive(out _));
        clock.Inner.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(queue.TryReceive(out Delivery<int> second));
        Assert.Equal((1, 2), (second.Message, second.DeliveryCount));
        Assert.False(queue.Ack(first));
        Assert.True(queue.Ack(second));
    }

    [Theory]
    [MemberData(nameof(Origins))]
    public void RetryBudget_AnyClockOrigin_ReserveBurstThenRate(long origin)
    {
        var clock = ShiftedClock.Reading(origin);
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0, MaxBurst = 0, MinRetriesPerSecond = 4, TimeProvider = clock });
        int granted = 0;
        while (budget.TryAcquireRetry())
        {
            granted++;
        }

        Assert.Equal(4, granted);
        clock.Inner.Advance(TimeSpan.FromMilliseconds(250));
        Assert.True(budget.TryAcquireRetry());
        Assert.False(budget.TryAcquireRetry());
    }

    /// <summary>A manual clock read through a constant shift (wrapping), with the inner clock's timers (unlike <see cref="OffsetTimeProvider"/>, which keeps the system's).</summary>
    internal sealed class ShiftedClock(ManualTimeProvider inner, long offset) : TimeProvider
    {
        public ManualTimeProvider Inner => inner;

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => unchecked(inner.GetTimestamp() + offset);

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);

        public static ShiftedClock Reading(long reading)
        {
            var manual = new ManualTimeProvider();
            return new ShiftedClock(manual, unchecked(reading - manual.GetTimestamp()));
        }
    }
}
