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
}
