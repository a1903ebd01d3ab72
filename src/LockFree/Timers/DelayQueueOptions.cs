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
    /// outside every lock. An exception it throws never reaches that enqueuer, whose write has happened and answers
    /// its true outcome: it is caught, counted in <see cref="DelayQueue{T}.CallbackFailures"/> and handed to
    /// <see cref="DelayQueue{T}.CallbackFailed"/> (as <see cref="BackpressureBuffer{T}"/> does). Default none.
    /// </summary>
    public Action<T, DropReason>? ItemDropped { get; init; }

    /// <summary>The name the queue's metrics are tagged with (<c>lockfree.queue.name</c>). Default none: no metrics.</summary>
    public string? Name { get; init; }

    /// <summary>The clock for due times and wake-ups. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// When set, the wake-up of readers waiting in <see cref="DelayQueue{T}.DequeueAsync"/> for a pending item is a
    /// timer on this wheel (its driver must run, or its owner must call <see cref="HierarchicalTimerWheel.Advance"/>)
    /// instead of a <see cref="TimeProvider"/> timer: one wheel thread serves many queues, and a waiting reader is
    /// woken at most one wheel tick after its item is due. The wheel must read the same clock
    /// (<see cref="HierarchicalTimerWheel.TimeProvider"/> is <see cref="TimeProvider"/>, else the constructor throws
    /// <see cref="ArgumentException"/>), and should outlive the queue; a wheel that refuses a timer (disposed or
    /// full) is replaced by a <see cref="TimeProvider"/> timer for that wake-up, and a wake-up pending when the wheel
    /// is disposed moves to a <see cref="TimeProvider"/> timer at the same due time. Default null.
    /// </summary>
    public HierarchicalTimerWheel? TimerWheel { get; init; }
}
