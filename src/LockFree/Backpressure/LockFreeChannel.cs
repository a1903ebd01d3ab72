using System.Threading.Channels;
using LockFree.Backpressure;

#if LOCKFREE_COMPOSED_TESTS
namespace LockFree.Tests.Concurrency.Composed;
#else
namespace LockFree;
#endif

/// <summary>
/// Creates <see cref="Channel{T}"/> instances that run on a <see cref="BackpressureBuffer{T}"/>: a drop-in for
/// <see cref="Channel.CreateBounded{T}(BoundedChannelOptions)"/> on the lock-free queues, with the same observable
/// reader and writer contract (see <see cref="LockFreeChannelOptions.FullMode"/> for the one policy without a
/// BCL twin).
/// </summary>
public static class LockFreeChannel
{
    /// <summary>Creates a bounded channel.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="options">The channel's settings.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or its <see cref="LockFreeChannelOptions.TimeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The capacity or the full mode is out of range.</exception>
    public static Channel<T> CreateBounded<T>(LockFreeChannelOptions options) => CreateBounded<T>(options, itemDropped: null);

    /// <summary>Creates a bounded channel that reports every item it drops.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="options">The channel's settings.</param>
    /// <param name="itemDropped">
    /// Called with every item discarded under <see cref="OverflowPolicy.DropIncoming"/> (the incoming one) or
    /// evicted under <see cref="OverflowPolicy.DropOldest"/> (the oldest one), on the writing thread, after the
    /// channel is consistent again. An exception it throws never reaches the writer (whose write succeeded: the drop
    /// stands); it is caught and counted (see <see cref="BackpressureBuffer{T}.CallbackFailed"/>). Null: no report.
    /// </param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or its <see cref="LockFreeChannelOptions.TimeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The capacity or the full mode is out of range.</exception>
    public static Channel<T> CreateBounded<T>(LockFreeChannelOptions options, Action<T, DropReason>? itemDropped)
    {
        ArgumentNullException.ThrowIfNull(options);
        var buffer = new BackpressureBuffer<T>(new BackpressureBufferOptions<T>
        {
            Capacity = options.Capacity,
            FullMode = options.FullMode,
            SingleWriter = options.SingleWriter,
            SingleReader = options.SingleReader,
            ItemDropped = itemDropped,
            Name = options.Name,
            TimeProvider = options.TimeProvider,
        });
        return new LockFreeBoundedChannel<T>(buffer); // the buffer validates capacity, full mode and clock
    }
}
