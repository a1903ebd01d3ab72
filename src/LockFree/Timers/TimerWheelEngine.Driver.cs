using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Timers;

// The built-in driver thread and Dispose.
internal sealed partial class TimerWheelEngine<TAtomics>
{
    /// <summary>Longest single sleep of the driver thread; it re-plans after it (keeps the delay arithmetic small).</summary>
    private static readonly TimeSpan MaxSleep = TimeSpan.FromHours(1);

    private readonly object _sleepLock = new();
    private Thread? _driver;
    private ITimer? _driverTimer;
    private bool _wakeRequested; // under _sleepLock
    private bool _stopRequested; // under _sleepLock
    private long _driverPasses;  // advances made by the driver thread (diagnostics and tests)
    private long _clockFailures; // the TimeProvider threw on the driver thread or in a batch's lateness reading
    private long _disposeScanned; // 1 once Dispose has scanned the nodes (a Schedule racing Dispose waits for it)

    /// <summary>Tests: replaces <c>thread.UnsafeStart()</c> of the driver thread, to simulate a thread that fails to start.</summary>
    internal Action<Thread>? DriverStartForTest { get; set; }

    /// <summary>How many times the driver thread has advanced the wheel: shows that it sleeps instead of ticking.</summary>
    internal long DriverPasses => Interlocked.Read(ref _driverPasses);

    /// <summary>Exceptions the wheel's <see cref="TimeProvider"/> threw where nobody else could see them (the driver thread, a fired batch's lateness reading).</summary>
    public long ClockFailureCount => Interlocked.Read(ref _clockFailures);

    /// <summary>Raised, on the thread that met it, for each failure counted in <see cref="ClockFailureCount"/>; the handler's own exceptions are swallowed.</summary>
    public event EventHandler<Exception>? ClockFailed;

    /// <summary>Counts a clock failure and raises <see cref="ClockFailed"/> (the handler's own exceptions are swallowed).</summary>
    private void ReportClockFailure(Exception ex) => FailureReport.Raise(ref _clockFailures, ClockFailed, _owner, ex);

    public bool IsDriverRunning => Volatile.Read(ref _driver) is not null && !IsDisposed;

    public void StartDriver()
    {
        using (InterruptDeferral.Lock(_sleepLock))
        {
            if (IsDisposed)
            {
                throw new ObjectDisposedException(nameof(HierarchicalTimerWheel));
            }

            if (_driver is not null)
            {
                ThrowHelper.ThrowInvalidOperation("The driver thread is already running.");
            }

            // Neither the sleep timer nor the thread captures the starter's ExecutionContext: the library's shared wheel
            // is started by whichever timed wait comes first, inside some request's context. Before the review of
            // 2026-11-23 both captured it, so that request's AsyncLocal values stayed reachable for the life of the
            // process and every callback on the driver thread ran inside them (TimerWheelDriverContextTests).
            _driverTimer = UnflowedTimer.Create(_timeProvider, static s => ((TimerWheelEngine<TAtomics>)s!).Wake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

            // Until the driver's first pass publishes a fresh tick, the published one may be old (construction,
            // or the last manual Advance): Schedule reads the clock meanwhile. The first pass clears the flag.
            SetStale(true);
            try
            {
                var thread = new Thread(DriverLoop) { IsBackground = true, Name = "LockFree timer wheel" };
                Volatile.Write(ref _driver, thread); // release: before the start, so the driver's first pass sees itself published
                if (DriverStartForTest is { } start)
                {
                    start(thread);
                }
                else
                {
                    thread.UnsafeStart(); // the default context, as the scheduler's workers
                }
            }
            catch
            {
                // No thread (OutOfMemoryException, ThreadStartException): undo all of the above, so the wheel is as it
                // was (manually drivable, its driver startable later) and the caller sees the failure. Before the review
                // of 2026-11-23 the unstarted thread stayed published: the wheel claimed a driver that did not exist,
                // refused Advance and StartDriver, never fired, and its Dispose threw joining the unstarted thread.
                Volatile.Write(ref _driver, null); // release: IsDriverRunning is false again (under _sleepLock: no Dispose in between)
                SetStale(false);
                _driverTimer.Dispose();
                _driverTimer = null;
                throw;
            }
        }
    }

    /// <summary>Manual driving: advances to the provider's current time. Not while the driver thread runs.</summary>
    public int Advance()
    {
        if (IsDriverRunning)
        {
            ThrowHelper.ThrowInvalidOperation("Advance cannot be called while the driver thread runs.");
        }

        return AdvanceTo(ClockTick());
    }

    public void Dispose()
    {
        while (true)
        {
            long flags = TAtomics.LoadAcquire(ref _clock.Flags); // acquire: pairs with the other flag CASes
            if ((flags & DisposedFlag) != 0)
            {
                return;
            }

            if (TAtomics.CompareExchange(ref _clock.Flags, flags | DisposedFlag, flags) == flags) // CAS: Schedule, Cancel and Advance see it from here on
            {
                break;
            }
        }

        // Dekker with a Schedule in flight (the same asymmetric pair as the sleeping driver's): Schedule stores
        // Queued, then loads Flags, with no fence; we set Disposed, cut every thread's program here, then scan the
        // nodes. Either the scan below sees its Queued node (dropped and counted) or its Flags load sees Disposed,
        // and it waits for the scan to end, then withdraws the timer and throws if the scan missed it (WithdrawDisposed).
        // Dispose is rare: one barrier.
        TAtomics.ProcessWideBarrier();

        try
        {
            DisposeCore();
        }
        finally
        {
            TAtomics.StoreRelease(ref _disposeScanned, 1); // release: set after the scan already; again here if it threw, so no Schedule waits forever
        }
    }

    private void DisposeCore()
    {
        // The scan first, then the driver: a callback of the driver that schedules may be waiting for the end of
        // the scan (WithdrawDisposed), so joining the driver before it would deadlock. No drain runs after the
        // flag (AdvanceTo checks it under the gate), so the driver still running changes nothing here.
        List<IWheelDisposeListener>? listeners = null;
        using (InterruptDeferral.Lock(_gate))
        {
            // Every pending timer becomes Cancelled (by CAS: a concurrent Cancel may win it first), so a later
            // Cancel answers false without a flag check on its path; its references are cleared. A timer a Cancel
            // stopped that the driver has not reclaimed yet (Cancelled or CancelQueued, on a lane or the inbox) is
            // counted as cancelled here: no drain will count it, and every timer ends in exactly one of FiredCount,
            // CancelledCount and DroppedCount.
            long dropped = 0;
            long cancelled = 0;
            foreach (TimerNode[]? chunk in _chunks)
            {
                if (chunk is null)
                {
                    continue;
                }

                for (int i = 0; i < chunk.Length; i++)
                {
                    ref TimerNode node = ref chunk[i];
                    bool owned = true; // the wheel owns the node (pending or cancelled); a Free node may be a scheduling thread's
                    while (true)
                    {
                        long word = TAtomics.LoadAcquire(ref node.StateWord); // acquire: pairs with Schedule's release / Cancel's CAS
                        long status = word & StatusMask;
                        if (status == TimerNodeStatus.Cancelled || status == TimerNodeStatus.CancelQueued)
                        {
                            cancelled++; // Cancel answered true; not reclaimed by a drain, so not counted yet
                            break;
                        }

                        if (status != TimerNodeStatus.Queued && status != TimerNodeStatus.Linked)
                        {
                            owned = false; // Free: in a thread's lane cache it is that thread's to write; Firing: the firing thread's
                            break;
                        }

                        if (TAtomics.CompareExchange(ref node.StateWord, (word & ~StatusMask) | TimerNodeStatus.Cancelled, word) == word) // CAS: races Cancel and a Schedule withdrawing its timer
                        {
                            dropped++;
                            if (TAtomics.LoadPlain(ref node.State) is IWheelDisposeListener listener) // plain: published by Schedule's release of Queued, read after our acquire
                            {
                                (listeners ??= new()).Add(listener); // the library's own wake-ups and delays: told below
                            }

                            break;
                        }
                    }

                    if (owned)
                    {
                        // Only nodes the wheel owns: clearing a Free node raced with the plain stores of a thread
                        // scheduling from its lane cache (a data race; free-list nodes hold no references anyway, and
                        // a lane's free nodes keep their last callback until the lane goes).
                        TAtomics.StorePlain(ref node.Callback, null); // let the dropped callbacks and states be collected
                        TAtomics.StorePlain(ref node.State, null);
                    }
                }
            }

            Interlocked.Exchange(ref _dropped, dropped);
            Interlocked.Add(ref _cancelled, cancelled);
            _linked = 0;
            _slotHeads.AsSpan().Fill(-1);
            Array.Clear(_occupied);
        }

        TAtomics.StoreRelease(ref _disposeScanned, 1); // release: the scan's outcome to WithdrawDisposed

        // The library's own timers among the dropped (wake-ups of the delay and acknowledgement queues, the retry
        // policy's waits) move to their TimeProvider fallback, outside the gate: a waiter on a disposed wheel must
        // not hang. Users' timers stay dropped: their states cannot implement the internal interface.
        if (listeners is not null)
        {
            foreach (IWheelDisposeListener listener in listeners)
            {
                listener.OnWheelDisposed();
            }
        }

        Thread? driver;
        using (InterruptDeferral.Lock(_sleepLock))
        {
            _stopRequested = true;
            driver = _driver;
            Monitor.PulseAll(_sleepLock);
        }

        if (driver is not null && driver != Thread.CurrentThread)
        {
            InterruptDeferral.Join(driver);
        }

        _driverTimer?.Dispose();
    }

    private void Wake()
    {
        using (InterruptDeferral.Lock(_sleepLock))
        {
            _wakeRequested = true;
            Monitor.Pulse(_sleepLock);
        }
    }

    /// <summary>Schedule's slow path while the driver sleeps long: lower the planned wake-up and wake it if this timer is earlier.</summary>
    private void WakeDriverIfEarlier(long due)
    {
        while (true)
        {
            long planned = TAtomics.LoadAcquire(ref _plannedWake.Value); // acquire: pairs with the driver's release before it raised Stale
            if (due >= planned)
            {
                return;
            }

            if (TAtomics.CompareExchange(ref _plannedWake.Value, due, planned) == planned) // CAS: only the thread that lowers it signals
            {
                Wake();
                return;
            }
        }
    }

    /// <summary>
    /// A lane is full: the driver thread sleeps long (nothing due soon) while this thread schedules and cancels
    /// faster than it drains. Wake it, so cancelled nodes go back to the pool instead of piling up until the next
    /// expiry. Rare: once per full ring, not per timer.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void LaneFull()
    {
        if ((TAtomics.LoadAcquire(ref _clock.Flags) & StaleFlag) != 0 && Volatile.Read(ref _driver) is not null) // acquire: pairs with the driver's flag CAS
        {
            Wake();
        }
    }

    private void DriverLoop()
    {
        long backoff = 0; // the current back-off after clock failures, in TimeSpan ticks; 0 while the clock works
        while (!StopRequested())
        {
            try
            {
                AdvanceTo(ClockTick(), fromDriver: true);
                Interlocked.Increment(ref _driverPasses);
                backoff = 0; // the clock answered: a later failure starts a fresh back-off
                if (HasInput())
                {
                    continue;
                }

                long now = CurrentTick;
                long next = NextEventTick();
                TAtomics.StoreRelease(ref _plannedWake.Value, next); // release: read by Schedule after it sees Stale
                if (next - now > 1)
                {
                    SetStale(true); // sleeping past the next tick: Schedule must read the clock itself
                }

                if ((TAtomics.LoadAcquire(ref _clock.Flags) & StaleFlag) != 0) // acquire: own CAS
                {
                    // Dekker with Schedule, asymmetric: our Stale CAS, this barrier, then our scan; Schedule's push (a
                    // plain release store on its lane, no fence) then its Flags load. The barrier cuts every thread's
                    // program: a push before the cut is visible to the scan below; a Flags load after it sees Stale.
                    // Without Stale a sleep lasts at most one tick and Schedule never wakes us: no barrier needed.
                    TAtomics.ProcessWideBarrier();
                }

                if (HasInput() || ClockTick() >= next)
                {
                    continue;
                }

                if (next != long.MaxValue)
                {
                    double remaining = ((double)next * _tickTimestamp) - (_timeProvider.GetTimestamp() - _originTimestamp);
                    double milliseconds = Math.Ceiling(remaining * 1000.0 / _timeProvider.TimestampFrequency);
                    TimeSpan delay = milliseconds >= MaxSleep.TotalMilliseconds ? MaxSleep : TimeSpan.FromMilliseconds(Math.Max(1, milliseconds));
                    _driverTimer!.Change(delay, Timeout.InfiniteTimeSpan);
                }

                using (InterruptDeferral.Lock(_sleepLock))
                {
                    while (!_wakeRequested && !_stopRequested)
                    {
                        try
                        {
                            Monitor.Wait(_sleepLock);
                        }
                        catch (ThreadInterruptedException)
                        {
                            // Dropped (see InterruptDeferral): left pending by a callback, or aimed at a thread the user
                            // does not own. Unhandled, it ended the process.
                        }
                    }

                    _wakeRequested = false;
                }
            }
            catch (Exception) when (IsDisposed)
            {
                return; // disposed between the stop check and AdvanceTo (ObjectDisposedException): the driver's work is over
            }
            catch (Exception ex)
            {
                // The TimeProvider threw (a clock reading, or the sleep timer's Change). Before the review of 2026-11-23
                // this ended the thread (ObjectDisposedException silently, anything else unhandled, ending the process)
                // while IsDriverRunning stayed true and no timer fired again. Nothing was taken out of the wheel by the
                // failed reading (AdvanceTo reads its target first; Fire guards its own reading), so the pass is simply
                // retried, after a back-off on the real clock (the provider's is the one failing) that Dispose cuts short.
                ReportClockFailure(ex);
                BackOff((int)FailureReport.NextRetry(ref backoff).TotalMilliseconds); // 1 ms doubling to 1 s: not a spinning thread
            }
        }
    }

    /// <summary>Waits <paramref name="milliseconds"/> of real time, or until Dispose asks the driver to stop.</summary>
    private void BackOff(int milliseconds)
    {
        long until = Environment.TickCount64 + milliseconds;
        using (InterruptDeferral.Lock(_sleepLock))
        {
            long left;
            while (!_stopRequested && (left = until - Environment.TickCount64) > 0)
            {
                try
                {
                    Monitor.Wait(_sleepLock, (int)left);
                }
                catch (ThreadInterruptedException)
                {
                    // Dropped, as in the sleep (see InterruptDeferral).
                }
            }
        }
    }

    private bool StopRequested()
    {
        using (InterruptDeferral.Lock(_sleepLock))
        {
            return _stopRequested;
        }
    }
}
