using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace LockFree.Backpressure;

// Design: translates BackpressureBuffer<T> write results into the ChannelWriter<T> contract.
// Accepted, EvictedOldest and DroppedIncoming are successes (as the BCL's DropOldest/DropWrite modes succeed);
// Completed becomes false (TryWrite/WaitToWriteAsync) or ChannelClosedException (WriteAsync); Rejected happens
// only under OverflowPolicy.Reject (or TryWrite under Wait) and becomes false or InvalidOperationException.
// Allocation-free when the buffer's operation completes synchronously.

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

        ValueTask<WriteResult> write = buffer.WriteAsync(item, cancellationToken);
        return write.IsCompletedSuccessfully ? ToValueTask(write.Result) : WriteAsyncSlow(write);
    }

    private ValueTask<bool> Completed() => buffer.CompletionError is { } error
        ? ValueTask.FromException<bool>(error)
        : new ValueTask<bool>(false);

    private ValueTask ToValueTask(WriteResult result) => result.Outcome switch
    {
        WriteOutcome.Completed => ValueTask.FromException(ChannelErrors.Closed(buffer.CompletionError)),
        WriteOutcome.Rejected => ValueTask.FromException(FullUnderReject()),
        _ => default,
    };

    private static InvalidOperationException FullUnderReject() =>
        new("The channel is full and its FullMode is Reject: the item was not written.");

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WaitToWriteAsyncSlow(ValueTask<bool> wait)
    {
        if (await wait.ConfigureAwait(false))
        {
            return true;
        }

        return buffer.CompletionError is { } error ? throw error : false;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteAsyncSlow(ValueTask<WriteResult> write)
    {
        WriteResult result = await write.ConfigureAwait(false);
        switch (result.Outcome)
        {
            case WriteOutcome.Completed:
                throw ChannelErrors.Closed(buffer.CompletionError);
            case WriteOutcome.Rejected:
                throw FullUnderReject();
        }
    }
}
