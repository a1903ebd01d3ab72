using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;

#if LOCKFREE_COMPOSED_TESTS
using LockFree.Backpressure;

namespace LockFree.Tests.Concurrency.Composed;
#else
namespace LockFree.Backpressure;
#endif

// Design: forwards to BackpressureBuffer<T>, whose TryRead, WaitToReadAsync (false when completed and drained,
// faulted with the completion error) and Completion already match the ChannelReader<T> contract. Only ReadAsync
// differs: the buffer throws InvalidOperationException when completed and drained, a channel throws
// ChannelClosedException with the completion error inside, so a parked ReadAsync is the buffer's own pooled read
// operation with the channel's exceptions (BackpressureBuffer.ReadAsyncForChannel): per-buffer pooled, it allocates
// nothing whatever thread takes the result. Before (session 12) an async method here awaited WaitToReadAsync, on
// PoolingAsyncValueTaskMethodBuilder, whose boxes are cached per thread (acceptance audit, gap A).
// CanPeek is true on the single-consumer engines only (SingleReader without DropOldest): there the one reader is
// the only remover, so the head it peeks cannot be taken under it. The multi-consumer engines have no peek.

/// <summary>
/// The reader of a <see cref="LockFreeBoundedChannel{T}"/>. Not sealed: on the SPSC engine the channel uses
/// <see cref="SpscLockFreeChannelReader{T}"/>, which overrides <see cref="TryRead"/> alone.
/// </summary>
internal class LockFreeChannelReader<T>(BackpressureBuffer<T> buffer) : ChannelReader<T>
{
    /// <inheritdoc/>
    public override Task Completion => buffer.Completion;

    /// <inheritdoc/>
    public override bool CanCount => true;

    /// <summary>The number of items in the channel: an approximate snapshot while writers and readers run.</summary>
    public override int Count => buffer.Count;

    /// <summary>True when the channel was created with SingleReader and a FullMode other than DropOldest.</summary>
    public override bool CanPeek => buffer.CanPeek;

    /// <summary>Reads the oldest item without removing it; false when empty or when <see cref="CanPeek"/> is false.</summary>
    public override bool TryPeek([MaybeNullWhen(false)] out T item) => buffer.TryPeek(out item);

    /// <inheritdoc/>
    public override bool TryRead([MaybeNullWhen(false)] out T item) => buffer.TryRead(out item);

    /// <inheritdoc/>
    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) =>
        buffer.WaitToReadAsync(cancellationToken);

    /// <summary>
    /// Reads the oldest item, waiting while the channel is empty; throws <see cref="ChannelClosedException"/>
    /// (inner: the completion error) once the channel is completed and drained.
    /// </summary>
    public override ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        if (buffer.TryRead(out T? item))
        {
            return new ValueTask<T>(item);
        }

        // Completed and drained: fail at once, shaped as the BCL's (a completion by cancellation gives a canceled task).
        return buffer.IsFinished ? ChannelErrors.ClosedRead<T>(buffer.CompletionError) : buffer.ReadAsyncForChannel(cancellationToken);
    }
}

/// <summary>
/// The reader of a channel on the SPSC engine (<see cref="BackpressureBuffer{T}.HasSpscFastPath"/>): its
/// <see cref="TryRead"/> is the ring's dequeue and the after-read question, with no engine test (see
/// <see cref="SpscLockFreeChannelWriter{T}"/>). Everything else is the general reader's.
/// </summary>
internal sealed class SpscLockFreeChannelReader<T>(BackpressureBuffer<T> buffer) : LockFreeChannelReader<T>(buffer)
{
    private readonly BackpressureBuffer<T> _buffer = buffer;

    /// <inheritdoc/>
    public override bool TryRead([MaybeNullWhen(false)] out T item) => _buffer.TryReadSpscForChannel(out item);
}
