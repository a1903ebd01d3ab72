using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: the parked waiters of one condition ("an item is available" or "there is room"), and their pool.
//
// The fast paths never touch this lock: a writer that has published an item asks HasWaiters and calls in
// here only when someone waits. Lost wake-ups are excluded by the Dekker handshake of ParkingGate (waiter:
// register, fence, recheck; signaller: publish, fence, read the count), paid for only once a list has seen a
// waiter: until the first park signallers read the count without a fence, and the first parker covers them
// with a process-wide barrier (asymmetric fences). So a buffer whose writers never wait pays nothing on its
// read path, and one that waits often does not pay a process-wide barrier per park. The gate is the code the
// controlled scheduler runs under a store-buffer simulation (tests/Concurrency/Backpressure).
//
// Every linked waiter holds a ticket (its link order, under the lock), so "every waiter linked when FinishAll
// starts" is a ticket bound; the gate's count cannot be that bound: a waiter is linked before it registers.
//
// The lock guards only the list and the pool: it is held for a few pointer writes, never while a waiter
// completes, and never while user code runs.
//
// Generic over the atomics seam so the controlled scheduler runs this very code (tests/Concurrency/Backpressure/
// WaiterListTests.cs): the lock is the seam's (EnterLock/ExitLock: in production the monitor with InterruptDeferral's
// retry, as before), the links, tickets and pool are guarded accesses (plain in production, race-checked under the
// scheduler), the gate, the wait word and the counts are atomics, and a waiter's wake-up is QueueWorkItem (the thread
// pool; inline under the scheduler). Faults a test plants (TAtomics.IsPlanted) are constant-false branches in
// production, kept in methods of their own so they do not change what the JIT inlines.
/// <summary>The parked waiters of one condition and their pool; generic over the atomics seam (production: <see cref="RealAtomics"/>, aliased as <c>WaiterList</c>).</summary>
/// <typeparam name="TAtomics">The atomics seam: every shared access, the lock and the wake-up go through it.</typeparam>
internal sealed class WaiterList<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>Pooled waiters kept for reuse; more are created on demand and dropped when returned past this.</summary>
    private const int PoolLimit = OperationPool<object>.MaxSize; // as many as the operation pools keep

    private readonly object _lock = new();
    private Waiter<TAtomics>? _head;
    private Waiter<TAtomics>? _tail;
    private Waiter<TAtomics>? _pool;
    private int _pooled;
    private long _linkTickets; // tickets handed out to linked waiters (guarded by _lock): the list is in ticket order
    private ParkingGate<TAtomics> _gate;
    private long _wakesInFlight;
    private int _quietChecks; // the one signaller's run of checks that found nobody waiting (plain: that thread only)

    // The list and the pool, guarded by _lock: plain accesses through the seam (race-checked under the controlled scheduler).
    private Waiter<TAtomics>? Head
    {
        get => TAtomics.LoadGuarded(ref _head);
        set => TAtomics.StoreGuarded(ref _head, value);
    }

    private Waiter<TAtomics>? Tail
    {
        get => TAtomics.LoadGuarded(ref _tail);
        set => TAtomics.StoreGuarded(ref _tail, value);
    }

    private Waiter<TAtomics>? Pool
    {
        get => TAtomics.LoadGuarded(ref _pool);
        set => TAtomics.StoreGuarded(ref _pool, value);
    }

    private int Pooled
    {
        get => TAtomics.LoadGuarded(ref _pooled);
        set => TAtomics.StoreGuarded(ref _pooled, value);
    }

    private long LinkTickets
    {
        get => TAtomics.LoadGuarded(ref _linkTickets);
        set => TAtomics.StoreGuarded(ref _linkTickets, value);
    }

    /// <summary>Creates an empty list with an empty pool.</summary>
    /// <param name="timerFailed">Where a released timer's exception goes (see <see cref="TimerFailed"/>): the owner's failure
    /// count and report. Required even of an owner whose waits arm no timer today, so one that starts to is covered.</param>
    /// <exception cref="ArgumentNullException"><paramref name="timerFailed"/> is null.</exception>
    public WaiterList(Action<Exception> timerFailed)
    {
        ArgumentNullException.ThrowIfNull(timerFailed);
        TimerFailed = timerFailed;
    }

    /// <summary>
    /// Asynchronous waits of this list that have been ended (signalled, completed, cancelled, timed out) and whose
    /// continuation has not started yet: a snapshot. While it is non-zero a woken waiter of this side is still
    /// queued on the thread pool, so the other side gains nothing by spinning for it (see AdaptiveSpin).
    /// </summary>
    public int WakesInFlight => (int)TAtomics.LoadAcquire(ref _wakesInFlight); // acquire: snapshot, a heuristic only

    /// <summary>An asynchronous waiter was ended and is about to queue its continuation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void WakeQueued() => TAtomics.Add(ref _wakesInFlight, 1); // full fence: a heuristic count only

    /// <summary>A queued continuation of an asynchronous waiter starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void WakeStarted() => TAtomics.Add(ref _wakesInFlight, -1); // full fence: a heuristic count only

    /// <summary>The error a completed wait reports through <c>WaitTo*Async</c> (the buffer's completion error), if any.</summary>
    public Exception? CompletionError { get; set; }

    /// <summary>
    /// Whether any waiter is linked, asked by a signaller after its publish. Until the first park it is a plain
    /// read (the first parker's process-wide barrier covers it); afterwards a full fence precedes it.
    /// </summary>
    public bool HasWaiters => _gate.HasWaiters();

    /// <summary>
    /// As <see cref="HasWaiters"/>, for a signaller whose publish was a compare-and-swap on the index a waiter's
    /// recheck reads (a claim on a many-producer or many-consumer ring): that CAS is the signaller's fence.
    /// </summary>
    public bool HasWaitersAfterLockedPublish => _gate.HasWaitersAfterLockedPublish();

    /// <summary>Takes a reset waiter from the pool (or a new one) and links it at the tail.</summary>
    /// <param name="synchronous">Whether the caller blocks its thread (else it awaits the waiter).</param>
    /// <param name="tag">What the wait is for (see <see cref="Waiter{TAtomics}.Tag"/>).</param>
    /// <param name="handoff">An asynchronous hand-off wait (see <see cref="Waiter{TAtomics}"/>): its owner then calls exactly one of Expose, TryAwait or Abandon.</param>
    public Waiter<TAtomics> RentAndLink(bool synchronous, long tag = 0, bool handoff = false)
    {
        Waiter<TAtomics> waiter = RentAndLinkCore(synchronous, tag, probe: false, handoff);
        BeforeRegister?.Invoke(); // test hook: the window between the link and the registration
        _gate.Register(); // counted, fenced (process-wide on the first park ever) before the caller's recheck
        return waiter;
    }

    /// <summary>
    /// As <see cref="RentAndLink(bool, long, bool)"/>, for signallers that ask <see cref="HasWaiters"/> only while
    /// <paramref name="armedBit"/> is set in <paramref name="bits"/>: the registration makes sure it is set (see
    /// ParkingGate, "Arming").
    /// </summary>
    /// <param name="synchronous">Whether the caller blocks its thread (else it awaits the waiter).</param>
    /// <param name="bits">The word whose <paramref name="armedBit"/> makes signallers ask.</param>
    /// <param name="armedBit">The bit to make sure of.</param>
    /// <param name="probe">A wait that takes nothing when woken (see <see cref="Waiter{TAtomics}.IsProbe"/>).</param>
    /// <param name="handoff">An asynchronous hand-off wait (see <see cref="Waiter{TAtomics}"/>): its owner then calls exactly one of Expose, TryAwait or Abandon.</param>
    public Waiter<TAtomics> RentAndLink(bool synchronous, ref StickyBits<TAtomics> bits, long armedBit, bool probe = false, bool handoff = false)
    {
        Waiter<TAtomics> waiter = RentAndLinkCore(synchronous, tag: 0, probe, handoff);
        BeforeRegister?.Invoke(); // test hook: the window between the link and the registration
        _gate.RegisterArming(ref bits, armedBit); // counted, fenced, armed (with a process-wide barrier when it arms) before the caller's recheck
        return waiter;
    }

    /// <summary>
    /// The one signaller of this list, after it found no waiter: clears <paramref name="armedBit"/> in
    /// <paramref name="bits"/> unless a registrant races it (see ParkingGate, "Disarming"); whether it did.
    /// </summary>
    public bool TryDisarm(ref StickyBits<TAtomics> bits, long armedBit) => _gate.TryDisarm(ref bits, armedBit);

    /// <summary>
    /// Any of this list's many signallers (each publishing with a locked claim), after a quiet spell: clears
    /// <paramref name="armedBit"/>; false when a registrant raced it (re-armed: the caller wakes every waiter; see
    /// ParkingGate, "Disarming a side played by many threads").
    /// </summary>
    public bool TryDisarmShared(ref StickyBits<TAtomics> bits, long armedBit) => _gate.TryDisarmShared(ref bits, armedBit);

    /// <summary>
    /// The one signaller of this list (a single reader or writer) found nobody waiting: counts it, returns the run.
    /// Kept here, not in the buffer, so that the count's store dirties a line the other side's fast path never reads.
    /// </summary>
    public int CountQuietCheck() => ++_quietChecks; // plain: the one signaller only

    /// <summary>The one signaller found a waiter, or disarmed: the quiet run starts again.</summary>
    public void ResetQuietChecks()
    {
        if (_quietChecks != 0)
        {
            _quietChecks = 0; // plain: the one signaller only; written only when it changes
        }
    }

    private Waiter<TAtomics> RentAndLinkCore(bool synchronous, long tag, bool probe, bool handoff = false)
    {
        Waiter<TAtomics> waiter;
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            if (Pool is null)
            {
                waiter = new Waiter<TAtomics>(this);
                PoolGrowth.Count();
            }
            else
            {
                waiter = Pool;
                Pool = waiter.Next;
                Pooled--;
            }

            waiter.Next = null;
        }

        waiter.Reset(synchronous, handoff);
        waiter.Tag = tag;
        waiter.IsProbe = probe;
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            waiter.Previous = Tail;
            waiter.Next = null;
            if (Tail is null)
            {
                Head = waiter;
            }
            else
            {
                Tail.Next = waiter;
            }

            Tail = waiter;
            waiter.IsLinked = true;
            waiter.Ticket = ++LinkTickets; // after every ticket of a waiter linked before it (see FinishAll)
        }

        return waiter;
    }

    /// <summary>
    /// Test hook: runs on the parking thread after its waiter is linked and before it registers in the gate, the
    /// window in which the list holds a waiter the gate does not count yet (see <see cref="FinishAll"/>). Null (one
    /// load and a test on the park path) except in tests.
    /// </summary>
    internal Action? BeforeRegister { get; set; }

    /// <summary>Removes a waiter that is still linked (cancelled, timed out, or abandoned after a successful recheck).</summary>
    public void Unlink(Waiter<TAtomics> waiter)
    {
        UnlinkCore(waiter);
        Unlinked?.Invoke();
    }

    /// <summary>Called (outside the lock) after <see cref="Unlink"/>, i.e. after a waiter left by cancellation, timeout or abandonment.</summary>
    public Action? Unlinked { get; set; }

    /// <summary>
    /// Called with the exception a <see cref="TimeProvider"/> timer threw from <see cref="IDisposable.Dispose"/> when a
    /// timed asynchronous wait of this list released it (a user's clock; the system clock's waits use the shared wheel).
    /// The wait's outcome was already decided, so the exception goes here (the owner counts and reports it), never into
    /// the caller whose wait ended. Before, it escaped the release half done: a woken writer faulted and the signal it was
    /// woken by was lost. A constructor argument, not a settable hook: an owner cannot forget it (as an opt-in setter, an
    /// owner that did dropped the failure silently).
    /// </summary>
    public Action<Exception> TimerFailed { get; }

    /// <summary>Waiters linked now (a snapshot).</summary>
    public int Count => (int)_gate.Waiters;

    /// <summary>
    /// Diagnostics (a stress test's failure message): the gate's count, the wakes in flight and each linked waiter
    /// (ticket, generation, status, sync or async, probe), walked under the lock; never on a hot path.
    /// </summary>
    internal string Describe()
    {
        var text = new System.Text.StringBuilder();
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            text.Append("gate count ").Append(_gate.Waiters).Append(", wakes in flight ").Append(WakesInFlight)
                .Append(", tickets ").Append(LinkTickets).Append(", linked [");
            int shown = 0;
            for (Waiter<TAtomics>? waiter = Head; waiter is not null && shown < 16; waiter = waiter.Next, shown++)
            {
                text.Append(shown == 0 ? string.Empty : ", ").Append('#').Append(waiter.Ticket).Append(" gen ").Append(waiter.Generation)
                    .Append(' ').Append(waiter.Status).Append(waiter.IsSynchronous ? " sync" : " async").Append(waiter.IsProbe ? " probe" : string.Empty);
            }

            text.Append(']');
        }

        return text.ToString();
    }

    /// <summary>The oldest linked waiter and the generation of its wait, without unlinking it.</summary>
    public bool TryPeek([NotNullWhen(true)] out Waiter<TAtomics>? waiter, out int generation)
    {
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            waiter = Head;
            generation = waiter?.Generation ?? 0;
            return waiter is not null;
        }
    }

    /// <summary>Unlinks <paramref name="waiter"/> if it is still the oldest linked waiter, in wait <paramref name="generation"/>.</summary>
    public bool TryPopIfHead(Waiter<TAtomics> waiter, int generation)
    {
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            if (!ReferenceEquals(Head, waiter) || waiter.Generation != generation)
            {
                return false;
            }

            PopHeadLocked();
            return true;
        }
    }

    /// <summary>Ends the oldest waiter that is still waiting with <paramref name="status"/>; false when none waits.</summary>
    public bool FinishOldest(WaitStatus status)
    {
        while (TryPop(out Waiter<TAtomics>? waiter, out int generation))
        {
            if (waiter.TryFinish(status, generation))
            {
                return true;
            }
        }

        return false;
    }

    private void UnlinkCore(Waiter<TAtomics> waiter)
    {
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            if (!waiter.IsLinked)
            {
                return;
            }

            if (waiter.Previous is null)
            {
                Head = waiter.Next;
            }
            else
            {
                waiter.Previous.Next = waiter.Next;
            }

            if (waiter.Next is null)
            {
                Tail = waiter.Previous;
            }
            else
            {
                waiter.Next.Previous = waiter.Previous;
            }

            waiter.Previous = null;
            waiter.Next = null;
            waiter.IsLinked = false;
            _gate.Unregister();
        }
    }

    /// <summary>Gives a finished waiter back to the pool.</summary>
    public void Return(Waiter<TAtomics> waiter)
    {
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            if (Pooled >= PoolLimit)
            {
                return;
            }

            waiter.Next = Pool;
            Pool = waiter;
            Pooled++;
        }
    }

    /// <summary>
    /// Wakes the oldest waiter that is still waiting, if any, and every probe (<see cref="Waiter{TAtomics}.IsProbe"/>) linked
    /// before it: a probe takes nothing when woken, so the signal is not spent on it. Before, a read that freed one
    /// slot woke only a parked <c>WaitToWriteAsync</c> at the head; when its caller did not write, a parked write
    /// behind it slept beside the free slot (the BCL wakes every <c>WaitToWriteAsync</c> and hands the room to the
    /// oldest parked write).
    /// </summary>
    /// <returns>Whether a waiter that is not a probe was woken by this call.</returns>
    public bool SignalOne()
    {
        while (TryPop(out Waiter<TAtomics>? waiter, out int generation, out bool probe))
        {
            bool woke = waiter.TryFinish(WaitStatus.Signaled, generation);
            if (woke && (!probe || TAtomics.IsPlanted(PlantedFault.SignalOneSpentOnProbe)))
            {
                return true;
            }

            if (TAtomics.IsPlanted(PlantedFault.SignalOneStopsAtEnded) && !woke)
            {
                return false; // planted (tests only): the wait that ended first swallows the signal
            }

            // Otherwise it was cancelled or timed out meanwhile, or a probe: wake the next one.
        }

        return false;
    }

    /// <summary>
    /// Takes back a linked waiter whose caller's recheck succeeded. If a signal reached it first, a caller that was
    /// woken one at a time (<paramref name="forwardSignal"/>: a writer, whose room a read's <see cref="SignalOne"/> woke
    /// it for) passes that signal on: it no longer needs it, and it may have been popped before it registered, so the
    /// count was low for a moment and a publish in that moment asked nobody.
    /// </summary>
    public void Abandon(Waiter<TAtomics> waiter, bool forwardSignal)
    {
        if (waiter.TryFinishQuietly())
        {
            Unlink(waiter);
            Return(waiter);
        }
        else
        {
            if (forwardSignal && waiter.Status == WaitStatus.Signaled && !TAtomics.IsPlanted(PlantedFault.AbandonDropsPassOn))
            {
                SignalOne();
            }

            // The waiter was completed or signalled and its ender may not be done with it: a hand-off wait is recycled
            // once its queued wake-up has run, a synchronous one once its ender has set its event; any other is left to
            // the GC (before session 12, every one was, and every synchronous one before session 13: a new waiter per race).
            waiter.AbandonEnded();
        }
    }

    /// <summary>
    /// Ends every wait linked when the call starts with <paramref name="status"/> (a signal, or completion); waits
    /// linked after that are left alone (they register after the caller's publish, so their recheck sees it).
    /// </summary>
    /// <remarks>
    /// Bounded by link tickets, not by the gate's count. The count was the bound before (pop at most Waiters
    /// waiters), but a waiter is linked before it registers, and popping a linked waiter that has not registered
    /// yet takes its registration off the count before it was put on: in that window the count is lower than the
    /// registered waiters in the list (or the unregistered one sits at the head and uses up the budget), so a
    /// registered waiter that had already rechecked and parked was left in the list. For the buffer's finish (one
    /// FinishAll(Completed), ever) that reader slept for good beside a completed, drained buffer
    /// (BackpressureFinishWakeTests).
    /// </remarks>
    public void FinishAll(WaitStatus status)
    {
        long last = -1; // the last ticket handed out when the call starts: read with the first pop, under the lock
        bool more = true; // whether the pop left another waiter within the bound (saves a last lock round per call)
        if (TAtomics.IsPlanted(PlantedFault.FinishAllBoundedByCount))
        {
            PlantedFinishAllBoundedByCount(status);
            return;
        }

        while (more && TryPopLinkedBy(ref last, out Waiter<TAtomics>? waiter, out int generation, out more))
        {
            waiter.TryFinish(status, generation);
        }
    }

    /// <summary>
    /// Pops the oldest waiter if it was linked by ticket <paramref name="last"/> (read on the first call: -1), with the
    /// generation of its wait and whether the next one is within the bound too, under the lock.
    /// </summary>
    private bool TryPopLinkedBy(ref long last, [NotNullWhen(true)] out Waiter<TAtomics>? waiter, out int generation, out bool more)
    {
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            if (last < 0)
            {
                last = LinkTickets;
            }

            waiter = Head;
            if (waiter is null || waiter.Ticket > last)
            {
                waiter = null;
                generation = 0;
                more = false;
                return false;
            }

            PopHeadLocked();
            generation = waiter.Generation;
            more = Head is not null && Head.Ticket <= last;
            return true;
        }
    }

    /// <summary>Unlinks the oldest waiter and the generation of its wait, read under the lock (so a recycled waiter is never ended by mistake).</summary>
    private bool TryPop([NotNullWhen(true)] out Waiter<TAtomics>? waiter, out int generation) => TryPop(out waiter, out generation, out _);

    /// <summary>As <see cref="TryPop(out Waiter{TAtomics}?, out int)"/>, also reading whether the wait is a probe (under the lock: the waiter may be recycled after).</summary>
    private bool TryPop([NotNullWhen(true)] out Waiter<TAtomics>? waiter, out int generation, out bool probe)
    {
        if (TAtomics.IsPlanted(PlantedFault.SignalOneNewestFirst))
        {
            return PlantedTryPopNewest(out waiter, out generation, out probe);
        }

        using (SeamLock<TAtomics>.Enter(_lock))
        {
            waiter = Head;
            if (waiter is null)
            {
                generation = 0;
                probe = false;
                return false;
            }

            PopHeadLocked();

            generation = waiter.Generation;
            probe = waiter.IsProbe;
            return true;
        }
    }

    /// <summary>Planted (tests only, <see cref="PlantedFault.FinishAllBoundedByCount"/>): the FinishAll before session 8, bounded by the gate's count.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PlantedFinishAllBoundedByCount(WaitStatus status)
    {
        for (long budget = _gate.Waiters; budget > 0 && TryPop(out Waiter<TAtomics>? waiter, out int generation); budget--)
        {
            waiter.TryFinish(status, generation);
        }
    }

    /// <summary>Planted (tests only, <see cref="PlantedFault.SignalOneNewestFirst"/>): pops the newest waiter, not the oldest.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PlantedTryPopNewest([NotNullWhen(true)] out Waiter<TAtomics>? waiter, out int generation, out bool probe)
    {
        using (SeamLock<TAtomics>.Enter(_lock))
        {
            waiter = Tail;
            generation = waiter?.Generation ?? 0;
            probe = waiter?.IsProbe ?? false;
            if (waiter is null)
            {
                return false;
            }

            UnlinkCore(waiter); // under the (reentrant) lock
            return true;
        }
    }

    /// <summary>Unlinks the head (there is one); the caller holds the lock.</summary>
    private void PopHeadLocked()
    {
        Waiter<TAtomics> waiter = Head!;
        Head = waiter.Next;
        if (Head is null)
        {
            Tail = null;
        }
        else
        {
            Head.Previous = null;
        }

        waiter.Next = null;
        waiter.Previous = null;
        waiter.IsLinked = false;
        _gate.Unregister();
    }
}
