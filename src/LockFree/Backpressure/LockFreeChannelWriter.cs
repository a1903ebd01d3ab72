using System.Runtime.CompilerServices;
using System.Threading.Channels;
using System.Threading.Tasks.Sources;

namespace LockFree.Backpressure;

// Design: translates BackpressureBuffer<T> write results into the ChannelWriter<T> contract.
// Accepted, EvictedOldest and DroppedIncoming are successes (as the BCL's DropOldest/DropWrite modes succeed);
// Completed becomes false (TryWrite/WaitToWriteAsync) or ChannelClosedException (WriteAsync); Rejected happens
// only under OverflowPolicy.Reject (or TryWrite under Wait) and becomes false or InvalidOperationException.
// Allocation-free when the buffer's operation completes synchronously, and in steady state when it waits: a parked
// WriteAsync hands its caller the buffer's own pooled wait (BackpressureBuffer.WriteAsyncForChannel, which throws the
// channel's exceptions itself) through a pooled forwarding source, so the thread that takes the result consumes the
// buffer's pooled box and it goes back to that thread's cache. Before (acceptance audit, 2026-11-23), an async method
// here awaited the buffer's write: the box was consumed on the pool thread that ended the wait, and a caller taking the
// result on another thread (polling, blocking) rented a new one, 168 B per parked write (BackpressureAsyncAllocationTests).

/// <summary>The writer of a <see cref="LockFreeBoundedChannel{T}"/>.</summary>
internal sealed class LockFreeChannelWriter<T>(BackpressureBuffer<T> buffer) : ChannelWriter<T>
{
    /// <inheritdoc/>
    public override bool TryComplete(Exception? error = null) => buffer.TryComplete(error);

    /// <summary>True when the item was accepted, or dropped by the policy; false when full (Wait, Reject) or completed.</summary>
    public override bool TryWrite(T item) => buffer.TryWriteWithoutHint(item).IsSuccess; // a bool: no retry hint to compute

    /// <summary>
    /// True when a write may succeed (under Wait and Reject: when there is room; under the drop policies: at once);
    /// false once completed, or faulted with the completion error when completed with one.
    /// </summary>
    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<bool> wait = buffer.WaitToWriteAsync(waitUnderReject: true, cancellationToken);
        if (!wait.IsCompletedSuccessfully)
        {
            return WaitToWriteAsyncSlow(wait);
        }

        return wait.Result ? new ValueTask<bool>(true) : Completed();
    }

    /// <summary>
    /// Writes, waiting for room under Wait; a success under the drop policies. Throws
    /// <see cref="ChannelClosedException"/> (inner: the completion error) once completed, and
    /// <see cref="InvalidOperationException"/> on a full channel under Reject (the item stays with the caller).
    /// </summary>
    public override ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        ValueTask<WriteResult> write = buffer.WriteAsyncForChannel(item, cancellationToken);
        return write.IsCompletedSuccessfully ? ToValueTask(write.Result) : WriteForwarder.Forward(_forwarders, write);
    }

    private ValueTask<bool> Completed() => buffer.CompletionError is { } error
        ? ValueTask.FromException<bool>(error)
        : new ValueTask<bool>(false);

    private ValueTask ToValueTask(WriteResult result) => result.Outcome switch
    {
        WriteOutcome.Completed => ValueTask.FromException(ChannelErrors.Closed(buffer.CompletionError)),
        WriteOutcome.Rejected => ValueTask.FromException(ChannelErrors.FullUnderReject()),
        _ => default,
    };

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WaitToWriteAsyncSlow(ValueTask<bool> wait)
    {
        if (await wait.ConfigureAwait(false))
        {
            return true;
        }

        return buffer.CompletionError is { } error ? throw error : false;
    }

    /// <summary>Pooled forwarders of this writer's parked writes.</summary>
    private readonly WriteForwarder?[] _forwarders = new WriteForwarder?[WriteForwarder.PoolSize];

    /// <summary>
    /// Presents a parked <see cref="BackpressureBuffer{T}.WriteAsyncForChannel"/> (a <see cref="ValueTask{WriteResult}"/>
    /// whose failures are already the channel's exceptions) as the non-generic <see cref="ValueTask"/> of
    /// <see cref="ChannelWriter{T}.WriteAsync"/>. Its status is the buffer's wait's; the caller's continuation is
    /// registered on that wait without context and run in the caller's contexts here (as
    /// <see cref="ManualResetValueTaskSourceCore{TResult}"/> runs it); the result is taken from the wait on the thread that
    /// takes this one's. Pooled per writer, back in the pool once its result is taken: a steady stream of parked writes
    /// allocates nothing.
    /// </summary>
    private sealed class WriteForwarder : IValueTaskSource
    {
        /// <summary>Forwarders kept per writer (each slot taken and returned with an exchange).</summary>
        internal const int PoolSize = 8;

        private readonly Action _invokeContinuation;
        private WriteForwarder?[] _pool = null!;
        private ValueTask<WriteResult> _inner;
        private Action<object?>? _continuation;
        private object? _state;
        private ExecutionContext? _executionContext;
        private object? _scheduling; // a SynchronizationContext or a TaskScheduler to run the continuation on, or null
        private short _version;

        private WriteForwarder()
        {
            _invokeContinuation = InvokeContinuation; // one delegate per pooled instance, not per write
        }

        public static ValueTask Forward(WriteForwarder?[] pool, ValueTask<WriteResult> inner)
        {
            WriteForwarder? forwarder = null;
            for (int i = 0; i < pool.Length && forwarder is null; i++)
            {
                if (Volatile.Read(ref pool[i]) is not null)
                {
                    forwarder = Interlocked.Exchange(ref pool[i], null);
                }
            }

            forwarder ??= new WriteForwarder();
            forwarder._pool = pool;
            forwarder._inner = inner;
            return new ValueTask(forwarder, forwarder._version);
        }

        public ValueTaskSourceStatus GetStatus(short token)
        {
            Validate(token);
            ValueTask<WriteResult> inner = _inner;
            return !inner.IsCompleted ? ValueTaskSourceStatus.Pending
                : inner.IsCompletedSuccessfully ? ValueTaskSourceStatus.Succeeded
                : inner.IsCanceled ? ValueTaskSourceStatus.Canceled
                : ValueTaskSourceStatus.Faulted;
        }

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            Validate(token);
            _continuation = continuation;
            _state = state;
            _executionContext = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
            _scheduling = null;
            if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
            {
                // As ManualResetValueTaskSourceCore captures it: a non-default SynchronizationContext, else a non-default TaskScheduler.
                SynchronizationContext? context = SynchronizationContext.Current;
                _scheduling = context is not null && context.GetType() != typeof(SynchronizationContext) ? context
                    : TaskScheduler.Current != TaskScheduler.Default ? TaskScheduler.Current
                    : null;
            }

            _inner.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_invokeContinuation);
        }

        public void GetResult(short token)
        {
            Validate(token);
            ValueTask<WriteResult> inner = _inner;
            if (!inner.IsCompleted)
            {
                throw new InvalidOperationException("The write has not completed: await the ValueTask instead of reading its result.");
            }

            WriteForwarder?[] pool = _pool;
            _inner = default;
            _continuation = null;
            _state = null;
            _executionContext = null;
            _scheduling = null;
            _version++; // the old token is stale from here on
            try
            {
                inner.GetAwaiter().GetResult(); // on this thread: the buffer's pooled wait goes back to this thread's cache
            }
            finally
            {
                for (int i = 0; i < pool.Length; i++)
                {
                    if (Volatile.Read(ref pool[i]) is null && Interlocked.CompareExchange(ref pool[i], this, null) is null)
                    {
                        break;
                    }
                }
            }
        }

        private void Validate(short token)
        {
            if (token != _version)
            {
                throw new InvalidOperationException("The ValueTask was already consumed: a ValueTask can be awaited once.");
            }
        }

        private void InvokeContinuation()
        {
            switch (_scheduling)
            {
                case SynchronizationContext context:
                    context.Post(static s => ((WriteForwarder)s!).RunInContext(), this);
                    break;
                case TaskScheduler scheduler:
                    Task.Factory.StartNew(static s => ((WriteForwarder)s!).RunInContext(), this, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler);
                    break;
                default:
                    RunInContext();
                    break;
            }
        }

        private void RunInContext()
        {
            if (_executionContext is { } flow)
            {
                ExecutionContext.Run(flow, static s => ((WriteForwarder)s!).RunContinuation(), this);
            }
            else
            {
                RunContinuation();
            }
        }

        private void RunContinuation()
        {
            Action<object?>? continuation = _continuation;
            object? state = _state;
            continuation?.Invoke(state);
        }
    }
}
