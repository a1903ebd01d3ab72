namespace LockFree;

/// <summary>Settings of a <see cref="BackpressureBuffer{T}"/>. Every value is validated by the buffer's constructor.</summary>
/// <typeparam name="T">The item type.</typeparam>
public sealed class BackpressureBufferOptions<T>
{
    /// <summary>
    /// The minimum number of items the buffer holds, in [1, 2^30]; rounded up to a power of two (reported by
    /// <see cref="BackpressureBuffer{T}.Capacity"/>). Required: the default 0 is rejected.
    /// </summary>
    public int Capacity { get; init; }

    /// <summary>What a write does when the buffer is full. Default <see cref="OverflowPolicy.Wait"/>.</summary>
    public OverflowPolicy FullMode { get; init; } = OverflowPolicy.Wait;

    /// <summary>
    /// True when at most one thread writes at a time: the buffer then uses a single-producer engine with no
    /// read-modify-write instruction on the write path. Default false. Completion is not a write: any thread may call
    /// <c>TryComplete</c>, <c>Complete</c> or <c>Dispose</c>, also while the one writer is writing; every write that
    /// answered a success is still read before <c>Completion</c> completes (the writer pays two plain stores per write
    /// for it: an in-write mark the completer reads after its process-wide barrier).
    /// </summary>
    public bool SingleWriter { get; init; }

    /// <summary>
    /// True when at most one thread reads at a time. Default false. Ignored for eviction: under
    /// <see cref="OverflowPolicy.DropOldest"/> writers also remove items, so the buffer always uses a
    /// multi-consumer engine.
    /// </summary>
    public bool SingleReader { get; init; }

    /// <summary>
    /// Called with every item discarded by <see cref="OverflowPolicy.DropIncoming"/> or evicted by
    /// <see cref="OverflowPolicy.DropOldest"/>, on the writing thread, after the buffer is consistent again
    /// (never while a slot is reserved). An exception it throws never reaches the writer, whose write answers its
    /// true outcome: it is caught, counted in <see cref="BackpressureBuffer{T}.CallbackFailures"/> and handed to
    /// <see cref="BackpressureBuffer{T}.CallbackFailed"/>. Default none.
    /// </summary>
    public Action<T, DropReason>? ItemDropped { get; init; }

    /// <summary>
    /// Depth at or above which the buffer reports <see cref="BackpressureBuffer{T}.IsPaused"/> (a signal to
    /// slow down before the buffer is full). 0 (the default) turns watermarks off. Must not exceed the
    /// rounded capacity and must be greater than <see cref="LowWatermark"/>.
    /// </summary>
    public int HighWatermark { get; init; }

    /// <summary>Depth at or below which a paused buffer resumes. Default 0. Used only with <see cref="HighWatermark"/>.</summary>
    public int LowWatermark { get; init; }

    /// <summary>The name the buffer's metrics are tagged with (<c>lockfree.queue.name</c>). Default none: no metrics.</summary>
    public string? Name { get; init; }

    /// <summary>
    /// Stamp every item with <see cref="TimeProvider"/>'s timestamp as it enters, so that
    /// <see cref="BackpressureBuffer{T}.OldestItemAge"/> and the <c>lockfree.queue.oldest_item_age</c> gauge can say
    /// how long the head item has waited. Costs one clock read per write (about 26 ns with the system clock) and
    /// 8 bytes per slot, and turns batch reads into item-by-item reads, so it is off by default.
    /// </summary>
    public bool TrackItemAge { get; init; }

    /// <summary>The clock for timeouts, the drain-rate estimate and item stamps. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
