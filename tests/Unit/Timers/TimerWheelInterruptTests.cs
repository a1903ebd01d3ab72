using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="Thread.Interrupt"/> and the wheel's driver thread: a callback that leaves an interrupt pending on the
/// driver (or any interrupt aimed at it) is dropped where the driver sleeps; before, its wait threw it unhandled and
/// the process ended.
/// </summary>
public sealed class TimerWheelInterruptTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public void Driver_CallbackLeavesAnInterruptPending_KeepsFiringLaterTimers()
    {
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1));
        wheel.StartDriver();
        using var first = new ManualResetEventSlim(false);
        using var second = new ManualResetEventSlim(false);
        wheel.Schedule(TimeSpan.FromMilliseconds(1), static s =>
        {
            Thread.CurrentThread.Interrupt(); // nothing in the callback waits: it reaches the driver's sleep
            ((ManualResetEventSlim)s!).Set();
        }, first);
        Assert.True(first.Wait(Generous));
        Thread.Sleep(20); // the driver goes back to sleep with the interrupt pending
        wheel.Schedule(TimeSpan.FromMilliseconds(5), static s => ((ManualResetEventSlim)s!).Set(), second);
        Assert.True(second.Wait(Generous));
        Assert.True(wheel.IsDriverRunning);
        Assert.Equal(0, wheel.FailedCallbackCount);
    }
}
