namespace LockFree;

/// <summary>
/// Options of a <see cref="WorkStealingTaskScheduler"/>. Every property has a documented default and is
/// validated when the scheduler is constructed (an out-of-range value throws
/// <see cref="ArgumentOutOfRangeException"/>; nothing is clamped).
/// </summary>
public sealed class WorkStealingTaskSchedulerOptions
{
    /// <summary>Default of <see cref="InjectionQueueCapacity"/>: 4096 tasks (rounded to a power of two by the ring).</summary>
    public const int DefaultInjectionQueueCapacity = 4096;

    /// <summary>Default of <see cref="LifoSlotRunLimit"/>: 3 consecutive LIFO-slot runs, as in Tokio.</summary>
    public const int DefaultLifoSlotRunLimit = 3;

    /// <summary>Default of <see cref="InjectionCheckInterval"/>: every 61st task, as in Go and Tokio (a prime, so it does not beat with task patterns).</summary>
    public const int DefaultInjectionCheckInterval = 61;

    /// <summary>Default of <see cref="SpinRounds"/>: 16 full search rounds before parking.</summary>
    public const int DefaultSpinRounds = 16;

    /// <summary>
    /// Initial number of worker threads. Default: <see cref="Environment.ProcessorCount"/>. Must lie in
    /// [<see cref="MinimumWorkerCount"/>, <see cref="MaximumWorkerCount"/>] once those are resolved.
    /// </summary>
    public int WorkerCount { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Fewest workers the scheduler may run (scale-down floor). Default 0, meaning "the initial
    /// <see cref="WorkerCount"/>" (no scale-down below it). Otherwise in [1, <see cref="WorkerCount"/>].
    /// </summary>
    public int MinimumWorkerCount { get; set; }

    /// <summary>
    /// Most workers the scheduler may run (scale-up ceiling); also the scheduler's
    /// <see cref="System.Threading.Tasks.TaskScheduler.MaximumConcurrencyLevel"/>. Default 0, meaning "the
    /// initial <see cref="WorkerCount"/>" (no scale-up above it). Otherwise in [<see cref="WorkerCount"/>, 1024].
    /// </summary>
    public int MaximumWorkerCount { get; set; }

    /// <summary>
    /// Capacity of the bounded lock-free injection queue that takes tasks queued from threads that are not
    /// workers of this scheduler. Default <see cref="DefaultInjectionQueueCapacity"/>; in [2, 2^30]. When it is
    /// full, tasks go to an unbounded lock-free overflow queue (counted as <c>spilled</c> in the metrics), so
    /// queuing never fails. Raise it when bursts from outside threads keep spilling.
    /// </summary>
    public int InjectionQueueCapacity { get; set; } = DefaultInjectionQueueCapacity;

    /// <summary>
    /// After this many consecutive runs from a worker's LIFO slot, the worker moves the slot's task to its deque
    /// and takes the oldest task instead (starvation cap). Default <see cref="DefaultLifoSlotRunLimit"/>; in
    /// [0, 1000]; 0 disables the LIFO slot.
    /// </summary>
    public int LifoSlotRunLimit { get; set; } = DefaultLifoSlotRunLimit;

    /// <summary>
    /// A worker looks at the injection queue before its own deque every this many tasks, so work that outside
    /// threads queue is not starved by a worker that keeps feeding itself. Default
    /// <see cref="DefaultInjectionCheckInterval"/>; in [1, 1_000_000].
    /// </summary>
    public int InjectionCheckInterval { get; set; } = DefaultInjectionCheckInterval;

    /// <summary>
    /// Search rounds (LIFO slot, own deque, injection queue, every other worker) an idle worker makes, with a
    /// bounded spin between rounds, before it parks on its event. Default <see cref="DefaultSpinRounds"/>; in
    /// [0, 10_000]. Parked workers use no CPU.
    /// </summary>
    public int SpinRounds { get; set; } = DefaultSpinRounds;

    /// <summary>
    /// Enables the built-in scale rule: every <see cref="ScaleSampleInterval"/> the scheduler samples its backlog;
    /// when, at two consecutive samples, the injection queue depth was above <see cref="ScaleUpQueueDepth"/> or work
    /// was queued anywhere while no worker was idle (all running or blocked in tasks, e.g. fork-join parents waiting
    /// on forks that other workers run), one worker is added (up to <see cref="MaximumWorkerCount"/>); when at least
    /// one worker stayed parked for <see cref="ScaleDownIdleTime"/>, one worker is retired (down to
    /// <see cref="MinimumWorkerCount"/>). The rule cannot tell a blocked worker from a busy one, so with CPU-bound
    /// work that keeps spawning it grows to the maximum. Default false (the worker count changes only through
    /// <see cref="WorkStealingTaskScheduler.SetWorkerCount"/>).
    /// </summary>
    public bool AutoScale { get; set; }

    /// <summary>Sampling period of the scale rule. Default 100 ms; in [1 ms, 1 h].</summary>
    public TimeSpan ScaleSampleInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Injection-queue depth above which the scale rule adds a worker. Default 64; in [0, 2^30].</summary>
    public int ScaleUpQueueDepth { get; set; } = 64;

    /// <summary>How long a worker must stay parked before the scale rule retires one. Default 5 s; in [1 ms, 1 day].</summary>
    public TimeSpan ScaleDownIdleTime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Clock of the scale rule. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Name for metrics (tag <c>lockfree.scheduler.name</c>) and worker thread names. Default null: the
    /// scheduler reports no metrics and its threads are named "WorkStealing worker N".
    /// </summary>
    public string? Name { get; set; }
}
