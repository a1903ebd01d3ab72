namespace LockFree.Queues;

/// <summary>The queues' running positions: how many items ever entered and left (for statistics, at no hot-path cost).</summary>
internal interface IQueuePositions
{
    /// <summary>Items ever enqueued (the tail position; with many producers it counts claims).</summary>
    long EnqueuedPositions { get; }

    /// <summary>Items ever dequeued (the head position; with many consumers it counts claims).</summary>
    long DequeuedPositions { get; }
}
