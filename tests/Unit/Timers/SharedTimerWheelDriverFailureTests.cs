using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Timers;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// The shared wheel whose driver thread cannot start (simulated with <c>DriverStartForTest</c> on a
/// <see cref="LazyDrivenWheel"/> of the test's own, built as <see cref="SharedTimerWheel"/> builds the library's).
/// A timed asynchronous wait must still time out: it falls back to a per-wait <see cref="TimeProvider"/> timer, the
/// failure is counted and kept, and a later use starts the driver. Before (review, 2026-11-23) the wheel was
/// published before its driver started, so every timed wait after the failure was scheduled on a wheel nothing drove
/// and never timed out.
/// </summary>
public sealed class SharedTimerWheelDriverFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>A source like the library's (1 ms tick, the system clock) whose driver fails to start while <paramref name="failing"/> says so.</summary>
    private static LazyDrivenWheel Source(StrongBox<bool> failing, TimeSpan retryAfter, List<HierarchicalTimerWheel> created) =>
        new(() =>
        {
            var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), TimeProvider.System)
            {
                DriverStartForTest = thread =>
                {
                    if (failing.Value)
                    {
                        throw new OutOfMemoryException("simulated: no thread");
                    }

                    thread.UnsafeStart();
                },
            };
            created.Add(wheel);
            return wheel;
        }, retryAfter);

    /// <summary>A timed asynchronous wait armed as <see cref="Waiter.Arm(TimeSpan, CancellationToken, TimeProvider)"/> does on the system clock, with <paramref name="source"/> as the shared wheel.</summary>
    private static ValueTask<WaitStatus> ParkTimed(WaiterList list, LazyDrivenWheel source, TimeSpan timeout)
    {
        Waiter waiter = list.RentAndLink(synchronous: false);
        waiter.Arm(timeout, CancellationToken.None, TimeProvider.System, source.TryGet());
        return new ValueTask<WaitStatus>(waiter, waiter.Version);
    }

    [Fact]
    public async Task TimedWait_DriverCannotStart_StillTimesOutAndTheFailureIsCounted()
    {
        var created = new List<HierarchicalTimerWheel>();
        LazyDrivenWheel source = Source(new StrongBox<bool>(true), TimeSpan.FromHours(1), created);
        var list = new WaiterList(static _ => { });
        try
        {
            // The first wait meets the failure, the second comes after it (before: scheduled on the undriven wheel).
            ValueTask<WaitStatus> first = ParkTimed(list, source, TimeSpan.FromMilliseconds(20));
            ValueTask<WaitStatus> second = ParkTimed(list, source, TimeSpan.FromMilliseconds(20));

            Assert.Equal(WaitStatus.TimedOut, await first.AsTask().WaitAsync(Generous));
            Assert.Equal(WaitStatus.TimedOut, await second.AsTask().WaitAsync(Generous));
            Assert.Equal(1, source.StartFailures); // counted once: the second use backs off instead of trying again
            Assert.IsType<OutOfMemoryException>(source.LastStartFailure);
            Assert.Null(source.TryGet());
            Assert.Equal(0, list.Count);
        }
        finally
        {
            created.ForEach(w => w.Dispose());
        }
    }

    [Fact]
    public async Task TryGet_AfterTheRetryDelay_StartsTheDriverOnTheSameWheel()
    {
        var failing = new StrongBox<bool>(true);
        var created = new List<HierarchicalTimerWheel>();
        LazyDrivenWheel source = Source(failing, TimeSpan.Zero, created);
        try
        {
            Assert.Null(source.TryGet());
            Assert.Null(source.TryGet()); // retried at once (no back-off here), failed again
            Assert.Equal(2, source.StartFailures);

            failing.Value = false;
            HierarchicalTimerWheel? wheel = source.TryGet();
            Assert.NotNull(wheel);
            Assert.True(wheel.IsDriverRunning);
            Assert.Same(wheel, Assert.Single(created)); // the same wheel, started again after its rollback
            Assert.Same(wheel, source.TryGet());

            var list = new WaiterList(static _ => { });
            ValueTask<WaitStatus> wait = ParkTimed(list, source, TimeSpan.FromMilliseconds(20));
            Assert.Equal(WaitStatus.TimedOut, await wait.AsTask().WaitAsync(Generous));
            Assert.True(wheel.FiredCount >= 1); // on the wheel now, not a per-wait timer
        }
        finally
        {
            created.ForEach(w => w.Dispose());
        }
    }

    [Fact]
    public void SharedWheel_OnThisMachine_RunsItsDriver()
    {
        HierarchicalTimerWheel? wheel = SharedTimerWheel.Driven;
        Assert.NotNull(wheel);
        Assert.True(wheel.IsDriverRunning);
        Assert.Same(wheel, SharedTimerWheel.Driven);
        Assert.Equal(0, SharedTimerWheel.DriverStartFailures);
    }

    [Fact]
    public void Metrics_SharedDriverStartFailures_ReportsTheCount()
    {
        long? seen = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == TimerWheelMetrics.MeterName && instrument.Name == "lockfree.timer.shared.driver_start_failures")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => seen = value);
        TimerWheelMetrics.EnsureInstruments();
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Equal(SharedTimerWheel.DriverStartFailures, seen);
    }
}
