namespace LockFree;

/// <summary>Settings of a <see cref="DelayQueue{T}"/>. Every value is validated by the queue's constructor.</summary>
/// <typeparam name="T">The item type.</typeparam>
public sealed class DelayQueueOptions<T>
{
    /// <summary>
    /// What an enqueue does when the queue holds <see cref="DelayQueue{T}.Capacity"/> items. Default
    /// <see cref="OverflowPolicy.Wait"/>: <see cref="DelayQueue{T}.EnqueueAsync"/> waits for room and
    /// <see cref="DelayQueue{T}.TryEnqueue(T, TimeSpan)"/> answers rejected. Under <see cref="OverflowPolicy.DropOldest"/>
    /// the item evicted is the queue's head: the one due earliest (ties: the earliest enqueued), the item a reader
    /// would take next, as in <see cref="BackpressureBuffer{T}"/>.
    /// </summary>
    public OverflowPolicy FullMode { get; init; } = OverflowPolicy.Wait;

    /// <summary>
    /// Called with every item discarded by <see cref="OverflowPolicy.DropIncoming"/> or evicted by
    /// <see cref="OverflowPolicy.DropOldest"/>, on the enqueuing thread, after the queue is consistent again and
    /// outside every lock. An exception it throws propagates to that enqueuer; the write itself has happened
    /// and is counted. Default none.
    /// </summary>
    public Action<T, DropReason>? ItemDropped { get; init; }

    /// <summary>The name the queue's metrics are tagged with (<c>lockfree.queue.name</c>). Default none: no metrics.</summary>
    public string? Name { get; init; }

    /// <summary>The clock for due times and wake-ups. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
