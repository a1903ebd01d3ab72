using System.Threading.Channels;
using System.Threading.Tasks.Sources;

#if LOCKFREE_COMPOSED_TESTS
using LockFree.Backpressure;

namespace LockFree.Tests.Concurrency.Composed;
#else
namespace LockFree.Backpressure;
#endif

// Design: translates BackpressureBuffer<T> write results into the ChannelWriter<T> contract.
// Accepted, EvictedOldest and DroppedIncoming are successes (as the BCL's DropOldest/DropWrite modes succeed);
// Completed becomes false (TryWrite/WaitToWriteAsync) or ChannelClosedException (WriteAsync); Rejected happens
// only under OverflowPolicy.Reject (or TryWrite under Wait) and becomes false or InvalidOperationException.
// Allocation-free when the buffer's operation completes synchronously, and in steady state when it waits: a parked
// WriteAsync hands its caller the buffer's own pooled wait (BackpressureBuffer.WriteAsyncForChannel, which throws the
// channel's exceptions itself) through a pooled forwarding source that presents it as a non-generic ValueTask, and a
// parked WaitToWriteAsync is the buffer's pooled operation (WaitToWriteAsyncForChannel). Before (acceptance audit,
// 2026-11-23), an async method here awaited the buffer's write: the box was consumed on the pool thread that ended the
// wait, and a caller taking the result on another thread (polling, blocking) rented a new one, 168 B per parked write
// (BackpressureAsyncAllocationTests). Since session 12 (gap A) the buffer's waits are pooled per buffer, not per thread
// (PooledOperation), so whichever thread takes a result, the objects go back to the buffer's and this writer's pools.

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
    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) =>
        buffer.WaitToWriteAsyncForChannel(cancellationToken);

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

    private ValueTask ToValueTask(WriteResult result) => result.Outcome switch
    {
        WriteOutcome.Completed => ValueTask.FromException(ChannelErrors.Closed(buffer.CompletionError)),
        WriteOutcome.Rejected => ValueTask.FromException(ChannelErrors.FullUnderReject()),
        _ => default,
    };

    /// <summary>Pooled forwarders of this writer's parked writes.</summary>
    private readonly OperationPool<WriteForwarder> _forwarders = new();

    /// <summary>
    /// Presents a parked <see cref="BackpressureBuffer{T}.WriteAsyncForChannel"/> (a <see cref="ValueTask{WriteResult}"/>
    /// whose failures are already the channel's exceptions) as the non-generic <see cref="ValueTask"/> of
    /// <see cref="ChannelWriter{T}.WriteAsync"/>. Its status is the buffer's wait's. A caller that awaits it registers
    /// its continuation on a <see cref="ManualResetValueTaskSourceCore{TResult}"/> (which captures and honours the
    /// caller's contexts) and the forwarder registers, without context, on the wait, whose completion completes the core;
    /// a caller that polls registers nothing. The result is taken from the wait on the thread that takes this one's, which
    /// returns the wait's pooled operation to the buffer. Pooled per writer (<see cref="OperationPool{TItem}"/>), back in
    /// the pool once its result is taken: a steady stream of parked writes allocates nothing.
    /// </summary>
    private sealed class WriteForwarder : IValueTaskSource
    {
        private readonly Action _innerCompleted;
        private OperationPool<WriteForwarder> _pool = null!;
        private ValueTask<WriteResult> _inner;
        private ManualResetValueTaskSourceCore<bool> _core; // mutable struct: never copy. Completes (its value unused) when _inner does

        private WriteForwarder()
        {
            _innerCompleted = () => _core.SetResult(true); // one delegate per pooled instance, not per write
        }

        public static ValueTask Forward(OperationPool<WriteForwarder> pool, ValueTask<WriteResult> inner)
        {
            WriteForwarder forwarder = pool.Rent() ?? new WriteForwarder();
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

            OperationPool<WriteForwarder> pool = _pool;
            _inner = default;
            _core.Reset(); // the old token is stale from here on
            try
            {
                inner.GetAwaiter().GetResult(); // on this thread: the buffer's pooled wait goes back to this thread's cache
            }
            finally
            {
                pool.Return(this);
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
