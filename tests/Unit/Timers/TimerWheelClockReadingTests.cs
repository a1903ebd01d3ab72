using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Two readings of the clock that the other tests did not pin (found by the mutation run of TimerWheelEngine.cs, session
/// 18): lateness is converted from the provider's timestamps at the provider's own frequency, and a schedule made while the
/// driver sleeps counts its due time from the clock, not from the tick the driver last published.
/// </summary>
public sealed class TimerWheelClockReadingTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    [Fact]
    public void Lateness_OnAClockOfAnotherFrequency_IsConvertedAtThatFrequency()
    {
        // A nanosecond clock: a timestamp is not a TimeSpan tick here, so a conversion that divided where it should
        // multiply (or used the TimeSpan frequency) would report 100 times or a ten-thousandth of the lateness.
        var clock = new NanosecondClock();
        using var wheel = new HierarchicalTimerWheel(Tick, clock);
        wheel.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null); // due at tick 6 (one tick for the phase)
        clock.Now = 9_000_001; // 9 ms after the wheel began (at 1): the timer runs 3 ms after its tick began
        Assert.Equal(1, wheel.Advance());
        Assert.Equal(TimeSpan.FromMilliseconds(3), wheel.LastLateness);
        Assert.Equal(TimeSpan.FromMilliseconds(3), wheel.AverageLateness);
    }

    [Fact]
    public void Schedule_WhileTheDriverSleepsAndTheClockMovedOn_CountsFromTheClock()
    {
        // The driver sleeps towards a far timer and raises its stale flag; the clock then moves 100 ticks without waking
        // it (no timer of the clock is due). A schedule now must count from the clock's tick: one that counted from the
        // tick the driver last published (about 0) would be due long ago and fire at the driver's next pass.
        var clock = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Tick, clock);
        Thread? driver = null;
        wheel.DriverStartForTest = thread =>
        {
            driver = thread;
            thread.UnsafeStart();
        };
        wheel.Schedule(TimeSpan.FromHours(1), static _ => { }, null);
        wheel.StartDriver();
        WaitUntil(() => wheel.DriverPasses > 0 && wheel.PendingCount == 1);
        WaitUntil(() => (driver!.ThreadState & ThreadState.WaitSleepJoin) != 0); // asleep: it raised the flag before
        Thread.Sleep(20);
        WaitUntil(() => (driver!.ThreadState & ThreadState.WaitSleepJoin) != 0);
        long published = wheel.CurrentTick;
        long passes = wheel.DriverPasses;

        clock.Advance(TimeSpan.FromTicks(100 * Tick.Ticks), fireTimers: false);
        int fired = 0;
        wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => Interlocked.Increment(ref fired), null); // earlier than the planned wake-up: wakes the driver
        WaitUntil(() => wheel.DriverPasses > passes && wheel.CurrentTick >= published + 100);
        Thread.Sleep(20);
        Assert.Equal(0, Volatile.Read(ref fired)); // due at clock tick + 6, not at published tick + 6

        for (int i = 0; i < 10 && Volatile.Read(ref fired) == 0; i++)
        {
            clock.Advance(Tick); // the driver's sleep timer fires once its wake-up is due
            Thread.Sleep(5);
        }

        WaitUntil(() => Volatile.Read(ref fired) == 1);
        Assert.InRange(wheel.CurrentTick, published + 106, published + 110);
    }

    private static void WaitUntil(Func<bool> condition)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "condition not reached in 30 s");
            Thread.Sleep(1);
        }
    }

    /// <summary>A clock in nanoseconds that moves only when the test sets it (manual driving only: no timers).</summary>
    private sealed class NanosecondClock : TimeProvider
    {
        public long Now { get; set; } = 1;

        public override long TimestampFrequency => 1_000_000_000;

        public override long GetTimestamp() => Now;
    }
}
