using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Review of the wheel's public contract (2026-11-22): claims checked that no earlier test pinned down. These passed
/// on the reviewed code; they guard the boundaries against regressions.
/// </summary>
public sealed class TimerWheelContractReviewTests
{
    private static readonly Action<object?> Nothing = static _ => { };

    [Theory]
    [InlineData(1L)]              // 100 ns
    [InlineData(10_000L)]         // 1 ms
    [InlineData(8_388_607L)]      // the longest tick whose 2^40 ticks fit a TimeSpan
    [InlineData(8_388_608L)]      // the shortest whose MaxDueIn is TimeSpan.MaxValue
    [InlineData(864_000_000_000L)] // a day
    public void Schedule_AtMaxDueIn_AcceptedAndOneTickMoreThrows(long tickTicks)
    {
        var clock = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromTicks(tickTicks), clock);
        TimerHandle atMax = wheel.Schedule(wheel.MaxDueIn, Nothing, null);
        Assert.True(wheel.Cancel(atMax));
        if (wheel.MaxDueIn != TimeSpan.MaxValue)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => wheel.Schedule(wheel.MaxDueIn + TimeSpan.FromTicks(1), Nothing, null));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.Schedule(TimeSpan.FromTicks(-1), Nothing, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.Schedule(TimeSpan.MinValue, Nothing, null));
        Assert.Equal(0, wheel.Advance()); // still usable; the cancelled timer never fires
        Assert.Equal(1, wheel.CancelledCount);
    }

    [Fact]
    public void Advance_CallbackDisposesMidBatch_RestOfTheBatchRunsAndLaterTimersAreDropped()
    {
        var clock = new ManualTimeProvider();
        var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        int ran = 0;
        for (int i = 0; i < 5; i++)
        {
            wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => { Interlocked.Increment(ref ran); wheel.Dispose(); }, null);
        }

        wheel.Schedule(TimeSpan.FromMilliseconds(50), _ => Interlocked.Increment(ref ran), null);
        clock.Advance(TimeSpan.FromMilliseconds(10));

        Assert.Equal(5, wheel.Advance()); // claimed for firing before the Dispose: they still run
        Assert.Equal(5, ran);
        Assert.Equal(5, wheel.FiredCount);
        Assert.Equal(1, wheel.DroppedCount);
        Assert.Throws<ObjectDisposedException>(() => wheel.Advance());
        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(5, ran);
    }

    [Fact]
    public void AverageLateness_SumBeyondLongRange_StaysTheMean()
    {
        // The lateness sum was a long of timestamps: on Linux (a nanosecond timestamp) about 10^13 timers a
        // millisecond late, some days of a busy wheel, overflow it, and AverageLateness (and the
        // lockfree.timer.lateness.average gauge) turned negative. Compressed here: three timers, each about 10,000
        // years late on a 100 ns clock, sum past long.MaxValue.
        var clock = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        for (int i = 0; i < 3; i++)
        {
            wheel.Schedule(TimeSpan.Zero, Nothing, null);
        }

        TimeSpan late = TimeSpan.FromDays(365.0 * 10_000);
        clock.Advance(late);
        Assert.Equal(3, wheel.Advance());

        Assert.True(wheel.LastLateness > late - TimeSpan.FromSeconds(1), $"last {wheel.LastLateness}");
        Assert.True(wheel.AverageLateness > late - TimeSpan.FromSeconds(1), $"average {wheel.AverageLateness}");
        Assert.True(wheel.AverageLateness <= late, $"average {wheel.AverageLateness}");
    }
}
