namespace LockFree;

/// <summary>
/// Settings of a channel made by <see cref="LockFreeChannel.CreateBounded{T}(LockFreeChannelOptions)"/>: the
/// lock-free counterpart of <see cref="System.Threading.Channels.BoundedChannelOptions"/>. Every value is
/// validated by the factory.
/// </summary>
public sealed class LockFreeChannelOptions
{
    /// <summary>
    /// The minimum number of items the channel holds, in [1, 2^30]. Rounded up to a power of two (the ring the
    /// channel runs on needs one): a channel asked for 100 items holds 128 before <see cref="FullMode"/> applies.
    /// Required: the default 0 is rejected with <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    public int Capacity { get; init; }

    /// <summary>
    /// What a write does when the channel is full. Default <see cref="OverflowPolicy.Wait"/>.
    /// <see cref="OverflowPolicy.Wait"/>, <see cref="OverflowPolicy.DropIncoming"/> and
    /// <see cref="OverflowPolicy.DropOldest"/> behave as the BCL's <c>BoundedChannelFullMode</c>
    /// <c>Wait</c>, <c>DropWrite</c> and <c>DropOldest</c>. <see cref="OverflowPolicy.Reject"/> has no BCL twin:
    /// <c>TryWrite</c> answers false on a full channel, <c>WriteAsync</c> fails at once with
    /// <see cref="InvalidOperationException"/> instead of waiting, and <c>WaitToWriteAsync</c> waits for room.
    /// The BCL's <c>DropNewest</c> (evict the most recently written item) has no twin: the rings take items only at the
    /// head, so use <see cref="OverflowPolicy.DropIncoming"/> or <see cref="OverflowPolicy.DropOldest"/> instead.
    /// </summary>
    public OverflowPolicy FullMode { get; init; } = OverflowPolicy.Wait;

    /// <summary>
    /// True when at most one thread writes at a time: the channel then uses a single-producer engine. Default false.
    /// Breaking the promise corrupts the channel. A <c>WriteAsync</c> that has not completed yet counts as that writer
    /// (when room frees up it writes from a thread-pool thread), so do not <c>TryWrite</c> or start another
    /// <c>WriteAsync</c> until it completes: the BCL's contract too ("at most one write operation at a time"), which its
    /// bounded channel happens to tolerate. Completing the writer (<c>TryComplete</c>) is not a write: any thread
    /// may complete it, also while the one writer is writing (as with the BCL channels); every write that returned true
    /// is still read before the reader's completion.
    /// </summary>
    public bool SingleWriter { get; init; }

    /// <summary>
    /// True when at most one thread reads at a time: the channel then uses a single-consumer engine (unless
    /// <see cref="FullMode"/> is <see cref="OverflowPolicy.DropOldest"/>, where writers evict too). Default false.
    /// Breaking the promise corrupts the channel. A <c>ReadAsync</c> that has not completed yet counts as that reader
    /// (when an item arrives it reads from a thread-pool thread), so do not <c>TryRead</c>, <c>TryPeek</c> or start another
    /// <c>ReadAsync</c> until it completes (a pending <c>WaitToReadAsync</c> takes nothing and does not count). Only such a single-consumer channel can peek
    /// (<c>ChannelReader.CanPeek</c> is true exactly when this is true and FullMode is not DropOldest).
    /// </summary>
    public bool SingleReader { get; init; }

    /// <summary>The name the channel's metrics are tagged with (<c>lockfree.queue.name</c>). Default none: no metrics.</summary>
    public string? Name { get; init; }

    /// <summary>The clock for the buffer's drain-rate estimate and timed waits. Default <see cref="TimeProvider.System"/>; must not be null.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
