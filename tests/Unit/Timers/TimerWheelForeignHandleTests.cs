using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// A handle belongs to the wheel that issued it. Two fresh wheels hand out the same (node index, generation)
/// pairs, so before handles carried the wheel's identity, cancelling wheel A's handle on wheel B stopped one of
/// B's live timers that nobody cancelled.
/// </summary>
public sealed class TimerWheelForeignHandleTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    [Fact]
    public void Cancel_HandleOfAnotherWheel_ThrowsAndLeavesThatWheelsTimerPending()
    {
        var clock = new ManualTimeProvider();
        using var a = new HierarchicalTimerWheel(Tick, clock);
        using var b = new HierarchicalTimerWheel(Tick, clock);
        int firedOnB = 0;
        TimerHandle onA = a.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null);
        b.Schedule(TimeSpan.FromMilliseconds(5), _ => firedOnB++, null);

        Assert.Throws<ArgumentException>("handle", () => b.Cancel(onA));

        clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(1, b.Advance());
        Assert.Equal(1, firedOnB);
        Assert.True(a.Cancel(onA)); // still A's to cancel, and B stays usable
        Assert.True(b.Cancel(b.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null)));
    }

    [Fact]
    public void Handles_FromTwoWheels_AreNotEqual()
    {
        var clock = new ManualTimeProvider();
        using var a = new HierarchicalTimerWheel(Tick, clock);
        using var b = new HierarchicalTimerWheel(Tick, clock);
        TimerHandle onA = a.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null);
        TimerHandle onB = b.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null);

        Assert.NotEqual(onA, onB);
        Assert.True(onA.IsAllocated);
        Assert.False(b.Cancel(default));
    }
}
