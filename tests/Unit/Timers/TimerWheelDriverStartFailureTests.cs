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
}
