using System.Diagnostics.Metrics;
using LockFree.Diagnostics;
using LockFree.Timers;

namespace LockFree;

// Design: as BackpressureMetrics: observable instruments only, read by a MeterListener's collection from a weak
// registry of live named wheels, so Schedule, Cancel and the driver never touch the metrics. Every value is a
// counter the wheel keeps anyway or one the driver keeps off the Schedule/Cancel path: cancellations are counted
// when the driver reclaims them (at the next advance), lateness once per fired batch (one clock reading).

/// <summary>
/// The timer-wheel instruments, under the library's one meter name <c>LockFree</c>. Wheels created with a name
/// report, tagged <c>lockfree.timer.name</c>: <c>lockfree.timer.pending</c> (gauge: timers in the wheel as of the
/// last advance), <c>lockfree.timer.fired</c>, <c>lockfree.timer.cancelled</c> (reclaimed by the driver),
/// <c>lockfree.timer.failed</c> (callbacks that threw), <c>lockfree.timer.clock_failures</c> (the clock threw where no caller saw it), <c>lockfree.timer.dropped</c> (pending at Dispose)
/// (counters), and <c>lockfree.timer.lateness.last</c> / <c>lockfree.timer.lateness.average</c> (gauges, ms: how
/// late after its due tick's start a timer's firing batch began). Untagged, for the library's own shared wheel (the
/// timeouts of timed asynchronous waits on <see cref="TimeProvider.System"/>):
/// <c>lockfree.timer.shared.driver_start_failures</c> (counter: its driver thread failed to start; those waits then
/// use a timer each, and the start is retried a second later).
/// </summary>
public static class TimerWheelMetrics
{
    /// <summary>The meter name: <c>LockFree</c> (the same meter name as <see cref="BackpressureMetrics"/>).</summary>
    public const string MeterName = BackpressureMetrics.MeterName;

    /// <summary>The tag that carries the wheel's name.</summary>
    public const string NameTag = "lockfree.timer.name";

    private static readonly Meter Meter = LockFreeMeter.Meter;
    private static readonly MetricsRegistry<HierarchicalTimerWheel> Sources = new();

    static TimerWheelMetrics()
    {
        Meter.CreateObservableGauge("lockfree.timer.pending", () => Observe(w => w.PendingCount), unit: "{timer}", description: "Timers in the wheel as of the last advance.");
        Meter.CreateObservableCounter("lockfree.timer.fired", () => Observe(w => w.FiredCount), unit: "{timer}", description: "Callbacks run (including those that threw).");
        Meter.CreateObservableCounter("lockfree.timer.cancelled", () => Observe(w => w.CancelledCount), unit: "{timer}", description: "Cancelled timers reclaimed by the driver.");
        Meter.CreateObservableCounter("lockfree.timer.failed", () => Observe(w => w.FailedCallbackCount), unit: "{timer}", description: "Callbacks that threw.");
        Meter.CreateObservableCounter("lockfree.timer.clock_failures", () => Observe(w => w.ClockFailureCount), unit: "{failure}", description: "Exceptions of the wheel's TimeProvider on the driver thread or in a batch's lateness reading (the driver retries).");
        Meter.CreateObservableCounter("lockfree.timer.dropped", () => Observe(w => w.DroppedCount), unit: "{timer}", description: "Timers pending when the wheel was disposed.");
        Meter.CreateObservableGauge("lockfree.timer.lateness.last", () => ObserveDouble(w => w.LastLateness.TotalMilliseconds), unit: "ms", description: "How late the most recently fired timer ran.");
        Meter.CreateObservableCounter("lockfree.timer.shared.driver_start_failures", static () => SharedTimerWheel.DriverStartFailures, unit: "{failure}", description: "Failed starts of the driver thread of the library's shared wheel (the timeouts of timed waits on TimeProvider.System); meanwhile those waits use a timer each.");
        Meter.CreateObservableGauge("lockfree.timer.lateness.average", () => ObserveDouble(w => w.AverageLateness.TotalMilliseconds), unit: "ms", description: "How late fired timers ran on average.");
    }

    internal static void Register(HierarchicalTimerWheel wheel) => Sources.Register(wheel);

    /// <summary>Creates the instruments (the static constructor) without registering a wheel: the shared wheel's failure counter must exist once it counts.</summary>
    internal static void EnsureInstruments()
    {
    }

    private static List<Measurement<long>> Observe(Func<HierarchicalTimerWheel, long> read) =>
        Sources.Collect<long>(wheel => new Measurement<long>(read(wheel), new KeyValuePair<string, object?>(NameTag, wheel.Name)));

    private static List<Measurement<double>> ObserveDouble(Func<HierarchicalTimerWheel, double> read) =>
        Sources.Collect<double>(wheel => new Measurement<double>(read(wheel), new KeyValuePair<string, object?>(NameTag, wheel.Name)), combineByMax: true);
}
