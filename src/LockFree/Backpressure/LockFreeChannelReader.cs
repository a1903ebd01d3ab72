using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace LockFree.Backpressure;

// Design: forwards to BackpressureBuffer<T>, whose TryRead, WaitToReadAsync (false when completed and drained,
// faulted with the completion error) and Completion already match the ChannelReader<T> contract. Only ReadAsync
// differs: the buffer throws InvalidOperationException when completed and drained, a channel throws
// ChannelClosedException with the completion error inside, so ReadAsync waits through WaitToReadAsync itself.
// CanPeek stays false: the multi-consumer engines have no peek, and a peek that is right only for some engines
// would make CanPeek depend on the options.

/// <summary>The reader of a <see cref="LockFreeBoundedChannel{T}"/>.</summary>
internal sealed class LockFreeChannelReader<T>(BackpressureBuffer<T> buffer) : ChannelReader<T>
{
    /// <inheritdoc/>
    public override Task Completion => buffer.Completion;

    /// <inheritdoc/>
    public override bool CanCount => true;

    /// <summary>The number of items in the channel: an approximate snapshot while writers and readers run.</summary>
    public override int Count => buffer.Count;

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

        return buffer.TryRead(out T? item) ? new ValueTask<T>(item) : ReadAsyncSlow(cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<T> ReadAsyncSlow(CancellationToken cancellationToken)
    {
        while (true)
        {
            bool more;
            try
            {
                more = await buffer.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception error) when (ReferenceEquals(error, buffer.CompletionError))
            {
                more = false; // completed with an error and drained: reported as closed below
            }

            if (!more)
            {
                throw ChannelErrors.Closed(buffer.CompletionError);
            }

            if (buffer.TryRead(out T? item))
            {
                return item;
            }
        }
    }
}
