using System.Diagnostics.Metrics;
using LockFree.Diagnostics;

namespace LockFree;

// Design: as BackpressureMetrics: observable instruments only, read at collection time from a registry of live
// named schedulers, so the task paths never touch the metrics. Same meter name ("LockFree"); a second Meter
// instance with that name is one meter to a MeterListener (it matches by name).

/// <summary>
/// Work-stealing scheduler instruments under the <c>LockFree</c> meter, tagged <c>lockfree.scheduler.name</c>
/// (schedulers created with <see cref="WorkStealingTaskSchedulerOptions.Name"/> set):
/// <c>lockfree.scheduler.queued</c>, <c>lockfree.scheduler.executed</c>, <c>lockfree.scheduler.stolen</c>,
/// <c>lockfree.scheduler.steal_attempts</c>, <c>lockfree.scheduler.spilled</c>, <c>lockfree.scheduler.helped</c>, <c>lockfree.scheduler.forked</c>, <c>lockfree.scheduler.forks_stolen</c> (counters),
/// <c>lockfree.scheduler.parked_workers</c>, <c>lockfree.scheduler.workers</c> and
/// <c>lockfree.scheduler.injection_depth</c> (gauges).
/// </summary>
public static class WorkStealingMetrics
{
    /// <summary>The tag that carries the scheduler's name.</summary>
    public const string NameTag = "lockfree.scheduler.name";

    private static readonly Meter Meter = LockFreeMeter.Meter;
    private static readonly MetricsRegistry<WorkStealingTaskScheduler> Sources = new();

    static WorkStealingMetrics()
    {
        Meter.CreateObservableCounter("lockfree.scheduler.queued", () => Observe(s => s.Queued), unit: "{task}", description: "Tasks queued to the scheduler.");
        Meter.CreateObservableCounter("lockfree.scheduler.executed", () => Observe(s => s.Executed), unit: "{task}", description: "Tasks the scheduler ran.");
        Meter.CreateObservableCounter("lockfree.scheduler.stolen", () => Observe(s => s.Stolen), unit: "{steal}", description: "Successful steals.");
        Meter.CreateObservableCounter("lockfree.scheduler.steal_attempts", () => Observe(s => s.StealAttempts), unit: "{steal}", description: "Steal attempts.");
        Meter.CreateObservableCounter("lockfree.scheduler.spilled", () => Observe(s => s.Spilled), unit: "{task}", description: "Tasks that went to the overflow queue because the injection queue was full.");
        Meter.CreateObservableCounter("lockfree.scheduler.helped", () => Observe(s => s.Helped), unit: "{task}", description: "Tasks and forked jobs workers ran while waiting in Join or ForkJoin.");
        Meter.CreateObservableCounter("lockfree.scheduler.forked", () => Observe(s => s.Forked), unit: "{job}", description: "Halves forked by ForkJoin on workers.");
        Meter.CreateObservableCounter("lockfree.scheduler.forks_stolen", () => Observe(s => s.ForksStolen), unit: "{job}", description: "Forked halves another worker took and ran.");
        Meter.CreateObservableGauge("lockfree.scheduler.parked_workers", () => Observe(s => s.ParkedWorkers), unit: "{worker}", description: "Workers parked.");
        Meter.CreateObservableGauge("lockfree.scheduler.workers", () => Observe(s => s.WorkerCount), unit: "{worker}", description: "Target worker count.");
        Meter.CreateObservableGauge("lockfree.scheduler.injection_depth", () => Observe(s => s.InjectionQueueDepth), unit: "{task}", description: "Tasks waiting in the injection queue and overflow queue.");
    }

    internal static void Register(WorkStealingTaskScheduler scheduler) => Sources.Register(scheduler);

    internal static void Unregister(WorkStealingTaskScheduler scheduler) => Sources.Unregister(scheduler);

    private static List<Measurement<long>> Observe(Func<WorkStealingTaskSchedulerStatistics, long> read) =>
        Sources.Collect<long>(scheduler => new Measurement<long>(read(scheduler.Statistics), new KeyValuePair<string, object?>(NameTag, scheduler.Name)));
}
