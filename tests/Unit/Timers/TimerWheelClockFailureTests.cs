using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// A <see cref="TimeProvider"/> that throws under the wheel (review, 2026-11-23): the driver thread must survive a
/// failing clock read (counted, reported, retried after a back-off) instead of ending, and a batch of due timers must
/// not be lost when the lateness reading taken before it fires throws.
/// </summary>
public sealed class TimerWheelClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public void Advance_LatenessReadingThrows_ThatBatchLeavesTheLatenessMetricsAlone()
    {
        // Review, 2026-11-23: ClockFailureCount's docs say a batch whose lateness reading throws fires with its lateness
        // not recorded. Before, it was recorded as zero: LastLateness read 0 and the batch's timers pulled the average
        // down as if they had run on time (here 4 ms late, then an unknown lateness: the average read 2 ms).
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => { }, null); // due tick 2
        manual.Advance(TimeSpan.FromMilliseconds(6));
        Assert.Equal(1, wheel.Advance());
        Assert.Equal(TimeSpan.FromMilliseconds(4), wheel.LastLateness);

        wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => { }, null);
        manual.Advance(TimeSpan.FromMilliseconds(10));
        clock.FailReading(2); // the lateness reading of the second batch
        Assert.Equal(1, wheel.Advance());

        Assert.Equal(2, wheel.FiredCount);
        Assert.Equal(1, wheel.ClockFailureCount);
        Assert.Equal(TimeSpan.FromMilliseconds(4), wheel.LastLateness);    // still the last one measured
        Assert.Equal(TimeSpan.FromMilliseconds(4), wheel.AverageLateness); // over the timers whose lateness is known
    }

    [Fact]
    public void Advance_LatenessReadingThrows_BatchStillFiresAndTheFailureIsCounted()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        var failures = new List<Exception>();
        wheel.ClockFailed += (sender, ex) =>
        {
            Assert.Same(wheel, sender);
            failures.Add(ex);
        };
        int ran = 0;
        wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => ran++, null);
        wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => ran++, null);
        manual.Advance(TimeSpan.FromMilliseconds(10));

        // Advance reads the clock for its target tick (reading 1), takes the due timers out of the wheel, then reads it
        // again for their lateness (reading 2). Before, that second reading's exception escaped Advance with both timers
        // already out of the wheel: they never ran and were never counted (lost, and their nodes with them).
        clock.FailReading(2);
        Assert.Equal(2, wheel.Advance());

        Assert.Equal(2, ran);
        Assert.Equal(2, wheel.FiredCount);
        Assert.Equal(0, wheel.PendingCount);
        Assert.Equal(1, wheel.ClockFailureCount);
        Assert.Equal("clock failed", Assert.Single(failures).Message);
    }

    [Fact]
    public void Advance_TargetReadingThrows_PropagatesAndNothingIsTaken()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        int ran = 0;
        wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => ran++, null);
        manual.Advance(TimeSpan.FromMilliseconds(10));

        clock.FailReading(1); // the manual caller's own reading: it sees the exception, the wheel is untouched
        Assert.Throws<InvalidOperationException>(() => wheel.Advance());
        Assert.Equal(0, ran);

        Assert.Equal(1, wheel.Advance());
        Assert.Equal(1, ran);
    }

    [Fact]
    public void Driver_ClockReadsThrow_DriverSurvivesAndStillFiresTheTimer()
    {
        // The clock throws on the driver thread a few times. Before, the driver thread ended on the first failure
        // (an ObjectDisposedException from the clock was taken for the wheel's own disposal and ended it silently;
        // any other exception was unhandled and ended the process) while IsDriverRunning stayed true, and no timer
        // ever fired again. ObjectDisposedException is the variant that fails this test without ending the test host.
        var clock = new DriverThreadFailingClock(failures: 3, () => new ObjectDisposedException("clock"));
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        var reported = new List<Exception>();
        wheel.ClockFailed += (_, ex) => { lock (reported) { reported.Add(ex); } };
        using var fired = new ManualResetEventSlim();
        wheel.Schedule(TimeSpan.FromMilliseconds(20), _ => fired.Set(), null);

        wheel.StartDriver();

        Assert.True(fired.Wait(Generous), "the timer never fired: the driver died on the clock's exception");
        Assert.True(wheel.IsDriverRunning);
        Assert.Equal(3, wheel.ClockFailureCount);
        lock (reported)
        {
            Assert.Equal(3, reported.Count);
            Assert.All(reported, ex => Assert.IsType<ObjectDisposedException>(ex));
        }
    }

    [Fact]
    public void Driver_ClockThrowsAnyException_DriverSurvivesAndDisposeStopsIt()
    {
        var clock = new DriverThreadFailingClock(failures: 2, () => new InvalidOperationException("clock failed"));
        var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        using var fired = new ManualResetEventSlim();
        wheel.Schedule(TimeSpan.FromMilliseconds(20), _ => fired.Set(), null);

        wheel.StartDriver();

        Assert.True(fired.Wait(Generous), "the timer never fired");
        Assert.Equal(2, wheel.ClockFailureCount);
        wheel.Dispose();
        Assert.False(wheel.IsDriverRunning);
    }

    [Fact]
    public async Task Driver_ClockKeepsThrowing_DisposeStillStopsTheBackedOffDriver()
    {
        var clock = new DriverThreadFailingClock(failures: int.MaxValue, () => new InvalidOperationException("clock failed"));
        var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        wheel.StartDriver();
        DateTime deadline = DateTime.UtcNow + Generous;
        while (wheel.ClockFailureCount < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, "the driver stopped retrying");
            await Task.Delay(1);
        }

        Assert.True(wheel.IsDriverRunning); // running, retrying: the counter says why nothing fires
        Task disposing = Task.Run(wheel.Dispose);
        Assert.Same(disposing, await Task.WhenAny(disposing, Task.Delay(Generous))); // else Dispose did not stop a driver backing off
        Assert.False(wheel.IsDriverRunning);
    }

    [Fact]
    public void Driver_ClockKeepsThrowing_RetriesBackOffInsteadOfSpinning()
    {
        // The retries wait 1 ms, doubling to 1 s: in 300 ms about nine failures (fewer on a loaded machine, never more).
        // Without the back-off the driver rereads the failing clock in a loop, thousands of times in that window (a
        // mutant that survived the session 19 mutation run of TimerWheelEngine.Driver.cs).
        var clock = new DriverThreadFailingClock(failures: int.MaxValue, () => new InvalidOperationException("clock failed"));
        var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        wheel.StartDriver();
        DateTime deadline = DateTime.UtcNow + Generous;
        while (wheel.ClockFailureCount == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the driver never read the clock");
            Thread.Sleep(1);
        }

        long first = wheel.ClockFailureCount;
        Thread.Sleep(300);
        long failures = wheel.ClockFailureCount - first;
        wheel.Dispose();
        Assert.InRange(failures, 0, 40);
    }

    /// <summary>The system clock, except that its first <c>failures</c> readings on the wheel's driver thread throw.</summary>
    private sealed class DriverThreadFailingClock(int failures, Func<Exception> failure) : TimeProvider
    {
        private int _left = failures;

        public override long GetTimestamp()
        {
            if (Thread.CurrentThread.Name == "LockFree timer wheel" && Volatile.Read(ref _left) > 0 && Interlocked.Decrement(ref _left) >= 0)
            {
                throw failure();
            }

            return System.GetTimestamp();
        }
    }
}
