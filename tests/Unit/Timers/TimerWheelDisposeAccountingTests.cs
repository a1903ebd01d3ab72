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
    [Fact]
    public void Dispose_WhileADriverCallbackSchedules_NeitherWaitsForTheOther()
    {
        // A callback on the driver thread schedules while another thread disposes: Schedule reads the flags (Stale:
        // the driver runs callbacks) and the clock; Dispose raises its flag right then (the provider's hook); the
        // Schedule then sees Disposed after publishing its node and waits for Dispose's scan. Dispose must scan
        // before it joins the driver thread, or the two wait for each other for ever.
        var provider = new HookedTimeProvider();
        var wheel = new TimerWheelEngine<RealAtomics>(Tick, provider, 4096);
        var scheduled = new ManualResetEventSlim();
        Thread? disposer = null;
        Exception? unexpected = null;
        bool threw = false;
        wheel.StartDriver();
        wheel.Schedule(TimeSpan.Zero, _ =>
        {
            provider.Arm(Thread.CurrentThread, () =>
            {
                disposer = new Thread(wheel.Dispose) { IsBackground = true };
                disposer.Start();
                SpinWait.SpinUntil(() => wheel.IsDisposed, TimeSpan.FromSeconds(10));
            });
            try
            {
                wheel.Schedule(TimeSpan.FromSeconds(10), Nothing, null);
            }
            catch (ObjectDisposedException)
            {
                threw = true;
            }
            catch (Exception e)
            {
                unexpected = e;
            }

            scheduled.Set();
        }, null);

        Assert.True(scheduled.Wait(TimeSpan.FromSeconds(20)), "the callback's Schedule never returned (it waits for Dispose, which waits for the driver)");
        Assert.NotNull(disposer);
        Assert.True(disposer!.Join(TimeSpan.FromSeconds(20)), "Dispose never returned");
        Assert.Null(unexpected);
        Assert.Equal(threw ? 0 : 1, wheel.DroppedCount); // thrown: withdrawn; returned: dropped and counted
        Assert.Equal(1, wheel.FiredCount);
    }

    /// <summary>The system clock, with a one-shot hook run inside GetTimestamp on one thread.</summary>
    private sealed class HookedTimeProvider : TimeProvider
    {
        private Thread? _thread;
        private Action? _hook;

        public void Arm(Thread thread, Action hook)
        {
            _hook = hook;
            Volatile.Write(ref _thread, thread);
        }

        public override long GetTimestamp()
        {
            if (ReferenceEquals(Volatile.Read(ref _thread), Thread.CurrentThread) && Interlocked.Exchange(ref _hook, null) is { } hook)
            {
                hook();
            }

            return base.GetTimestamp();
        }
    }
}
