using System.Diagnostics.Metrics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="HierarchicalTimerWheel"/>'s counters and its observable instruments (<see cref="TimerWheelMetrics"/>)
/// on a manual clock: cancellations counted at the next advance, lateness per fired timer, the name tag.
/// </summary>
public sealed class TimerWheelMetricsTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    private readonly ManualTimeProvider _clock = new();

    [Fact]
    public void CancelledCount_QueuedLinkedAndExpiring_CountedAtNextAdvance()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        TimerHandle linked = wheel.Schedule(TimeSpan.FromMilliseconds(50), _ => { }, null);
        TimerHandle expiring = wheel.Schedule(TimeSpan.FromMilliseconds(3), _ => Assert.Fail("cancelled timer fired"), null);
        wheel.Advance();
        TimerHandle queued = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => { }, null);
        Assert.True(wheel.Cancel(queued));
        Assert.True(wheel.Cancel(linked));
        Assert.False(wheel.Cancel(linked)); // a second cancel counts nothing
        Assert.Equal(0, wheel.CancelledCount); // counted by the driver, not by Cancel

        wheel.Advance();
        Assert.Equal(2, wheel.CancelledCount);

        // Cancelled after linking, before the advance that reaches its due tick: taken out at that advance, counted once.
        Assert.True(wheel.Cancel(expiring));
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(0, wheel.Advance());
        wheel.Advance();
        Assert.Equal(3, wheel.CancelledCount);
        Assert.Equal(0, wheel.FiredCount);
        Assert.Equal(0, wheel.PendingCount);
    }

    [Fact]
    public void Lateness_ManualClock_IsClockAtFiringMinusDueTickStart()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        Assert.Equal(TimeSpan.Zero, wheel.LastLateness);
        Assert.Equal(TimeSpan.Zero, wheel.AverageLateness);

        wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => { }, null); // due tick 0 + 1 + 5 = 6
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(1, wheel.Advance());
        Assert.Equal(TimeSpan.FromMilliseconds(4), wheel.LastLateness);

        wheel.Schedule(TimeSpan.FromMilliseconds(2), _ => { }, null); // due tick 10 + 1 + 2 = 13, driven exactly then
        _clock.Advance(TimeSpan.FromMilliseconds(3));
        Assert.Equal(1, wheel.Advance());
        Assert.Equal(TimeSpan.Zero, wheel.LastLateness);
        Assert.Equal(TimeSpan.FromMilliseconds(2), wheel.AverageLateness);
    }

    [Fact]
    public void Metrics_NamedWheel_ReportsTaggedInstruments()
    {
        string name = "wheel-" + Guid.NewGuid().ToString("N");
        var values = new Dictionary<string, double>();
        using var listener = Listen(name, values);
        var wheel = new HierarchicalTimerWheel(Tick, _clock, HierarchicalTimerWheel.DefaultMaxTimers, name);
        using var unnamed = new HierarchicalTimerWheel(Tick, _clock);
        unnamed.Schedule(TimeSpan.Zero, _ => { }, null);
        unnamed.Advance();

        wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => { }, null);                                     // fires, 2 ms late
        wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => throw new InvalidOperationException("boom"), null); // fires and fails
        wheel.Schedule(TimeSpan.FromSeconds(10), _ => { }, null);                                          // stays pending
        TimerHandle cancelled = wheel.Schedule(TimeSpan.FromSeconds(10), _ => { }, null);
        wheel.Advance();
        Assert.True(wheel.Cancel(cancelled));
        _clock.Advance(TimeSpan.FromMilliseconds(4));
        wheel.Advance();

        listener.RecordObservableInstruments();
        Assert.Equal(1, values["lockfree.timer.pending"]);
        Assert.Equal(2, values["lockfree.timer.fired"]);
        Assert.Equal(1, values["lockfree.timer.failed"]);
        Assert.Equal(0, values["lockfree.timer.clock_failures"]);
        Assert.Equal(1, values["lockfree.timer.cancelled"]);
        Assert.Equal(0, values["lockfree.timer.dropped"]);
        Assert.Equal(2, values["lockfree.timer.lateness.last"]);
        Assert.Equal(2, values["lockfree.timer.lateness.average"]);

        // Disposed: the final counts, the dropped timer among them, are still reported until the wheel is collected.
        wheel.Dispose();
        listener.RecordObservableInstruments();
        Assert.Equal(1, values["lockfree.timer.dropped"]);
        Assert.Equal(0, values["lockfree.timer.pending"]);
        GC.KeepAlive(wheel);
    }

    [Fact]
    public void Metrics_UnnamedWheel_ReportsNothing()
    {
        var seen = new List<object?>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == TimerWheelMetrics.MeterName && instrument.Name.StartsWith("lockfree.timer.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        string marker = "unnamed-probe-" + Guid.NewGuid().ToString("N");
        using var named = new HierarchicalTimerWheel(Tick, _clock, 1024, marker); // makes sure the instruments exist
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == TimerWheelMetrics.NameTag)
                {
                    lock (seen)
                    {
                        seen.Add(tag.Value);
                    }
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Contains(marker, seen);
        Assert.DoesNotContain(null, seen);
    }

    private static MeterListener Listen(string name, Dictionary<string, double> values)
    {
        var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == TimerWheelMetrics.MeterName && instrument.Name.StartsWith("lockfree.timer.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == TimerWheelMetrics.NameTag && (string?)tag.Value == name)
                {
                    lock (values)
                    {
                        values[instrument.Name] = value;
                    }
                }
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        return listener;
    }
}
