using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// A driver thread that fails to start (simulated through the internal <c>DriverStartForTest</c> hook, since
/// <c>Thread.UnsafeStart</c> fails only on OutOfMemoryException or ThreadStartException, as in
/// <c>WorkStealingLongRunningStartFailureTests</c>). The failure reaches the caller and the wheel is left as it was:
/// manually drivable, and able to start its driver later. Before (review, 2026-11-23) the thread was published before
/// it started, so the wheel claimed a running driver that did not exist: Advance and StartDriver both refused, and
/// nothing ever fired.
/// </summary>
public sealed class TimerWheelDriverStartFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public void StartDriver_ThreadFailsToStart_ThrowsAndLeavesTheWheelUsable()
    {
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1));
        wheel.DriverStartForTest = _ => throw new OutOfMemoryException("simulated: no thread");

        Assert.Throws<OutOfMemoryException>(wheel.StartDriver);

        Assert.False(wheel.IsDriverRunning);
        Assert.Equal(0, wheel.Advance()); // still manually drivable (before: "the driver thread runs")

        wheel.DriverStartForTest = null; // threads start again
        wheel.StartDriver(); // before: "already running"
        Assert.True(wheel.IsDriverRunning);
        using var fired = new ManualResetEventSlim();
        wheel.Schedule(TimeSpan.FromMilliseconds(5), static s => ((ManualResetEventSlim)s!).Set(), fired);
        Assert.True(fired.Wait(Generous), "the restarted driver did not fire the timer");
    }

    [Fact]
    public void StartDriver_ThreadFailsToStart_DisposesTheSleepTimerAndSchedulesOffThePublishedTickAgain()
    {
        // The undo is complete (both were mutants that survived the session 19 mutation run of the driver's file): the
        // sleep timer created for the driver is disposed, and the "published tick may be stale" flag raised for the
        // driver's first pass is lowered, so Schedule goes back to reading the published tick instead of the clock.
        var clock = new CountingClock();
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        wheel.DriverStartForTest = _ => throw new OutOfMemoryException("simulated: no thread");
        int timersBefore = clock.Manual.ActiveTimers;

        Assert.Throws<OutOfMemoryException>(wheel.StartDriver);

        Assert.Equal(timersBefore, clock.Manual.ActiveTimers);
        long readsBefore = clock.Reads;
        wheel.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null);
        Assert.Equal(readsBefore, clock.Reads);
    }

    /// <summary>A manual clock that counts its readings.</summary>
    private sealed class CountingClock : TimeProvider
    {
        private long _reads;

        public Support.ManualTimeProvider Manual { get; } = new();

        public long Reads => Interlocked.Read(ref _reads);

        public override long TimestampFrequency => Manual.TimestampFrequency;

        public override long GetTimestamp()
        {
            Interlocked.Increment(ref _reads);
            return Manual.GetTimestamp();
        }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            Manual.CreateTimer(callback, state, dueTime, period);
    }
}
