namespace LockFree;

/// <summary>
/// A snapshot of a <see cref="WorkStealingTaskScheduler"/>'s counters. Read without stopping the workers, so
/// the fields are each accurate but not taken at one instant. Every queued task is eventually executed,
/// dequeued by <see cref="TaskScheduler"/> (cancellation) or skipped because it already ran inline, so
/// <see cref="Executed"/> is at most <see cref="Queued"/> plus the tasks run inline without being queued.
/// </summary>
/// <param name="Queued">Tasks queued (from workers, outside threads and LongRunning).</param>
/// <param name="Executed">Tasks run (by workers, inline on workers, on LongRunning threads, and by callers of <see cref="WorkStealingTaskScheduler.ForkJoin{TState, TFirst, TSecond}"/> off the workers that took their fork back).</param>
/// <param name="Stolen">Successful steals of tasks and forked jobs (a batch counts once).</param>
/// <param name="StealAttempts">Steal attempts (deques and LIFO slots).</param>
/// <param name="Spilled">Tasks that found the injection queue full and went to the overflow (spill) queue.</param>
/// <param name="ParkedWorkers">Workers parked now.</param>
/// <param name="WorkerCount">The target worker count now.</param>
/// <param name="InjectionQueueDepth">Tasks in the injection queue and overflow queue now.</param>
/// <param name="Helped">Tasks and forked jobs a worker ran while it waited in <see cref="WorkStealingTaskScheduler.Join(Task)"/> or <see cref="WorkStealingTaskScheduler.ForkJoin{TState, TFirst, TSecond}"/> (tasks among them are included in <see cref="Executed"/>).</param>
/// <param name="Forked">Halves forked by <see cref="WorkStealingTaskScheduler.ForkJoin{TState, TFirst, TSecond}"/> on workers (jobs, not tasks: not in <see cref="Queued"/>).</param>
/// <param name="ForksStolen">Forked halves that another worker took and ran (also counted in <see cref="Stolen"/>); the rest ran on the worker that forked them.</param>
/// <param name="ScaleClockFailures">Exceptions the <see cref="WorkStealingTaskSchedulerOptions.TimeProvider"/> threw inside an <see cref="WorkStealingTaskSchedulerOptions.AutoScale"/> sample (a reading, or re-arming the sample timer): that sample made no scale-down step; a failed re-arm ends scaling, the workers stay as they are. Caught, so a throwing custom clock never ends the process from a timer callback.</param>
/// <param name="RedirectedAfterDispose">Tasks queued from outside threads after <see cref="WorkStealingTaskScheduler.Dispose"/> began, which the scheduler handed to the .NET thread pool (LongRunning ones: to a dedicated thread) instead of refusing them; not in <see cref="Queued"/> or <see cref="Executed"/>. Counted when handed off.</param>
public readonly record struct WorkStealingTaskSchedulerStatistics(
    long Queued,
    long Executed,
    long Stolen,
    long StealAttempts,
    long Spilled,
    int ParkedWorkers,
    int WorkerCount,
    long InjectionQueueDepth,
    long Helped = 0,
    long Forked = 0,
    long ForksStolen = 0,
    long RedirectedAfterDispose = 0,
    long ScaleClockFailures = 0);
