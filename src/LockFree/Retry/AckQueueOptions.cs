namespace LockFree;

/// <summary>Settings of an <see cref="AckQueue{T}"/>. Every value is validated by the queue's constructor.</summary>
/// <typeparam name="T">The message type.</typeparam>
public sealed class AckQueueOptions<T>
{
    /// <summary>The most messages held, ready, delayed and in flight together, in [1, 2^30]. Exact. Required: the default 0 is rejected.</summary>
    public int Capacity { get; init; }

    /// <summary>
    /// How long a received message stays invisible while its consumer works on it; unacknowledged by then, it becomes
    /// visible again with its delivery count raised (at-least-once). Default 30 s. In (0, <see cref="DelayQueue{T}.MaxDelay"/>].
    /// </summary>
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// What an enqueue does when the queue is full: <see cref="OverflowPolicy.Reject"/> (the default) or
    /// <see cref="OverflowPolicy.DropIncoming"/>. The others are refused: a message that was received cannot be
    /// evicted, and producers wait on their own terms (retry with the returned hint).
    /// </summary>
    public OverflowPolicy FullMode { get; init; } = OverflowPolicy.Reject;

    /// <summary>
    /// Deliveries after which a message that is nacked or times out goes to <see cref="DeadLetters"/> instead of
    /// back to the queue. 0 (the default) means no limit. Requires <see cref="DeadLetters"/> when non-zero.
    /// </summary>
    public int MaxDeliveries { get; init; }

    /// <summary>Where dead-lettered messages go (<see cref="AckQueue{T}.DeadLetter"/>, <see cref="MaxDeliveries"/>). Default none.</summary>
    public DeadLetterQueue<T>? DeadLetters { get; init; }

    /// <summary>The source name dead letters carry. Default "ack-queue".</summary>
    public string Name { get; init; } = "ack-queue";

    /// <summary>The clock for delays and visibility timeouts. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// When set, the visibility timeouts and the inner delay queue's wake-ups are timers on this wheel (its driver
    /// must run, or its owner must call <see cref="HierarchicalTimerWheel.Advance"/>) instead of
    /// <see cref="TimeProvider"/> timers: one wheel thread serves many queues. Expiry then runs on the wheel's
    /// driving thread and is at most one wheel tick late. The wheel must read the same clock
    /// (<see cref="HierarchicalTimerWheel.TimeProvider"/> is <see cref="TimeProvider"/>, else the constructor throws
    /// <see cref="ArgumentException"/>), and should outlive the queue; a wheel that refuses a timer (disposed or
    /// full) is replaced by a <see cref="TimeProvider"/> timer for that wake-up, and a wake-up pending when the wheel
    /// is disposed moves to a <see cref="TimeProvider"/> timer at the same due time. Default null.
    /// </summary>
    public HierarchicalTimerWheel? TimerWheel { get; init; }
}
