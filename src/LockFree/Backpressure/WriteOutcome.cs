namespace LockFree;

/// <summary>What happened to one write: the writer can always tell.</summary>
public enum WriteOutcome
{
    /// <summary>The item is in the buffer.</summary>
    Accepted,

    /// <summary>The item was not taken and stays with the caller; see <see cref="WriteResult.Reason"/> and <see cref="WriteResult.RetryAfter"/>.</summary>
    Rejected,

    /// <summary>The call succeeded under <see cref="OverflowPolicy.DropIncoming"/>: the item was discarded, counted and reported.</summary>
    DroppedIncoming,

    /// <summary>The item is in the buffer; to make room the oldest item was evicted, counted and reported.</summary>
    EvictedOldest,

    /// <summary>The buffer was completed: the item was not taken and stays with the caller.</summary>
    Completed,
}

/// <summary>Why a write was <see cref="WriteOutcome.Rejected"/>.</summary>
public enum RejectReason
{
    /// <summary>Not rejected.</summary>
    None,

    /// <summary>The buffer was full.</summary>
    Full,

    /// <summary>The buffer stayed full until the write's timeout passed.</summary>
    TimedOut,
}

/// <summary>Which item a drop callback is given.</summary>
public enum DropReason
{
    /// <summary>The incoming item, discarded under <see cref="OverflowPolicy.DropIncoming"/>.</summary>
    Incoming,

    /// <summary>The oldest queued item, evicted under <see cref="OverflowPolicy.DropOldest"/>.</summary>
    Oldest,
}
