using LockFree.Internal;

namespace LockFree;

// Design: scaling. Workers live at indices [0, TargetWorkerCount) of _workers. Growing starts a worker at each new
// index (or cancels the retirement of a worker still there); shrinking marks the top workers RetireRequested and
// wakes them if parked. A retiring worker notices at the top of its loop (after its current task), and under
// _scaleLock hands its LIFO slot and deque off to the injection queue, folds its counters into the totals, leaves
// its index and exits: no queued task is stranded. All of it under _scaleLock, off the task paths.
//
// Built-in rule (options.AutoScale): a timer samples every ScaleSampleInterval. Backlog at two consecutive samples
// adds one worker: injection depth (ring + spill) above ScaleUpQueueDepth, or work queued anywhere while no worker
// is idle (none searching, none parked: all run or block in tasks; this is what compensates workers blocked in
// Task.Wait). At least one worker parked at every sample for ScaleDownIdleTime retires one. One step per sample,
// within [MinimumWorkerCount, MaximumWorkerCount].
public sealed partial class WorkStealingTaskScheduler
{
    private ITimer? _scaleTimer;
    private TimeProvider? _scaleClock;
    private TimeSpan _scaleInterval;
    private TimeSpan _scaleDownIdle;
    private int _scaleUpDepth;
    private int _samplesAboveDepth;
    private long _idleSince;
    private long _scaleClockFailures; // the scale clock's exceptions caught in Sample (statistics; written under _scaleLock)
    private bool _idleSinceValid;

    /// <summary>
    /// Sets the number of workers. Growing starts new workers at once; shrinking retires the newest workers after
    /// their current task, and each hands its queued tasks to the injection queue before it exits.
    /// </summary>
    /// <param name="workerCount">In [<see cref="MinimumWorkerCount"/>, <see cref="MaximumWorkerCount"/>].</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="workerCount"/> is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The scheduler is disposed.</exception>
    public void SetWorkerCount(int workerCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workerCount, _minimumWorkerCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(workerCount, _maximumWorkerCount);
        using (InterruptDeferral.Lock(_scaleLock))
        {
            ObjectDisposedException.ThrowIf(_scalingClosed || Volatile.Read(ref _disposeStarted) != 0, this);
            SetWorkerCountCore(workerCount);
        }
    }

    /// <summary>Live worker threads (retiring ones included) as a snapshot.</summary>
    internal int LiveWorkers
    {
        get
        {
            int live = 0;
            foreach (Worker? worker in _workers)
            {
                if (worker is not null)
                {
                    live++;
                }
            }

            return live;
        }
    }

    private void SetWorkerCountCore(int target)
    {
        // Under _scaleLock.
        int current = _targetWorkerCount;
        for (int i = target; i < current; i++)
        {
            if (_workers[i] is { } retiring)
            {
                WakeForRetire(retiring);
            }
        }

        for (int i = current; i < target; i++)
        {
            if (_workers[i] is { Exited: false } stillThere)
            {
                Volatile.Write(ref stillThere.RetireRequested, false); // not gone yet: keep it
            }
            else
            {
                try
                {
                    StartWorker(i);
                }
                catch
                {
                    // Grown as far as threads could be started: the workers below i run and are counted (before, the
                    // target stayed at its old value with workers running above it, out of reach of a later shrink).
                    Volatile.Write(ref _targetWorkerCount, i);
                    throw;
                }
            }
        }

        Volatile.Write(ref _targetWorkerCount, target);
    }

    /// <summary>
    /// Work waits (in the injection queue, a deque or a LIFO slot) and no worker is idle: every worker is running a
    /// task, or blocked in one (a fork-join parent waiting in Task.Wait on a fork another worker runs). A snapshot.
    /// </summary>
    private bool IsBacklogWithNoIdleWorker()
    {
        long state = Volatile.Read(ref _idleState);
        return Searching(state) == 0 && Parked(state) == 0 && HasVisibleWork();
    }

    private void StartAutoScale(WorkStealingTaskSchedulerOptions options)
    {
        _scaleClock = options.TimeProvider;
        _scaleInterval = options.ScaleSampleInterval;
        _scaleDownIdle = options.ScaleDownIdleTime;
        _scaleUpDepth = options.ScaleUpQueueDepth;
        using (InterruptDeferral.Lock(_scaleLock))
        {
            // One-shot, re-armed after each sample, so a slow sample never overlaps the next.
            _scaleTimer = UnflowedTimer.Create(_scaleClock, static s => ((WorkStealingTaskScheduler)s!).Sample(), this, _scaleInterval, Timeout.InfiniteTimeSpan); // not the creator's context: the workers run none either
        }
    }

    /// <summary>Closes scaling and disposes the timer; returns what the timer's Dispose threw (a custom TimeProvider's), or null.</summary>
    private Exception? StopAutoScale()
    {
        using (InterruptDeferral.Lock(_scaleLock))
        {
            _scalingClosed = true;
            ITimer? timer = _scaleTimer;
            _scaleTimer = null;
            try
            {
                timer?.Dispose();
                return null;
            }
            catch (Exception e)
            {
                // Reported after the shutdown (DisposeCore). Thrown from here it left Dispose before the workers were told
                // to stop, and every later Dispose waited for a drain that never ran. (Found by
                // Dispose_AutoScaleTimerThrowsOnDispose_StillShutsDownAndASecondDisposeReturns.)
                return e;
            }
        }
    }

    /// <summary>One sample of the built-in scale rule.</summary>
    private void Sample()
    {
        using (InterruptDeferral.Lock(_scaleLock))
        {
            if (_scalingClosed || _scaleTimer is null)
            {
                return;
            }

            long depth = _injection.Count + _spill.Count;
            int target = _targetWorkerCount;
            if (depth > _scaleUpDepth || IsBacklogWithNoIdleWorker())
            {
                if (++_samplesAboveDepth >= 2 && target < _maximumWorkerCount)
                {
                    _samplesAboveDepth = 0;
                    try
                    {
                        SetWorkerCountCore(++target);
                    }
                    catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
                    {
                        // No thread to be had now: later samples try again. Before, the exception left the timer callback
                        // (ending the process, on a real clock) and the timer was never re-armed. (Found by
                        // AutoScale_WorkerThreadFailsToStart_KeepsSamplingAndGrowsOnceThreadsStartAgain.)
                        target = _targetWorkerCount;
                    }
                }
            }
            else
            {
                _samplesAboveDepth = 0;
            }

            // A custom clock may throw, here and in the re-arm below. Before (session 10), the exception left the timer
            // callback: on a timer of the system's, an unhandled exception that ends the process. Now it is counted
            // (ScaleClockFailures); the sample makes no scale-down step; a failed re-arm ends scaling (the workers stay).
            long now = 0;
            bool read = true;
            try
            {
                now = _scaleClock!.GetTimestamp();
            }
            catch (Exception)
            {
                read = false;
                Interlocked.Increment(ref _scaleClockFailures); // statistics: rare path
            }

            if (!read)
            {
                // No reading: no scale-down step this sample; the idle period goes on from its last reading.
            }
            else if (ParkedWorkers > 0)
            {
                if (!_idleSinceValid)
                {
                    _idleSince = now;
                    _idleSinceValid = true;
                }
                else if (_scaleClock!.GetElapsedTime(_idleSince, now) >= _scaleDownIdle && target > _minimumWorkerCount)
                {
                    SetWorkerCountCore(target - 1);
                    _idleSince = now; // the next step needs another full idle period
                }
            }
            else
            {
                _idleSinceValid = false;
            }

            try
            {
                _scaleTimer.Change(_scaleInterval, Timeout.InfiniteTimeSpan);
            }
            catch (Exception)
            {
                Interlocked.Increment(ref _scaleClockFailures); // no further samples: scaling ends here
            }
        }
    }
}
