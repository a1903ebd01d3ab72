using LockFree.Internal;
using LockFree.Tests.Unit.Support;
using LockFree.Timers;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Review of issue 6 (lanes): the wheel's counters close at Dispose. Every scheduled timer ends in exactly one of
/// FiredCount, CancelledCount or DroppedCount; a successful Cancel the driver had not reclaimed yet when the wheel
/// was disposed counts as cancelled (it used to be in none of the three).
/// </summary>
public sealed class TimerWheelDisposeAccountingTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);
    private static readonly Action<object?> Nothing = static _ => { };

    private readonly ManualTimeProvider _clock = new();

    [Fact]
    public void Dispose_CancelsNotYetReclaimed_CountsThemCancelledNotDropped()
    {
        var wheel = new TimerWheelEngine<RealAtomics>(Tick, _clock, 4096);
        var linked = new List<TimerHandle>();
        for (int i = 0; i < 4; i++)
        {
            linked.Add(wheel.Schedule(TimeSpan.FromSeconds(1), Nothing, null)); // the first through the inbox, then the lane
        }

        wheel.Advance(); // taken in: linked
        Assert.True(wheel.Cancel(linked[0])); // linked: CancelQueued, its notice on this thread's lane
        TimerHandle queued = wheel.Schedule(TimeSpan.FromSeconds(1), Nothing, null);
        Assert.True(wheel.Cancel(queued)); // queued: Cancelled, still on the lane
        wheel.Dispose();

        Assert.Equal(3, wheel.DroppedCount);
        Assert.Equal(2, wheel.CancelledCount); // both cancels answered true: they count, once
        Assert.Equal(0, wheel.FiredCount);
        Assert.False(wheel.Cancel(linked[1]));
        Assert.False(wheel.Cancel(linked[0]));
        Assert.Equal(2, wheel.CancelledCount);
    }

    [Fact]
    public void Dispose_AfterFiresCancelsAndDrops_CountersSumToScheduled()
    {
        var wheel = new TimerWheelEngine<RealAtomics>(Tick, _clock, 4096, laneRingSize: 4);
        var rng = new Random(6);
        int scheduled = 0, cancelledByCaller = 0;
        var handles = new List<TimerHandle>();
        for (int round = 0; round < 50; round++)
        {
            for (int i = 0; i < 10; i++)
            {
                handles.Add(wheel.Schedule(TimeSpan.FromMilliseconds(rng.Next(0, 30)), Nothing, null));
                scheduled++;
            }

            for (int i = 0; i < 4; i++)
            {
                cancelledByCaller += wheel.Cancel(handles[rng.Next(handles.Count)]) ? 1 : 0;
            }

            if (rng.Next(2) == 0)
            {
                _clock.Advance(TimeSpan.FromMilliseconds(rng.Next(1, 5)));
                wheel.Advance();
            }
        }

        for (int i = 0; i < 10; i++)
        {
            handles.Add(wheel.Schedule(TimeSpan.FromMilliseconds(rng.Next(0, 30)), Nothing, null));
            scheduled++;
        }

        for (int i = handles.Count - 1; i >= handles.Count - 20; i -= 2)
        {
            cancelledByCaller += wheel.Cancel(handles[i]) ? 1 : 0; // not reclaimed before Dispose
        }

        wheel.Dispose();
        Assert.Equal(cancelledByCaller, wheel.CancelledCount);
        Assert.Equal(scheduled, wheel.FiredCount + wheel.CancelledCount + wheel.DroppedCount);
    }
}
