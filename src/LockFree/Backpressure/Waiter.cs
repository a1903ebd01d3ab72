using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using LockFree.Internal;
using LockFree.Timers;

namespace LockFree.Backpressure;

/// <summary>How a wait ended.</summary>
internal enum WaitStatus
{
    /// <summary>Still waiting.</summary>
    Pending,

    /// <summary>Woken: the condition may hold now; the caller retries its operation.</summary>
    Signaled,

    /// <summary>The buffer was completed or disposed: the caller reads which from the buffer.</summary>
    Completed,

    /// <summary>The wait's timeout passed first.</summary>
    TimedOut,

    /// <summary>The wait's token was cancelled first.</summary>
    Canceled,
}

// Design: one parked waiter, pooled by its WaiterList, for synchronous and asynchronous waits, with no
// allocation in steady state.
//
// A wait ends exactly once: signal, completion, timeout and cancellation race for one CAS on _state
// (WaitState: Pending -> final, per generation); the winner finishes the wait and the losers do nothing. Asynchronous waits complete
// through ManualResetValueTaskSourceCore with synchronous continuations, invoked from a thread-pool work
// item that is this object (IThreadPoolWorkItem), so a writer that wakes a reader never runs the reader's
// continuation itself and nothing is allocated. Synchronous waits block on a ManualResetEventSlim created
// once per waiter object. Cancellation registers on the token (a CancellationTokenSource reuses its
// registration nodes).
//
// Timeouts of asynchronous waits. On TimeProvider.System the timeout is a timer on the library's shared timer wheel
// (SharedTimerWheel: one background thread that sleeps until the next expiry), with this waiter as its state: no
// allocation, and arming plus disarming costs a Schedule and a Cancel (tens of nanoseconds) instead of an ITimer's
// creation and disposal. The generation the timer was armed for is kept in _timeoutGeneration, which a late callback
// must still read correctly, so the waiter is not recycled while a fired callback may touch it: Arm sets _timerRefs
// to 2 (the wait and the timer); a Cancel that succeeds means the callback will never run; one that fails means it
// runs or ran, and the wait's Detach and the callback each drop a reference, the last one returning the waiter to
// its pool. On any other TimeProvider (a test clock, say) a timed asynchronous wait creates one ITimer with its own
// TimeoutStamp: the one allocating case, since a timer callback of an earlier wait could otherwise end a later one.
// So does a wait on TimeProvider.System while the shared wheel's driver thread cannot be started (SharedTimerWheel
// .Driven is null then, the failure counted and retried a second later): a wheel nothing drives would never fire.
//
// Hand-off waits (session 12, acceptance audit gap A). An asynchronous wait rented with handoff: true does not decide
// at its start who takes its result: its owner decides after linking, with one CAS of _handoff from Idle to External
// (the ValueTask goes to a caller: Expose), Registered (an internal continuation: TryAwait) or Abandoned (the owner's
// recheck succeeded: Abandon). The wake-up (Execute) CASes Idle to Completed. Whoever comes second acts: Execute
// completes the core (External), invokes the continuation (Registered) or recycles the waiter (Abandoned); an owner
// that finds Completed completes the core itself (Expose), consumes the wait inline (TryAwait false) or recycles it
// (Abandon). So an internal continuation never goes through the core's OnCompleted, which queues a pool work item (an
// allocation) when it is registered after the completion, and an abandoned asynchronous waiter whose wake-up was
// already queued goes back to the pool instead of to the GC (before, both allocated now and then in await loops). A
// waiter rented without hand-off (every other owner) behaves as before: Execute completes the core.
//
// Abandoned synchronous waits (session 13). A synchronous wait's ender sets the event as the last step of TryFinish, after
// its CAS (and a cancellation's unlink), so an owner that lost the CAS to it waits for that set before it recycles the
// waiter (AbandonEnded), as WaitSynchronously does after its own wait: recycled at once, the late set would end the next
// wait on this waiter early. The event waits and the set go through the seam (WaitEvent, SetEvent), so the controlled
// scheduler explores them (tests/Concurrency/Backpressure/WaiterSyncAbandonTests.cs).
//
// Cancellation under the seam (session 15). The registrations go through the seam too (RegisterCancellation,
// UnregisterCancellation, DisposeCancellation: in production exactly UnsafeRegister, Unregister and Dispose), so the
// controlled scheduler runs real CancellationTokenSources against this code: a logical thread that cancels runs our
// callback inline, and Detach's dispose waits for a callback running on another logical thread without blocking the
// real one (tests/Concurrency/Backpressure/WaiterCancellationTests.cs: Arm's handshake with the wake-up, the early
// unregisters of a wait never awaited, the reported token, and no late callback on a recycled waiter, with one token or two).
/// <summary>One pooled waiter of a <see cref="WaiterList{TAtomics}"/>; generic over the atomics seam (production: <see cref="RealAtomics"/>, aliased as <c>Waiter</c>).</summary>
/// <typeparam name="TAtomics">The atomics seam.</typeparam>
internal sealed class Waiter<TAtomics> : IValueTaskSource<bool>, IValueTaskSource<WaitStatus>, IThreadPoolWorkItem
    where TAtomics : struct, IAtomics
{
    private readonly WaiterList<TAtomics> _owner;

    private ManualResetValueTaskSourceCore<WaitStatus> _core; // mutable struct: never copy

    // The generation grows with every reuse, so a timer callback of an earlier wait, which CASes from its own
    // generation's Pending, can never end a later wait (WaitState, explored under the controlled scheduler).
    private WaitState<TAtomics> _state; // mutable struct: never copy
    private CancellationTokenRegistration _registration;
    private CancellationTokenRegistration _alsoRegistration; // a second token's (an adapter's own lifetime token): no linked source
    private long _registered; // 1 once Arm stored the registrations (an asynchronous wait's wake-up then unregisters them early)
    private CancellationToken _token;
    private CancellationToken _alsoToken;
    private ManualResetEventSlim? _event;
    private ITimer? _timer;
    private HierarchicalTimerWheel? _wheel; // the wheel holding _wheelTimer
    private TimerHandle _wheelTimer;   // the wheel timer of this wait's timeout (default: none)
    private int _timeoutGeneration;    // the generation it was armed for; read by its callback
    private long _timerRefs;           // 2 while armed on the wheel: the wait and the timer (see the design note)
    private bool _synchronous;
    private bool _handoffMode;         // this wait is a hand-off wait (see the design note); set before linking
    private long _handoff;             // HandoffIdle, HandoffExternal, HandoffRegistered, HandoffAbandoned or HandoffCompleted
    private Action<object?>? _continuation; // the internal continuation of a Registered hand-off wait
    private object? _continuationState;

    private const long HandoffIdle = 0;
    private const long HandoffExternal = 1;
    private const long HandoffRegistered = 2;
    private const long HandoffAbandoned = 3;
    private const long HandoffCompleted = 4;

    // The owner's list links and the wait's tags, guarded by the owner's lock (the seam's guarded accesses: plain).
    private Waiter<TAtomics>? _previous;
    private Waiter<TAtomics>? _next;
    private bool _isLinked;
    private long _ticket;
    private long _tag;
    private bool _isProbe;

    private static readonly Action<object?> WheelTimeout = static state => ((Waiter<TAtomics>)state!).OnWheelTimeout();

    /// <summary>Either token's registration: ends the wait as cancelled.</summary>
    private static readonly Action<object?> TokenCanceled = static state => ((Waiter<TAtomics>)state!).TryFinish(WaitStatus.Canceled);

    public Waiter(WaiterList<TAtomics> owner)
    {
        _owner = owner;
        _core.RunContinuationsAsynchronously = false; // we hop to the pool ourselves, allocation-free
    }

    /// <summary>Intrusive links of the owner's list; guarded by the owner's lock.</summary>
    internal Waiter<TAtomics>? Previous
    {
        get => TAtomics.LoadGuarded(ref _previous); // plain: under the owner's lock
        set => TAtomics.StoreGuarded(ref _previous, value);
    }

    internal Waiter<TAtomics>? Next
    {
        get => TAtomics.LoadGuarded(ref _next); // plain: under the owner's lock
        set => TAtomics.StoreGuarded(ref _next, value);
    }

    internal bool IsLinked
    {
        get => TAtomics.LoadGuarded(ref _isLinked); // plain: under the owner's lock
        set => TAtomics.StoreGuarded(ref _isLinked, value);
    }

    /// <summary>The owner's link order of the current wait (grows along the list); guarded by the owner's lock.</summary>
    internal long Ticket
    {
        get => TAtomics.LoadGuarded(ref _ticket); // plain: under the owner's lock
        set => TAtomics.StoreGuarded(ref _ticket, value);
    }

    /// <summary>What the wait is for, set before linking (a token bucket's waiter stores its token count); guarded by the owner's lock.</summary>
    internal long Tag
    {
        get => TAtomics.LoadGuarded(ref _tag); // plain: under the owner's lock
        set => TAtomics.StoreGuarded(ref _tag, value);
    }

    /// <summary>
    /// A wait that takes nothing when woken (a buffer's <c>WaitToWriteAsync</c>: its caller may or may not write after
    /// it), so a signal that ends it hands nothing over and <see cref="WaiterList{TAtomics}.SignalOne"/> wakes the next waiter
    /// too; set before linking, guarded by the owner's lock.
    /// </summary>
    internal bool IsProbe
    {
        get => TAtomics.LoadGuarded(ref _isProbe); // plain: under the owner's lock
        set => TAtomics.StoreGuarded(ref _isProbe, value);
    }

    public WaitStatus Status => _state.Status;

    /// <summary>Whether the current wait blocks its thread (diagnostics).</summary>
    internal bool IsSynchronous => _synchronous;

    public short Version => _core.Version;

    /// <summary>Prepares a pooled waiter for a new wait, synchronous or not, a hand-off wait or not (see the design note).</summary>
    public void Reset(bool synchronous, bool handoff = false)
    {
        _core.Reset();
        _synchronous = synchronous;
        _handoffMode = handoff && !synchronous;
        TAtomics.StorePlain(ref _handoff, HandoffIdle); // plain: published by Begin's release below, before the waiter is linked
        if (synchronous)
        {
            _event ??= new ManualResetEventSlim(false, spinCount: 1);
            _event.Reset();
        }

        _state.Begin(); // release: the reset happens-before the waiter is linked
    }

    /// <summary>
    /// Arms cancellation and the timeout. Call after linking, outside the owner's lock. When it throws (a user's
    /// <see cref="TimeProvider.CreateTimer"/> failed) nothing is armed and the waiter is still linked: the caller takes it
    /// back (<see cref="TryFinishQuietly"/>, then unlink and return it) or passes on the signal that reached it first.
    /// </summary>
    public void Arm(TimeSpan timeout, CancellationToken token, TimeProvider time) => Arm(timeout, token, alsoCancelledBy: default, time);

    /// <summary>
    /// As <see cref="Arm(TimeSpan, CancellationToken, TimeProvider)"/>, cancelled by either token: an adapter passes its
    /// caller's token and its own lifetime token, registered on both instead of on a linked source (which allocates per
    /// wait). A cancellation reports the caller's token when it is cancelled, else <paramref name="alsoCancelledBy"/>.
    /// </summary>
    public void Arm(TimeSpan timeout, CancellationToken token, CancellationToken alsoCancelledBy, TimeProvider time) =>
        Arm(timeout, token, time, !_synchronous && timeout != Timeout.InfiniteTimeSpan && ReferenceEquals(time, TimeProvider.System) ? SharedTimerWheel.Driven : null, alsoCancelledBy); // null while its driver cannot start: a per-wait timer

    /// <summary>
    /// Arms cancellation and the timeout, an asynchronous wait's timeout on <paramref name="wheel"/> when given (which
    /// must read <paramref name="time"/>'s clock), else on a <paramref name="time"/> timer. Tests pass their own wheel.
    /// </summary>
    internal void Arm(TimeSpan timeout, CancellationToken token, TimeProvider time, HierarchicalTimerWheel? wheel, CancellationToken alsoCancelledBy = default)
    {
        _token = token;
        bool registered = false;
        if (token.CanBeCanceled)
        {
            TAtomics.RegisterCancellation(ref _registration, token, TokenCanceled, this); // plain: published by the flag's locked add below
            registered = true;
        }

        if (alsoCancelledBy.CanBeCanceled)
        {
            _alsoToken = alsoCancelledBy;
            TAtomics.RegisterCancellation(ref _alsoRegistration, alsoCancelledBy, TokenCanceled, this); // plain: as above
            registered = true;
        }

        if (registered)
        {
            if (!_synchronous)
            {
                // Dekker with the wake-up (Execute): it reads _registered after the wait ended; we read the status after
                // raising _registered. Either it sees the flag (and the registration stored before it) and unregisters, or
                // we see the wait ended and do. So a wait whose value task is never awaited (never detached) does not
                // stay registered on a long-lived token, as the BCL's channels unregister at completion (review, session 10).
                // Explored under the controlled scheduler (tests/Concurrency/Backpressure/WaiterCancellationTests.cs).
                if (TAtomics.IsPlanted(PlantedFault.ArmReadsStatusBeforeFlag))
                {
                    PlantedArmReadsStatusBeforeFlag();
                }
                else
                {
                    TAtomics.Add(ref _registered, 1); // full fence: the registrations before the flag, the flag before the status read
                    if (_state.Status != WaitStatus.Pending) // acquire
                    {
                        UnregisterEarly();
                    }
                }
            }
        }

        if (!_synchronous && timeout != Timeout.InfiniteTimeSpan)
        {
            if (wheel is not null)
            {
                // What the callback reads, written before Schedule publishes the timer (its release store orders them).
                _timeoutGeneration = _state.Generation;
                _timerRefs = 2;
                if (SharedTimerWheel.TrySchedule(wheel, timeout, WheelTimeout, this, out _wheelTimer))
                {
                    _wheel = wheel; // the wait is consumed only after Arm returns (its await starts after), so Detach sees both
                    return;
                }
            }

            var stamp = new TimeoutStamp(this, _state.Generation);
            try
            {
                _timer = time.CreateTimer(static state => ((TimeoutStamp)state!).Fire(), stamp, timeout, Timeout.InfiniteTimeSpan);
            }
            catch
            {
                // A user's clock threw: undo our own setup (the registration) and let the exception reach the caller,
                // which takes the still-linked waiter back and passes on what reached it (before, the waiter stayed
                // linked, never awaited: the next signal was spent on it).
                TAtomics.DisposeCancellation(ref _registration);
                TAtomics.DisposeCancellation(ref _alsoRegistration);
                TAtomics.StoreRelease(ref _registered, 0); // release: as in Detach
                _token = default;
                _alsoToken = default;
                throw;
            }
        }
    }

    /// <summary>The shared wheel's callback: ends the wait it was armed for, then drops the timer's reference.</summary>
    private void OnWheelTimeout()
    {
        TryFinish(WaitStatus.TimedOut, TAtomics.LoadPlain(ref _timeoutGeneration)); // plain: published by the wheel's Schedule; held by our reference
        if (TAtomics.Add(ref _timerRefs, -1) == 0) // full fence: the wait was consumed first: its Detach left the return to us
        {
            _owner.Return(this);
        }
    }

    /// <summary>Ends the wait with <paramref name="status"/> unless it already ended; returns whether this call ended it.</summary>
    public bool TryFinish(WaitStatus status) => TryFinish(status, _state.Generation);

    /// <summary>The generation of the current wait (grows with every reuse).</summary>
    public int Generation => _state.Generation;

    /// <summary>Ends the wait of <paramref name="generation"/> with <paramref name="status"/>, unless it already ended or the waiter moved on.</summary>
    public bool TryFinish(WaitStatus status, int generation)
    {
        if (!_state.TryFinish(status, generation))
        {
            return false;
        }

        if (status is WaitStatus.Canceled or WaitStatus.TimedOut)
        {
            _owner.Unlink(this); // a signal or completion has unlinked it already
        }

        if (_synchronous)
        {
            TAtomics.SetEvent(_event!); // InterruptDeferral.Set: a signaller may be a reader that already took its item, an interrupt must not break this
        }
        else
        {
            _owner.WakeQueued(); // counted until Execute runs: see WaiterList.WakesInFlight
            TAtomics.QueueWorkItem(this); // the thread pool (not local); the controlled scheduler runs it inline
        }

        return true;
    }

    /// <summary>
    /// Ends a wait its own thread no longer needs (its recheck succeeded) without waking anyone; false when a
    /// signal, completion, timeout or cancellation ended it first.
    /// </summary>
    public bool TryFinishQuietly() => _state.TryFinish(WaitStatus.Signaled);

    /// <summary>
    /// Blocks the calling thread until the wait ends or <paramref name="timeout"/> passes, then recycles the waiter.
    /// A <see cref="Thread.Interrupt"/> of the waiting thread ends the wait as a cancellation does (no trace left) and
    /// is rethrown after the waiter is unlinked and recycled; when a signal, completion or timeout ended the wait first,
    /// the wait returns as usual and the interrupt is posted again for the caller's next wait. Before, the exception
    /// left the waiter linked: a later signal woke nobody (a lost wake-up for the waiters behind it) and the waiter
    /// never went back to the pool.
    /// </summary>
    /// <exception cref="ThreadInterruptedException">The thread was interrupted while waiting, before anything else ended the wait.</exception>
    public WaitStatus WaitSynchronously(TimeSpan timeout)
    {
        bool interrupted = false, endedByInterrupt = false;
        try
        {
            if (!TAtomics.WaitEvent(_event!, timeout))
            {
                TryFinish(WaitStatus.TimedOut);
            }
        }
        catch (ThreadInterruptedException)
        {
            interrupted = true;
            endedByInterrupt = TryFinish(WaitStatus.Canceled); // unlinks it, as a cancellation does
        }

        interrupted |= AwaitEnderSet();
        WaitStatus status = Status;
        if (Detach())
        {
            _owner.Return(this);
        }

        if (endedByInterrupt)
        {
            throw new ThreadInterruptedException();
        }

        if (interrupted)
        {
            Thread.CurrentThread.Interrupt();
        }

        return status;
    }

    void IThreadPoolWorkItem.Execute()
    {
        _owner.WakeStarted();
        if (TAtomics.LoadAcquire(ref _registered) != 0) // acquire: pairs with Arm's locked add (see there)
        {
            UnregisterEarly(); // for a wait never awaited; Detach still disposes (and waits for a running callback)
        }

        if (!_handoffMode)
        {
            _core.SetResult(Status);
            return;
        }

        long decided = TAtomics.IsPlanted(PlantedFault.HandoffReadThenWrite)
            ? PlantedHandoffReadThenWrite()
            : TAtomics.CompareExchange(ref _handoff, HandoffCompleted, HandoffIdle); // full fence: pairs with the owner's CAS

        switch (decided)
        {
            case HandoffIdle:
                return; // the owner has not decided yet: it finds Completed and acts itself
            case HandoffExternal:
                _core.SetResult(Status); // a caller holds the ValueTask: from here on it may recycle the waiter
                return;
            case HandoffRegistered:
                Action<object?> continuation = TAtomics.LoadPlain(ref _continuation)!; // plain: published by the owner's CAS, which we read
                object? state = TAtomics.LoadPlain(ref _continuationState);
                TAtomics.StorePlain(ref _continuation, null); // plain: only the wake-up touches them now
                TAtomics.StorePlain(ref _continuationState, null);
                continuation(state); // consumes (and may recycle) the waiter: nothing touches it after
                return;
            default:
                Recycle(); // abandoned: nobody will consume the wait
                return;
        }
    }

    /// <summary>
    /// A hand-off wait's owner gives its <see cref="ValueTask"/> to a caller (see the design note): the core completes
    /// when the wait ends (now, when it already ended). Call once, after <see cref="Arm(TimeSpan, CancellationToken, TimeProvider)"/>.
    /// </summary>
    internal void Expose()
    {
        if (_handoffMode && TAtomics.CompareExchange(ref _handoff, HandoffExternal, HandoffIdle) != HandoffIdle) // full fence: pairs with Execute's CAS
        {
            _core.SetResult(Status); // Execute ran and left it to us
        }
    }

    /// <summary>
    /// A hand-off wait's owner registers <paramref name="continuation"/> for the end of the wait (it runs on the thread
    /// that runs the wake-up, without context) and returns true; false when the wait already ended: the owner consumes it
    /// at once (<see cref="ConsumeHandoff"/>). Call once, after <see cref="Arm(TimeSpan, CancellationToken, TimeProvider)"/>.
    /// </summary>
    internal bool TryAwait(Action<object?> continuation, object? state)
    {
        TAtomics.StorePlain(ref _continuation, continuation); // plain: published by the CAS below
        TAtomics.StorePlain(ref _continuationState, state);
        if (TAtomics.CompareExchange(ref _handoff, HandoffRegistered, HandoffIdle) == HandoffIdle) // full fence: publishes the continuation to Execute
        {
            return true;
        }

        TAtomics.StorePlain(ref _continuation, null); // plain: the wake-up ran and will not read them
        TAtomics.StorePlain(ref _continuationState, null);
        return false;
    }

    /// <summary>
    /// Takes the result of an ended hand-off wait that its owner kept (<see cref="TryAwait"/>) and recycles the waiter:
    /// how the wait ended; a cancelled wait throws <see cref="OperationCanceledException"/> with its token.
    /// </summary>
    internal WaitStatus ConsumeHandoff()
    {
        WaitStatus status = Status;
        CancellationToken canceled = CanceledToken;
        Recycle();
        return status == WaitStatus.Canceled ? throw new OperationCanceledException(canceled) : status;
    }

    /// <summary>
    /// Blocks, uninterruptibly, until whoever ended the synchronous wait has set the event (the last step of its
    /// <see cref="TryFinish(WaitStatus, int)"/>, after the state CAS and, for a cancellation, the unlink); whether a
    /// <see cref="Thread.Interrupt"/> arrived meanwhile, for the caller to post again. Short: the ender is between two
    /// steps of its own.
    /// </summary>
    private bool AwaitEnderSet()
    {
        bool interrupted = false;
        while (true)
        {
            try
            {
                TAtomics.WaitEvent(_event!, Timeout.InfiniteTimeSpan); // whoever ended the wait sets the event
                return interrupted;
            }
            catch (ThreadInterruptedException)
            {
                interrupted = true; // the wait is not the caller's to break: retried, posted again afterwards
            }
        }
    }

    /// <summary>
    /// The owner of a wait that a signal (or completion, timeout, cancellation) ended before its owner could take it back
    /// quietly gives it up (<see cref="WaiterList{TAtomics}.Abandon"/>). A hand-off wait is recycled once both the owner
    /// and the wake-up are done with it. A synchronous wait is recycled once its ender has set the event: until then the
    /// ender may still be inside <see cref="TryFinish(WaitStatus, int)"/>, and its late set would end the next wait on this
    /// waiter early (a wake-up with nothing ended: Pending, the waiter still linked); an interrupt meanwhile is posted
    /// again, never thrown (before session 13 such a waiter was left to the GC: a new waiter per race). Any other (an
    /// asynchronous wait without hand-off) is left to the GC, as its wake-up may still complete its core.
    /// </summary>
    internal void AbandonEnded()
    {
        if (_synchronous)
        {
            bool interrupted = !TAtomics.IsPlanted(PlantedFault.AbandonSyncRecyclesBeforeSet) && AwaitEnderSet();
            Recycle(); // Detach: no timer on a synchronous wait; a registration's Dispose waits for a cancellation callback still running
            if (interrupted)
            {
                Thread.CurrentThread.Interrupt(); // for the caller's next interruptible wait, as WaitSynchronously does
            }

            return;
        }

        if (_handoffMode && TAtomics.CompareExchange(ref _handoff, HandoffAbandoned, HandoffIdle) != HandoffIdle) // full fence: pairs with Execute's CAS
        {
            Recycle(); // Execute ran and left it to us
        }
    }

    /// <summary>
    /// The early unregister of an asynchronous wait that ended (Arm's, when it sees the wait ended, and the wake-up's, when it
    /// sees the registered flag): thread-safe, never blocks; a no-op once unregistered, while the callback runs, or for none.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // as the two calls were written inline before session 15
    private void UnregisterEarly()
    {
        TAtomics.UnregisterCancellation(ref _registration); // plain: published by Arm's locked add, which the caller read (or made)
        if (!TAtomics.IsPlanted(PlantedFault.EarlyUnregisterForgetsSecond))
        {
            TAtomics.UnregisterCancellation(ref _alsoRegistration);
        }
    }

    /// <summary>The planted fault <see cref="PlantedFault.ArmReadsStatusBeforeFlag"/>: the status read, then the flag raised (the Dekker order broken).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PlantedArmReadsStatusBeforeFlag()
    {
        bool ended = _state.Status != WaitStatus.Pending; // acquire: a wake-up after this read and before the add sees no flag
        TAtomics.Add(ref _registered, 1); // full fence
        if (ended)
        {
            UnregisterEarly();
        }
    }

    /// <summary>The planted fault <see cref="PlantedFault.HandoffReadThenWrite"/>: the owner's decision read, then Completed written.</summary>
    private long PlantedHandoffReadThenWrite()
    {
        long decided = TAtomics.LoadAcquire(ref _handoff); // acquire
        if (decided == HandoffIdle)
        {
            TAtomics.StoreRelease(ref _handoff, HandoffCompleted); // release: an owner's CAS between the two is lost
        }

        return decided;
    }

    private void Recycle()
    {
        if (Detach())
        {
            _owner.Return(this);
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        WaitStatus status = Consume(token, out CancellationToken canceled);
        return status switch
        {
            WaitStatus.Signaled => true,
            WaitStatus.Canceled => throw new OperationCanceledException(canceled),
            WaitStatus.Completed when _owner.CompletionError is { } error => throw error,
            _ => false,
        };
    }

    WaitStatus IValueTaskSource<WaitStatus>.GetResult(short token)
    {
        WaitStatus status = Consume(token, out CancellationToken canceled);
        return status == WaitStatus.Canceled ? throw new OperationCanceledException(canceled) : status;
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => StatusOf(_core.GetStatus(token), completedMayFault: true);

    ValueTaskSourceStatus IValueTaskSource<WaitStatus>.GetStatus(short token) => StatusOf(_core.GetStatus(token), completedMayFault: false);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    void IValueTaskSource<WaitStatus>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>
    /// The core completes with the WaitStatus as a result (no exception object, no allocation), so the status it
    /// reports is refined to match what GetResult will do: Canceled when it will throw OperationCanceledException,
    /// Faulted when it will throw the completion error (Canceled when that error is an OperationCanceledException: before,
    /// a parked WaitToReadAsync of a channel completed with one was faulted, the BCL's canceled). Without this, AsTask() of a cancelled wait is faulted
    /// rather than canceled. Status is stable here: it changes only when the waiter is rented again, after GetResult.
    /// </summary>
    private ValueTaskSourceStatus StatusOf(ValueTaskSourceStatus core, bool completedMayFault)
    {
        if (core != ValueTaskSourceStatus.Succeeded)
        {
            return core;
        }

        return Status switch
        {
            WaitStatus.Canceled => ValueTaskSourceStatus.Canceled,
            WaitStatus.Completed when completedMayFault => _owner.CompletionError switch
            {
                null => ValueTaskSourceStatus.Succeeded,
                OperationCanceledException => ValueTaskSourceStatus.Canceled, // as the BCL channels' parked waits: a completion by cancellation stays one
                _ => ValueTaskSourceStatus.Faulted,
            },
            _ => ValueTaskSourceStatus.Succeeded,
        };
    }

    private WaitStatus Consume(short token, out CancellationToken canceled)
    {
        WaitStatus status = _core.GetResult(token);
        canceled = CanceledToken;
        if (Detach())
        {
            _owner.Return(this);
        }

        return status;
    }

    /// <summary>The token a cancelled wait reports: the caller's when it is cancelled, else the second token (see the four-argument Arm).</summary>
    private CancellationToken CanceledToken =>
        _alsoToken.CanBeCanceled && !_token.IsCancellationRequested && _alsoToken.IsCancellationRequested ? _alsoToken : _token;

    /// <summary>Releases the wait's registration and timer; false when a fired wheel callback still holds the waiter (it returns it).</summary>
    private bool Detach()
    {
        TAtomics.DisposeCancellation(ref _registration); // waits for a running cancellation callback, so it cannot touch a recycled waiter; none: a no-op
        if (TAtomics.IsPlanted(PlantedFault.DetachForgetsSecond))
        {
            TAtomics.StorePlain(ref _alsoRegistration, default); // planted: dropped, not disposed (no wait for its running callback)
        }
        else
        {
            TAtomics.DisposeCancellation(ref _alsoRegistration);
        }

        _alsoToken = default;
        TAtomics.StoreRelease(ref _registered, 0); // release: the next wait's Arm raises it again
        _token = default;
        if (_timer is { } timer)
        {
            _timer = null;
            try
            {
                timer.Dispose();
            }
            catch (Exception error)
            {
                // A user's clock: the wait already ended, its outcome stands. Counted and reported by the owner; thrown on, it
                // left Detach half done and faulted a writer woken for a free slot, whose signal was then lost.
                _owner.TimerFailed(error);
            }
        }

        if (_wheelTimer.IsAllocated)
        {
            bool cancelled = _wheel!.Cancel(_wheelTimer);
            _wheelTimer = default;
            _wheel = null;
            if (!cancelled && !TAtomics.IsPlanted(PlantedFault.DetachIgnoresTimerRef) && TAtomics.Add(ref _timerRefs, -1) != 0) // full fence: pairs with the callback's decrement
            {
                return false; // the callback fired and has not finished with us: it returns the waiter
            }
        }

        return true;
    }

    /// <summary>The timer state of one timed asynchronous wait: the waiter and the generation it was armed for.</summary>
    private sealed class TimeoutStamp(Waiter<TAtomics> waiter, int generation)
    {
        public void Fire() => waiter.TryFinish(WaitStatus.TimedOut, generation);
    }
}
