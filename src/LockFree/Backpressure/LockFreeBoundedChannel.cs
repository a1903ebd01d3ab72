using System.Threading.Channels;

#if LOCKFREE_COMPOSED_TESTS
using LockFree.Backpressure;

namespace LockFree.Tests.Concurrency.Composed;
#else
namespace LockFree.Backpressure;
#endif

// Design: a Channel<T> whose reader and writer are thin adapters over one BackpressureBuffer<T>. The buffer
// owns every piece of state (queue engine, waiters, completion); the adapters only translate its results
// into the ChannelReader/ChannelWriter contract (bool for Try*, ChannelClosedException after completion).
// Progress and thread roles are the buffer's.

/// <summary>The channel <see cref="LockFreeChannel"/> creates: a reader and a writer over one buffer.</summary>
internal sealed class LockFreeBoundedChannel<T> : Channel<T>
{
    public LockFreeBoundedChannel(BackpressureBuffer<T> buffer)
    {
        // The SPSC engine gets a reader and a writer whose Try methods skip the engine test (session 12: see
        // SpscLockFreeChannelWriter); the other engines share the general ones.
        if (buffer.HasSpscFastPath)
        {
            Reader = new SpscLockFreeChannelReader<T>(buffer);
            Writer = new SpscLockFreeChannelWriter<T>(buffer);
        }
        else
        {
            Reader = new LockFreeChannelReader<T>(buffer);
            Writer = new LockFreeChannelWriter<T>(buffer);
        }
    }
}

/// <summary>The exceptions the channel adapters raise, shaped as the BCL channels shape them.</summary>
internal static class ChannelErrors
{
    /// <summary>A write refused because the channel is full and its FullMode is Reject (the item stays with the caller).</summary>
    public static InvalidOperationException FullUnderReject() =>
        new("The channel is full and its FullMode is Reject: the item was not written.");

    /// <summary>
    /// The failure of an operation on a closed channel: a <see cref="ChannelClosedException"/> with the
    /// completion error as inner exception; a completion by cancellation stays a cancellation.
    /// </summary>
    public static Exception Closed(Exception? completionError) => completionError switch
    {
        null => new ChannelClosedException(),
        OperationCanceledException canceled => canceled,
        _ => new ChannelClosedException(completionError),
    };

    /// <summary>
    /// A read of a channel found completed and drained, as the BCL answers it: faulted with <see cref="Closed"/>, except
    /// that a completion by cancellation gives a canceled task (with the cancellation's token when it is cancelled).
    /// Before, such a read threw the completion's own <see cref="OperationCanceledException"/> (the BCL: a
    /// <see cref="TaskCanceledException"/>).
    /// </summary>
    public static ValueTask<T> ClosedRead<T>(Exception? completionError) => completionError is OperationCanceledException canceled
        ? ValueTask.FromCanceled<T>(canceled.CancellationToken.IsCancellationRequested ? canceled.CancellationToken : new CancellationToken(canceled: true))
        : ValueTask.FromException<T>(Closed(completionError));
}
