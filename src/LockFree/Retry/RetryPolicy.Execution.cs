using System.Runtime.ExceptionServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Timers;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

/// <content>
/// <see cref="ExecuteAsync{TState, TResult}"/>'s attempts and waits as a pooled operation
/// (<see cref="PooledOperation{TResult}"/>): a process-wide bounded pool per state and result type, so a call whose
/// attempt completes asynchronously allocates nothing of its own whatever thread takes its result. Before (session 12)
/// it was an async method on <c>PoolingAsyncValueTaskMethodBuilder</c>, whose boxes are cached per thread (acceptance
/// audit, gap A): an attempt completing on another thread than the call's allocated a box per call (168 B). Since session
/// 13 the backoff wait between attempts is the operation's own too (<see cref="BackoffWaitState{TAtomics}"/>), not a
/// <see cref="Task"/> (the Task-based delay it replaced allocated a task, a timer and, with a token, a registration per wait):
/// a timer on the shared timer wheel (<see cref="TimeProvider.System"/>) or on the policy's
/// <see cref="RetryPolicyOptions.TimerWheel"/>, with the operation as its state, and the token's registration with the
/// operation as its state; only a wait on another <see cref="TimeProvider"/> creates an <see cref="ITimer"/> (and its
/// stamp) per wait.
/// </content>
public sealed partial class RetryPolicy
{
    private ValueTask<TResult> ExecuteCore<TState, TResult>(Func<TState, CancellationToken, ValueTask<TResult>> action, TState state, CancellationToken cancellationToken)
    {
        ExecuteOperation<TState, TResult> operation = ExecuteOperation<TState, TResult>.Pool.Rent() ?? new ExecuteOperation<TState, TResult>();
        operation.Set(this, action, state, cancellationToken);
        return operation.Run();
    }

    /// <summary>
    /// One <see cref="ExecuteAsync{TState, TResult}"/> call, step for step the async method it replaces: check the token,
    /// record the call, then attempt; a failure is rethrown (the caller's own cancellation, a failure after the caller
    /// cancelled as a cancellation with the failure inside, or one the policy does not retry) or waited out (the backoff
    /// delay on the policy's clock) before the next attempt.
    /// </summary>
    /// <remarks>
    /// The backoff wait (see <see cref="BackoffWaitState{TAtomics}"/>): its enders are the timer (a wheel timer whose
    /// callback hands the resumption to the thread pool, never running attempts on the wheel's thread; or an
    /// <see cref="ITimer"/>, whose callback resumes on the timer's thread, as the continuation of <c>Task.Delay</c> did), the
    /// token's cancellation (resumes on the cancelling thread, as <c>Task.Delay</c>'s cancellation did) and the policy's
    /// wheel's Dispose (the rest of the delay moves to a <see cref="TimeProvider"/> timer, as the Task-based delay it
    /// replaced did). The resumed operation releases the registration (waiting for a running cancellation callback) and
    /// the timer before it goes on or completes, so no ender of one wait can touch the next wait or a recycled operation.
    /// </remarks>
    private sealed class ExecuteOperation<TState, TResult> : PooledOperation<TResult>, IThreadPoolWorkItem, IWheelDisposeListener
    {
        /// <summary>The operations of this state and result type, shared by every policy (a policy cannot hold one pool per type).</summary>
        public static readonly OperationPool<ExecuteOperation<TState, TResult>> Pool = new();

        private static readonly Action<object?> WheelFired = static state => ((ExecuteOperation<TState, TResult>)state!).OnWheelEnded(BackoffWaitStatus.Fired);
        private static readonly Action<object?> TokenCanceled = static state => ((ExecuteOperation<TState, TResult>)state!).OnCanceled();

        private const int BeforeAttempt = 0;
        private const int AwaitingAttempt = 1;
        private const int AwaitingDelay = 2;

        private RetryPolicy _policy = null!;
        private Func<TState, CancellationToken, ValueTask<TResult>> _action = null!;
        private TState _state = default!;
        private CancellationToken _token;
        private int _attempt;
        private TimeSpan _delay;
        private int _phase;
        private ValueTask<TResult> _call;  // the attempt's pending task while parked on it

        // The backoff wait (see the remarks): its state, and what it armed. Written by the arming thread before TryPark
        // publishes them; read by the resumed operation (after the ender's CAS) and by the enders, which read only _wait
        // (and a wheel ender the wheel, held by its reference).
        private BackoffWaitState<Seam> _wait;
        private HierarchicalTimerWheel? _wheel;  // the wheel holding _wheelTimer, or null
        private TimerHandle _wheelTimer;
        private long _waitStart;                 // the wheel clock's reading the wheel wait counts from (its Dispose finishes the wait from it)
        private ITimer? _timer;                  // the wait's TimeProvider timer, or null
        private CancellationTokenRegistration _registration;
        private bool _heldByTimer;               // the wheel timer could not be cancelled: its callback holds a reference (Release)

        public void Set(RetryPolicy policy, Func<TState, CancellationToken, ValueTask<TResult>> action, TState state, CancellationToken token)
        {
            _policy = policy;
            _action = action;
            _state = state;
            _token = token;
        }

        public ValueTask<TResult> Run() => Start();

        protected override bool Advance(bool resumed, out TResult result)
        {
            if (!resumed)
            {
                _token.ThrowIfCancellationRequested(); // before the deposit: a call cancelled before it starts is no call (before session 10's bug hunt it deposited credit)
                _policy.RecordCall();
                _attempt = 1;
                _delay = TimeSpan.Zero;
                _phase = BeforeAttempt;
            }

            while (true)
            {
                switch (_phase)
                {
                    case BeforeAttempt:
                        if (_attempt > 1)
                        {
                            _token.ThrowIfCancellationRequested();
                        }

                        try
                        {
                            ValueTask<TResult> call = _action(_state, _token);
                            if (!call.IsCompleted)
                            {
                                _call = call;
                                _phase = AwaitingAttempt;
                                result = default!;
                                return Park(call);
                            }

                            result = call.GetAwaiter().GetResult();
                            return true;
                        }
                        catch (Exception failure)
                        {
                            OnFailure(failure); // rethrows, or sets the delay before the next attempt
                        }

                        break;
                    case AwaitingAttempt:
                        try
                        {
                            ValueTask<TResult> call = _call;
                            _call = default;
                            result = call.GetAwaiter().GetResult();
                            return true;
                        }
                        catch (Exception failure)
                        {
                            OnFailure(failure);
                        }

                        break;
                    default:
                        if (FinishWait()) // throws when the caller cancelled during the wait
                        {
                            result = default!;
                            return false; // the wheel was disposed under the wait: parked again on the clock
                        }

                        _attempt++;
                        _phase = BeforeAttempt;
                        continue;
                }

                // As the Task-based delay it replaced, which returned a completed task for it: a zero delay does not wait (nor look at the token).
                if (_delay > TimeSpan.Zero)
                {
                    HierarchicalTimerWheel? wheel = _policy._wheel ?? (ReferenceEquals(_policy._time, TimeProvider.System) ? SharedTimerWheel.Driven : null); // null while the shared driver cannot start: a TimeProvider timer
                    _phase = AwaitingDelay;
                    if (Wait(_delay, wheel))
                    {
                        result = default!;
                        return false;
                    }
                }

                _attempt++;
                _phase = BeforeAttempt;
            }
        }

        /// <summary>
        /// Arms a wait of <paramref name="delay"/> (on <paramref name="wheel"/> when given and it takes the timer, else on
        /// a timer of the policy's clock) and parks on it: true when parked (an ender resumes the operation; the caller
        /// returns from <see cref="Advance"/> and touches nothing); false when the wait is over (it ended while being
        /// armed: consumed inline). Throws when the caller cancelled, before or during the wait.
        /// </summary>
        private bool Wait(TimeSpan delay, HierarchicalTimerWheel? wheel)
        {
            if (_token.IsCancellationRequested)
            {
                throw Canceled(); // as Task.Delay with a cancelled token: a canceled task, its exception
            }

            int generation = _wait.Begin(wheelTimer: wheel is not null);
            if (wheel is not null && SharedTimerWheel.TryScheduleFromNow(wheel, delay, WheelFired, this, out _wheelTimer, out _waitStart))
            {
                _wheel = wheel;
            }
            else
            {
                // A clock other than TimeProvider.System, or a wheel that refuses the timer (disposed, full, beyond its
                // MaxDueIn): a timer per wait, stamped with its generation, since disposing an ITimer does not stop a
                // callback already running (which may then meet a later wait of this operation, or another call's).
                // A user's clock that throws fails the call, as Task.Delay did; nothing is armed yet.
                _timer = _policy._time.CreateTimer(static state => ((DelayStamp)state!).Fire(), new DelayStamp(this, generation), delay, Timeout.InfiniteTimeSpan);
            }

            if (_token.CanBeCanceled)
            {
                Seam.RegisterCancellation(ref _registration, _token, TokenCanceled, this); // runs at once when the token is cancelled by now: it ends the wait
            }

            PrepareOwnPark(); // before TryPark publishes the park
            if (_wait.TryPark(generation))
            {
                return true;
            }

            AbandonOwnPark();
            return FinishWait();
        }

        /// <summary>
        /// The wait ended: releases its registration (waiting for a running cancellation callback) and its timer, then
        /// throws when the caller cancelled, re-parks on the policy's clock for the rest of the delay when the wheel's
        /// Dispose dropped the timer (true: parked), or returns false (the delay passed).
        /// </summary>
        private bool FinishWait()
        {
            Seam.DisposeCancellation(ref _registration); // no-op when none; a cancellation callback running on another thread is waited for
            BackoffWaitStatus status = _wait.Status;
            if (_timer is not null)
            {
                _timer.Dispose(); // a callback already running loses its CAS: its stamp's generation is this wait's
                _timer = null;
            }

            if (_wheel is not null)
            {
                // Fired or WheelDropped: the wheel's callback (or Dispose) ended the wait, and touches nothing after. Canceled:
                // the timer is cancelled unless it fired or was dropped meanwhile; then its callback (or the wheel's
                // Dispose) still reads the operation, and it returns it to the pool (Release).
                _heldByTimer = status == BackoffWaitStatus.Canceled && !_wheel.Cancel(_wheelTimer);
                _wheel = null;
                _wheelTimer = default;
            }

            switch (status)
            {
                case BackoffWaitStatus.Canceled:
                    throw Canceled();
                case BackoffWaitStatus.WheelDropped:
                    if (_token.IsCancellationRequested)
                    {
                        throw Canceled(); // as the Task-based delay it replaced did: the token is checked first
                    }

                    TimeSpan remaining = _delay - _policy._time.GetElapsedTime(_waitStart); // the wheel reads the policy's clock
                    return remaining > TimeSpan.Zero && Wait(remaining, wheel: null); // at the same due time, on the clock's timer
                default:
                    return false;
            }
        }

        /// <summary>The cancellation of the caller's token during a wait, as <c>Task.Delay</c>'s canceled task threw it.</summary>
        private TaskCanceledException Canceled() => new("A task was canceled.", null, _token);

        /// <summary>The token's registration: ends the wait (the registration is released before the next wait, so the generation is this wait's).</summary>
        private void OnCanceled()
        {
            if (_wait.TryEnd(BackoffWaitStatus.Canceled, _wait.Generation, out bool resume) && resume && !Seam.IsPlanted(PlantedFault.RetryCancelForgetsToResume))
            {
                ResumeOwnPark(); // on the cancelling thread, as Task.Delay's cancellation ran the continuation
            }
        }

        /// <summary>
        /// The wheel timer fired (<see cref="BackoffWaitStatus.Fired"/>) or the wheel's Dispose dropped it: ends the wait,
        /// resuming the operation on the thread pool (never on the wheel's thread), or, having lost to the token, drops
        /// the timer's reference (the operation is not recycled before this: its generation is this wait's).
        /// </summary>
        private void OnWheelEnded(BackoffWaitStatus status)
        {
            if (_wait.TryEnd(status, _wait.Generation, out bool resume))
            {
                if (resume)
                {
                    Seam.QueueWorkItem(this); // the thread pool (not local); the operation is the work item: no allocation
                }

                return; // the winner touches nothing more
            }

            if (_wait.ReleaseByTimer())
            {
                Pool.Return(this); // the wait was released first (Release left the return to us)
            }
        }

        /// <inheritdoc/>
        void IThreadPoolWorkItem.Execute() => ResumeOwnPark();

        /// <inheritdoc/>
        void IWheelDisposeListener.OnWheelDisposed() => OnWheelEnded(BackoffWaitStatus.WheelDropped);

        protected override void Release()
        {
            _policy = null!;
            _action = null!;
            _state = default!;
            _token = default;
            _call = default;
            if (_heldByTimer)
            {
                _heldByTimer = false;
                if (!_wait.ReleaseByWait())
                {
                    return; // a wheel callback that lost to the token still reads the operation: it returns it
                }
            }

            Pool.Return(this);
        }

        /// <summary>A failed attempt: rethrows it (or a cancellation around it), or sets the delay before the next attempt.</summary>
        private void OnFailure(Exception failure)
        {
            if (failure is OperationCanceledException canceled && canceled.CancellationToken == _token && _token.IsCancellationRequested)
            {
                ExceptionDispatchInfo.Throw(failure); // the caller's own cancellation: never retried, passed on as is
            }

            if (_token.IsCancellationRequested)
            {
                // The caller cancelled while the attempt failed otherwise (its own or a linked token's cancellation, or an
                // unrelated error): never retried, so neither ShouldRetry nor the budget is asked (before the bug hunt of
                // session 10, Evaluate spent a retry the backoff wait's cancellation then threw away), and the caller gets
                // a cancellation of its token, the failure inside.
                ThrowCancelled(failure, _token);
            }

            RetryDecision decision = _policy.Evaluate(_attempt, failure, _delay);
            if (!decision.ShouldRetry)
            {
                ExceptionDispatchInfo.Throw(failure);
            }

            _delay = decision.Delay;
        }

        /// <summary>The state of one wait's <see cref="ITimer"/>: the operation and the generation it was armed for.</summary>
        private sealed class DelayStamp(ExecuteOperation<TState, TResult> operation, int generation)
        {
            public void Fire()
            {
                if (operation._wait.TryEnd(BackoffWaitStatus.Fired, generation, out bool resume) && resume)
                {
                    operation.ResumeOwnPark(); // on the timer's thread, as Task.Delay's continuation ran
                }
            }
        }
    }
}
