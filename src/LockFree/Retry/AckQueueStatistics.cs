namespace LockFree;

/// <summary>
/// A snapshot of an <see cref="AckQueue{T}"/>'s accounting. <c>Enqueued = Acked + DeadLettered + Count</c> when
/// quiescent; nacks and visibility timeouts move a message back without changing the count.
/// </summary>
/// <param name="Enqueued">Messages accepted.</param>
/// <param name="Acked">Deliveries acknowledged (messages done).</param>
/// <param name="Nacked">Deliveries given back by the consumer.</param>
/// <param name="Expired">Deliveries that reached the visibility timeout unacknowledged.</param>
/// <param name="DeadLettered">Messages moved to the dead letters.</param>
/// <param name="DroppedIncoming">Enqueues discarded by <see cref="OverflowPolicy.DropIncoming"/>.</param>
/// <param name="Rejected">Enqueues rejected by <see cref="OverflowPolicy.Reject"/>.</param>
/// <param name="Count">Messages held: ready, delayed and in flight.</param>
/// <param name="InFlight">Messages received and not yet ended.</param>
public readonly record struct AckQueueStatistics(
    long Enqueued, long Acked, long Nacked, long Expired, long DeadLettered, long DroppedIncoming, long Rejected, int Count, int InFlight);
