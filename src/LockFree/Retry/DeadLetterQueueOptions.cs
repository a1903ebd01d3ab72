namespace LockFree;

/// <summary>Settings of a <see cref="DeadLetterQueue{T}"/>. Every value is validated by the queue's constructor.</summary>
/// <typeparam name="T">The message type.</typeparam>
public sealed class DeadLetterQueueOptions<T>
{
    /// <summary>The most dead letters held, in [1, 2^30]. Exact. Required: the default 0 is rejected.</summary>
    public int Capacity { get; init; }

    /// <summary>
    /// What an add does when the queue is full. Default <see cref="OverflowPolicy.DropOldest"/>: keep the most recent
    /// failures, count and report the evicted ones. <see cref="OverflowPolicy.Wait"/> is refused: dead-lettering
    /// runs on a failure path that must never block on an operator's backlog.
    /// </summary>
    public OverflowPolicy FullMode { get; init; } = OverflowPolicy.DropOldest;

    /// <summary>Called, outside the queue's lock, with every dead letter discarded or evicted by the overflow policy. Default none.</summary>
    public Action<DeadLetter<T>, DropReason>? ItemDropped { get; init; }

    /// <summary>The name the metrics are tagged with (<c>lockfree.queue.name</c>). Default none: no metrics.</summary>
    public string? Name { get; init; }

    /// <summary>The clock for the age of dead letters. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
