using LockFree.Backpressure;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Timeouts of asynchronous waits on a timer wheel (on <see cref="TimeProvider.System"/> the library's shared wheel;
/// here a test wheel on a manual clock, driven by <see cref="HierarchicalTimerWheel.Advance"/>, so every step is
/// deterministic): the timeout fires, a signal cancels it, and a timeout that fires while its wait ends another way
/// never reaches the waiter's next wait.
/// </summary>
public sealed class WaiterWheelTimeoutTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private readonly ManualTimeProvider _clock = new();

    private static ValueTask<WaitStatus> Await(Waiter waiter) => new(waiter, waiter.Version);

    /// <summary>An asynchronous wait on <paramref name="list"/> whose timeout of <paramref name="ms"/> is on <paramref name="wheel"/>.</summary>
    private (Waiter Waiter, ValueTask<WaitStatus> Wait) ParkTimed(WaiterList list, HierarchicalTimerWheel wheel, int ms)
    {
        Waiter waiter = list.RentAndLink(synchronous: false);
        waiter.Arm(TimeSpan.FromMilliseconds(ms), CancellationToken.None, _clock, wheel);
        return (waiter, Await(waiter));
    }

    private void AdvanceBy(HierarchicalTimerWheel wheel, int ms)
    {
        _clock.Advance(TimeSpan.FromMilliseconds(ms));
        wheel.Advance();
    }

    [Fact]
    public async Task TimedWait_Due_EndsTimedOutFromTheWheel()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        var list = new WaiterList(static _ => { });
        (Waiter waiter, ValueTask<WaitStatus> wait) = ParkTimed(list, wheel, 5);

        AdvanceBy(wheel, 3);
        Assert.Equal(WaitStatus.Pending, waiter.Status);
        AdvanceBy(wheel, 5);

        Assert.Equal(WaitStatus.TimedOut, await wait.AsTask().WaitAsync(Generous));
        Assert.Equal(1, wheel.FiredCount);
        Assert.Equal(0, list.Count); // the timeout unlinked it
    }

    [Fact]
    public async Task TimedWait_SignalledFirst_CancelsItsWheelTimer()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        var list = new WaiterList(static _ => { });
        (Waiter waiter, ValueTask<WaitStatus> wait) = ParkTimed(list, wheel, 5);

        list.SignalOne();

        Assert.Equal(WaitStatus.Signaled, await wait.AsTask().WaitAsync(Generous));
        AdvanceBy(wheel, 10);
        Assert.Equal(0, wheel.FiredCount);
        Assert.Equal(1, wheel.CancelledCount);
        Assert.Same(waiter, list.RentAndLink(synchronous: false)); // back in the pool at once
    }

    [Fact]
    public async Task TimeoutFiringAsItsWaitIsSignalled_NeverEndsTheWaitersNextWait()
    {
        // The wheel claims a batch of due timers, then runs their callbacks one by one. A blocker due one tick after
        // the waiter's timeout is claimed after it and runs first (the batch is a stack), so while the blocker runs,
        // the waiter's timeout is claimed (Cancel answers false) but its callback has not run. The blocker then signals
        // the wait, consumes it, and parks a new timed wait. Before the waiter kept the recycling back for its late
        // callback, it went straight back to the pool, the new wait rented it (a new generation, the callback's
        // generation field overwritten), and the late callback timed the new wait out at once.
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        var list = new WaiterList(static _ => { });
        Waiter first = list.RentAndLink(synchronous: false);
        Waiter? second = null;
        bool sawRace = false;
        wheel.Schedule(TimeSpan.FromMilliseconds(6), _ =>
        {
            sawRace = first.Status == WaitStatus.Pending; // the precondition: the first timeout is claimed, not run
            Assert.True(first.TryFinish(WaitStatus.Signaled));
            ValueTask<WaitStatus> firstWait = Await(first);
            Assert.True(SpinWait.SpinUntil(() => firstWait.IsCompleted, Generous));
            Assert.Equal(WaitStatus.Signaled, firstWait.GetAwaiter().GetResult()); // consumes it: Cancel fails here

            second = list.RentAndLink(synchronous: false);
            second.Arm(TimeSpan.FromHours(1), CancellationToken.None, _clock, wheel);
        }, null);
        first.Arm(TimeSpan.FromMilliseconds(5), CancellationToken.None, _clock, wheel);

        AdvanceBy(wheel, 10); // claims both, runs the blocker, then the first wait's late timeout

        Assert.True(sawRace, "the blocker ran after the first timeout's callback: the scenario did not happen");
        Assert.NotNull(second);
        Assert.Equal(WaitStatus.Pending, second!.Status);
        Assert.NotSame(first, second);
        Assert.True(second.TryFinish(WaitStatus.Signaled));
        Assert.Equal(WaitStatus.Signaled, await Await(second).AsTask().WaitAsync(Generous));
        Waiter again = list.RentAndLink(synchronous: false); // the late callback returned the first waiter to the pool
        Assert.True(ReferenceEquals(again, first) || ReferenceEquals(again, second));
    }

    [Fact]
    public async Task BufferTimedWriteAsync_OnTheSystemClock_TimesOutThroughTheSharedWheel()
    {
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1 });
        Assert.True(buffer.TryWrite(1).IsSuccess);
        long firedBefore = LockFree.Timers.SharedTimerWheel.Driven!.FiredCount;

        WriteResult result = await buffer.WriteAsync(2, OverflowPolicy.Wait, TimeSpan.FromMilliseconds(20)).AsTask().WaitAsync(Generous);

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.True(LockFree.Timers.SharedTimerWheel.Driven!.FiredCount > firedBefore);
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.False(buffer.TryRead(out _)); // the timed-out write left no trace
    }
}
