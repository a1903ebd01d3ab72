using LockFree.Internal;

namespace LockFree;

public sealed partial class WorkStealingTaskScheduler
{
    /// <summary>A snapshot of the counters (see <see cref="WorkStealingTaskSchedulerStatistics"/>); also reported as metrics when <see cref="Name"/> is set.</summary>
    public WorkStealingTaskSchedulerStatistics Statistics
    {
        get
        {
            Counters sum;
            long handedOff;
            using (InterruptDeferral.Lock(_scaleLock))
            {
                sum = _retired;
                handedOff = _handedOff;
                foreach (Worker? worker in _workers)
                {
                    if (worker is not null)
                    {
                        sum.Add(worker);
                    }
                }
            }

            long spilled = Interlocked.Read(ref _spilledTotal);

            return new WorkStealingTaskSchedulerStatistics(
                // Outside threads' tasks = ring enqueues + spills, less the hand-offs of retiring workers (queued before).
                Queued: sum.Queued + Interlocked.Read(ref _sharedQueued)
                    + (((Queues.IQueuePositions)_injection).EnqueuedPositions - _injectionBase) + spilled - handedOff,
                Executed: sum.Executed + Interlocked.Read(ref _sharedExecuted),
                Stolen: sum.Stolen,
                StealAttempts: sum.StealAttempts,
                Spilled: spilled,
                ParkedWorkers: ParkedWorkers,
                WorkerCount: TargetWorkerCount,
                InjectionQueueDepth: _injection.Count + _spill.Count,
                Helped: sum.Helped,
                Forked: sum.Forked,
                ForksStolen: sum.ForksStolen);
        }
    }
}
