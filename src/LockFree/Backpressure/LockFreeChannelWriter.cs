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

/// <summary>
/// The writer of a <see cref="LockFreeBoundedChannel{T}"/>. Not sealed: on the SPSC engine the channel uses
/// <see cref="SpscLockFreeChannelWriter{T}"/>, which overrides <see cref="TryWrite"/> alone.
/// </summary>
internal class LockFreeChannelWriter<T>(BackpressureBuffer<T> buffer) : ChannelWriter<T>
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
    /// <see cref="ChannelWriter{T}.WriteAsync"/>. Its status is the buffer's wait's. A caller that awaits it registers
    /// its continuation on a <see cref="ManualResetValueTaskSourceCore{TResult}"/> (which captures and honours the
    /// caller's contexts) and the forwarder registers, without context, on the wait, whose completion completes the core;
    /// a caller that polls registers nothing. The result is taken from the wait on the thread that takes this one's, so
    /// the wait's pooled box goes back to that thread's cache. Pooled per writer, back in the pool once its result is
    /// taken: a steady stream of parked writes allocates nothing.
    /// </summary>
    private sealed class WriteForwarder : IValueTaskSource
    {
        /// <summary>Forwarders kept per writer (each slot taken and returned with an exchange).</summary>
        internal const int PoolSize = 8;

        private readonly Action _innerCompleted;
        private WriteForwarder?[] _pool = null!;
        private ValueTask<WriteResult> _inner;
        private ManualResetValueTaskSourceCore<bool> _core; // mutable struct: never copy. Completes (its value unused) when _inner does

        private WriteForwarder()
        {
            _innerCompleted = () => _core.SetResult(true); // one delegate per pooled instance, not per write
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
            return new ValueTask(forwarder, forwarder._core.Version);
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
            _core.OnCompleted(continuation, state, token, flags); // validates the token; captures the contexts the flags ask for
            _inner.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_innerCompleted);
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
            _core.Reset(); // the old token is stale from here on
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
            if (token != _core.Version)
            {
                throw new InvalidOperationException("The ValueTask was already consumed: a ValueTask can be awaited once.");
            }
        }
    }
}

/// <summary>
/// The writer of a channel on the SPSC engine (<see cref="BackpressureBuffer{T}.HasSpscFastPath"/>): its
/// <see cref="TryWrite"/> is the ring's fast path and no engine test. The general writer's method inlines the write of
/// every engine, so its prologue saves the registers the general path needs on every call, and its result goes through
/// a <see cref="WriteResult"/>; here nothing outlives a call. Everything else is the general writer's.
/// </summary>
internal sealed class SpscLockFreeChannelWriter<T>(BackpressureBuffer<T> buffer) : LockFreeChannelWriter<T>(buffer)
{
    private readonly BackpressureBuffer<T> _buffer = buffer;

    /// <inheritdoc/>
    public override bool TryWrite(T item) => _buffer.TryWriteSpscForChannel(item);
}
