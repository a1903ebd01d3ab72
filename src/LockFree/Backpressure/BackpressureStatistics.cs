namespace LockFree;

/// <summary>
/// A snapshot of a buffer's accounting. The invariant
/// <c>Enqueued = Dequeued + Evicted + Remaining</c> holds in every quiescent state; dropped-incoming and
/// rejected writes never entered the buffer, so they are counted beside it, not inside it.
/// </summary>
/// <param name="Enqueued">Items that entered the buffer (accepted and evicted-oldest writes).</param>
/// <param name="Dequeued">Items read.</param>
/// <param name="DroppedIncoming">Writes discarded by <see cref="OverflowPolicy.DropIncoming"/>.</param>
/// <param name="Evicted">Items evicted by <see cref="OverflowPolicy.DropOldest"/>.</param>
/// <param name="Rejected">Writes rejected (full or timed out).</param>
/// <param name="Remaining">Items in the buffer at the snapshot (approximate while writers and readers run).</param>
public readonly record struct BackpressureStatistics(
    long Enqueued, long Dequeued, long DroppedIncoming, long Evicted, long Rejected, int Remaining);
