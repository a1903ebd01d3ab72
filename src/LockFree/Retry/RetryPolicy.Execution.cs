using System.Runtime.ExceptionServices;
using LockFree.Backpressure;
using LockFree.Timers;

namespace LockFree;

/// <content>
/// <see cref="ExecuteAsync{TState, TResult}"/>'s attempts and waits as a pooled operation
/// (<see cref="PooledOperation{TResult}"/>): a process-wide bounded pool per state and result type, so a call whose
/// attempt completes asynchronously allocates nothing of its own whatever thread takes its result. Before (session 12)
/// it was an async method on <c>PoolingAsyncValueTaskMethodBuilder</c>, whose boxes are cached per thread (acceptance
/// audit, gap A): an attempt completing on another thread than the call's allocated a box per call (168 B). The backoff
/// wait of a retry is still a <see cref="Task"/> (<c>Wakeups.DelayAsync</c>): the retry path, after a failure.
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
    private sealed class ExecuteOperation<TState, TResult> : PooledOperation<TResult>
    {
        /// <summary>The operations of this state and result type, shared by every policy (a policy cannot hold one pool per type).</summary>
        public static readonly OperationPool<ExecuteOperation<TState, TResult>> Pool = new();

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
        private Task? _wait;               // the backoff delay while parked on it

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
                        Task finished = _wait!;
                        _wait = null;
                        finished.GetAwaiter().GetResult(); // throws when the caller cancelled during the wait
                        _attempt++;
                        _phase = BeforeAttempt;
                        continue;
                }

                Task wait = _policy._wheel is null
                    ? Wakeups.DelayAsync(_delay, _policy._time, _token)
                    : Wakeups.DelayAsync(_delay, _policy._wheel, _policy._time, _token);
                if (!wait.IsCompleted)
                {
                    _wait = wait;
                    _phase = AwaitingDelay;
                    result = default!;
                    return Park(wait);
                }

                wait.GetAwaiter().GetResult();
                _attempt++;
                _phase = BeforeAttempt;
            }
        }

        protected override void Release()
        {
            _policy = null!;
            _action = null!;
            _state = default!;
            _token = default;
            _call = default;
            _wait = null;
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
    }
}
