using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Review of the wheel's contract: <see cref="HierarchicalTimerWheel.ScheduleAt"/> with timestamps far from the
/// wheel's origin. "A time already past fires at the next advance"; "further than MaxDueIn ahead" throws. Before,
/// the distance to the origin was a plain subtraction that overflowed for such timestamps.
/// </summary>
public sealed class TimerWheelScheduleAtRangeTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    /// <summary>A clock whose timestamps are negative (legal: a timestamp is any long that grows).</summary>
    private sealed class NegativeClock : TimeProvider
    {
        public long Now { get; set; } = -(1L << 62);

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Now;
    }

    [Fact]
    public void ScheduleAt_FarPastTimestamp_FiresAtTheNextAdvance()
    {
        // Before: long.MinValue - origin wrapped to a huge positive distance, and the past time threw
        // ArgumentOutOfRangeException ("further away than MaxDueIn").
        var clock = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Tick, clock);
        int fired = 0;
        wheel.ScheduleAt(long.MinValue, _ => fired++, null);
        wheel.ScheduleAt(long.MinValue / 2, _ => fired++, null);
        Assert.Equal(2, wheel.Advance());
        Assert.Equal(2, fired);
    }

    [Fact]
    public void ScheduleAt_FarFutureOnANegativeClock_ThrowsInsteadOfFiringAtOnce()
    {
        // Before: long.MaxValue - (a negative origin) wrapped to a negative distance: the timer, due in about
        // 29,000 years, was taken as already past and fired at the next advance.
        var clock = new NegativeClock();
        using var wheel = new HierarchicalTimerWheel(Tick, clock);
        int fired = 0;
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.ScheduleAt(long.MaxValue, _ => fired++, null));
        Assert.Equal(0, wheel.Advance());
        Assert.Equal(0, fired);

        // The boundary itself: exactly MaxDueIn ahead of the current tick is accepted, one tick more is not.
        long maxAhead = clock.Now + (long)(wheel.MaxDueIn.Ticks * (clock.TimestampFrequency / (double)TimeSpan.TicksPerSecond));
        TimerHandle atMax = wheel.ScheduleAt(maxAhead, _ => fired++, null);
        Assert.True(wheel.Cancel(atMax));
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.ScheduleAt(maxAhead + (Tick.Ticks * 2), _ => fired++, null));

        // And an ordinary time on that clock still fires on time.
        wheel.ScheduleAt(clock.Now + (Tick.Ticks * 5), _ => fired++, null);
        clock.Now += Tick.Ticks * 4;
        Assert.Equal(0, wheel.Advance());
        clock.Now += Tick.Ticks;
        Assert.Equal(1, wheel.Advance());
        Assert.Equal(1, fired);
    }
}
