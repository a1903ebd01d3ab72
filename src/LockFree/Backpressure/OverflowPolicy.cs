namespace LockFree;

/// <summary>What a bounded buffer does with a write when it is full.</summary>
/// <remarks>See <c>docs/backpressure.md</c> for the diagram and the choice guide.</remarks>
public enum OverflowPolicy
{
    /// <summary>
    /// The writer blocks (synchronous calls) or awaits (asynchronous calls) until there is room, its timeout
    /// passes or it is cancelled. Nothing is lost; a cancelled or timed-out write leaves no trace. A
    /// non-waiting call (<c>TryWrite</c>) on a full buffer answers <see cref="WriteOutcome.Rejected"/>.
    /// </summary>
    Wait,

    /// <summary>
    /// The write fails at once with <see cref="WriteOutcome.Rejected"/>, the reason and a retry hint; the item
    /// stays with the caller. The in-process equivalent of HTTP 429 with Retry-After.
    /// </summary>
    Reject,

    /// <summary>
    /// The write succeeds but the incoming item is discarded (<see cref="WriteOutcome.DroppedIncoming"/>),
    /// counted and handed to the drop callback.
    /// </summary>
    DropIncoming,

    /// <summary>
    /// The oldest queued item is evicted to make room (<see cref="WriteOutcome.EvictedOldest"/>), counted and
    /// handed to the drop callback; the incoming item is queued. Exactly one item is evicted, and only when the buffer is
    /// still full as the write takes effect (a read that made room first saves it: <see cref="WriteOutcome.Accepted"/>).
    /// </summary>
    DropOldest,
}
