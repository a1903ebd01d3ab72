namespace LockFree;

/// <summary>The outcome of a steal from a <see cref="WorkStealingDeque{T}"/> (see <see cref="Stealer{T}"/>).</summary>
public enum StealResult
{
    /// <summary>The deque was empty when the thief looked: nothing was taken.</summary>
    Empty = 0,

    /// <summary>The thief took at least one item.</summary>
    Success = 1,

    /// <summary>The thief lost a race (another thief, or the owner taking its last item, got there first): nothing was taken; try again.</summary>
    Retry = 2,
}
