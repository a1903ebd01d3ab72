using LockFree.Tests.Unit.Support;
using LockFree.Timers;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// The timeouts of timed asynchronous waits (<see cref="SharedTimerWheel.TrySchedule"/>) are documented to fire no
/// earlier than asked (review, 2026-11-23). Through the wheel's relative Schedule, a timeout counted from the tick the
/// wheel last published: whenever that tick lags the clock (the shared wheel's driver oversleeping a one-tick nap, as
/// docs/timers.md admits; here a wheel advanced by hand, long ago) the timeout fired early by the lag. It is now
/// scheduled at its absolute due time on the wheel's clock.
/// </summary>
public sealed class SharedTimerWheelScheduleTests
{
    [Fact]
    public void TrySchedule_WheelTickLagsTheClock_TimeoutNeverEarly()
    {
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        time.Advance(TimeSpan.FromSeconds(5)); // the wheel's published tick still says 0
        int fired = 0;

        Assert.True(SharedTimerWheel.TrySchedule(wheel, TimeSpan.FromMilliseconds(100), _ => fired++, new object(), out _));
        wheel.Advance();
        Assert.Equal(0, fired); // before: fired here, 100 ms early by the clock (5 s by the lag)

        time.Advance(TimeSpan.FromMilliseconds(99));
        wheel.Advance();
        Assert.Equal(0, fired);

        time.Advance(TimeSpan.FromMilliseconds(1));
        wheel.Advance();
        Assert.Equal(1, fired);
    }

    [Fact]
    public void TrySchedule_DueTimestampWrapsPastLongMaxValue_FarAhead_TimeoutNeverEarly()
    {
        // The wrap branch (session 15: is it reachable?). On TimeProvider.System it is not: its timestamps count from boot
        // (at most 1e9 a second) and the shared wheel's MaxDueIn (2^40 ms) is at most about 1.1e18 timestamps away, so
        // "now + dueIn" would need centuries of uptime to pass long.MaxValue. A user's clock reaches it. Near
        // long.MaxValue at an ordinary rate the sum wraps, yet ScheduleAt reads a due time within 2^62 timestamps of
        // the wheel's time by the signed difference, so either way is right. A fine clock (here 2^60 a second) puts
        // a delay of a few seconds 2^62 timestamps or more ahead: a wrapped due time that far ahead is read numerically
        // by ScheduleAt, as a due time before the wheel's origin, due at once (early by the whole delay). The relative
        // Schedule counts ticks instead, and is right.
        var time = new FineClock(start: 1L << 62);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        TimeSpan delay = TimeSpan.FromSeconds(5); // 5 x 2^60 timestamps: more than 2^62, and now + that wraps
        int fired = 0;

        Assert.True(SharedTimerWheel.TryScheduleFromNow(wheel, delay, _ => fired++, new object(), out _, out long now));
        Assert.Equal(1L << 62, now);
        wheel.Advance();
        Assert.Equal(0, fired); // without the branch: fired here, 5 s early

        time.Advance(delay - TimeSpan.FromMilliseconds(1));
        wheel.Advance();
        Assert.Equal(0, fired);

        time.Advance(TimeSpan.FromMilliseconds(3)); // the relative Schedule counts from the next tick, and a tick rounded up to whole timestamps runs a hair long
        wheel.Advance();
        Assert.Equal(1, fired);
    }

    [Fact]
    public void TrySchedule_DueTimestampWrapsPastLongMaxValue_Near_TimeoutNeverEarly()
    {
        // An ordinary rate near long.MaxValue: the due time wraps, and the timeout still fires on time, not early.
        var time = new FineClock(start: long.MaxValue - 1000, frequency: TimeSpan.TicksPerSecond);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        int fired = 0;

        Assert.True(SharedTimerWheel.TrySchedule(wheel, TimeSpan.FromMilliseconds(100), _ => fired++, new object(), out _));
        wheel.Advance();
        Assert.Equal(0, fired);

        time.Advance(TimeSpan.FromMilliseconds(99));
        wheel.Advance();
        Assert.Equal(0, fired);

        time.Advance(TimeSpan.FromMilliseconds(2));
        wheel.Advance();
        Assert.Equal(1, fired);
    }

    /// <summary>A manual clock of any rate (default 2^60 timestamps a second) from any start; it wraps past long.MaxValue. No timers: the tests advance the wheel by hand.</summary>
    private sealed class FineClock(long start, long frequency = 1L << 60) : TimeProvider
    {
        private long _now = start;

        public override long TimestampFrequency => frequency;

        public override long GetTimestamp() => Volatile.Read(ref _now);

        public void Advance(TimeSpan by) =>
            Volatile.Write(ref _now, unchecked(_now + (long)(by.Ticks * (frequency / (double)TimeSpan.TicksPerSecond))));
    }
}
