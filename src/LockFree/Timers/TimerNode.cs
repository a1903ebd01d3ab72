namespace LockFree.Timers;

/// <summary>
/// One pooled timer: 48 bytes, stored by value in the engine's chunks of 1024 (no object per timer). Field
/// ownership is stated per field; the design comment of <see cref="TimerWheelEngine{TAtomics}"/> gives the protocol.
/// </summary>
internal struct TimerNode
{
    /// <summary>
    /// (generation &lt;&lt; 32) | status (<see cref="TimerNodeStatus"/>). Read by any thread (Cancel); changed by the
    /// scheduling thread while it owns a free node, then only by compare-and-swap (Cancel vs the driver) or by
    /// the driver once it owns the outcome.
    /// </summary>
    public long StateWord;

    /// <summary>
    /// Next node (index + 1, 0 = end) on whichever lock-free stack the node is on: the free list or the inbox.
    /// Always accessed with acquire/release, because a stale free-list popper may read it while its owner writes it.
    /// </summary>
    public long Link;

    /// <summary>Absolute due tick. Written by the scheduler before the inbox push; read by the driver after it.</summary>
    public long DueTick;

    /// <summary>
    /// The callback. Same publication as <see cref="DueTick"/>. Cleared by the driver when the node goes to the
    /// free list; kept when it goes back to the scheduling thread's lane (its next Schedule there usually passes the
    /// same delegate and skips the store). So a free node in a lane may keep its last delegate reachable.
    /// </summary>
    public Action<object?>? Callback;

    /// <summary>The callback's argument. Published as <see cref="DueTick"/>; cleared whenever the node is freed, so a free node's State is null.</summary>
    public object? State;

    /// <summary>Next node in its wheel slot or in a fire batch (index, -1 = end). Driver only (under the gate).</summary>
    public int Next;

    /// <summary>Previous node in its wheel slot (index, -1 = slot head). Driver only.</summary>
    public int Prev;
}

/// <summary>The low 32 bits of <see cref="TimerNode.StateWord"/>.</summary>
internal static class TimerNodeStatus
{
    /// <summary>On the free list (or being initialised by the thread that popped it).</summary>
    public const int Free = 0;

    /// <summary>Scheduled, on the inbox, not yet taken in by the driver.</summary>
    public const int Queued = 1;

    /// <summary>Linked into a wheel slot.</summary>
    public const int Linked = 2;

    /// <summary>Cancelled while Linked; pushed on the inbox so the driver unlinks and frees it.</summary>
    public const int CancelQueued = 3;

    /// <summary>Cancelled and out of every slot (cancelled while Queued, or unlinked by a sweep); still on the inbox, freed when drained.</summary>
    public const int Cancelled = 4;

    /// <summary>Claimed by the driver for firing: Cancel answers false from here on.</summary>
    public const int Firing = 5;
}
