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
