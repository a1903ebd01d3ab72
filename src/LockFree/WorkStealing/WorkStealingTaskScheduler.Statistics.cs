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
            long handedOff, injected, spilled;
            using (InterruptDeferral.Lock(_scaleLock))
            {
                // The ring position and the spill count are read under the lock too: a retiring worker enqueues its tasks
                // and adds them to _handedOff under it, so reading them after releasing it counted a hand-off in between
                // as new tasks, and the next read went down (Queued is an observable counter: it must never decrease).
                // (Found by Statistics_ReadWhileRetiringWorkersHandOff_QueuedAndExecutedNeverDecrease.)
                sum = _retired;
                handedOff = _handedOff;
                injected = ((Queues.IQueuePositions)_injection).EnqueuedPositions - _injectionBase;
                spilled = Interlocked.Read(ref _spilledTotal);
                foreach (Worker? worker in _workers)
                {
                    if (worker is not null)
                    {
                        sum.Add(worker);
                    }
                }
            }

            return new WorkStealingTaskSchedulerStatistics(
                // Outside threads' tasks = ring enqueues + spills, less the hand-offs of retiring workers (queued before).
                Queued: sum.Queued + Interlocked.Read(ref _sharedQueued) + injected + spilled - handedOff,
                Executed: sum.Executed + Interlocked.Read(ref _sharedExecuted),
                Stolen: sum.Stolen,
                StealAttempts: sum.StealAttempts,
                Spilled: spilled,
                ParkedWorkers: ParkedWorkers,
                WorkerCount: TargetWorkerCount,
                InjectionQueueDepth: _injection.Count + _spill.Count,
                Helped: sum.Helped,
                Forked: sum.Forked,
                ForksStolen: sum.ForksStolen,
                RedirectedAfterDispose: Interlocked.Read(ref _redirectedAfterDispose),
                ScaleClockFailures: Interlocked.Read(ref _scaleClockFailures));
        }
    }
}
