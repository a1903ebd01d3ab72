using System.Diagnostics;

namespace LockFree;

/// <summary>
/// Identifies one timer scheduled on a <see cref="HierarchicalTimerWheel"/>: a node index and the node's
/// generation at scheduling time, 8 bytes, no allocation.
/// </summary>
/// <remarks>
/// A handle stays valid until its timer fires or is cancelled; after that the node is reused with a new
/// generation, so a stale handle never cancels a newer timer (<see cref="HierarchicalTimerWheel.Cancel"/>
/// returns false). The generation is 32 bits: a handle kept while its node is reused 2^32 times could alias,
/// which at one reuse per microsecond takes over an hour of that one node's churn. A handle belongs to the
/// wheel that issued it; passing it to another wheel is undefined. <c>default</c> is never a live timer.
/// </remarks>
[DebuggerDisplay("Timer #{Index} gen {Generation}")]
public readonly struct TimerHandle : IEquatable<TimerHandle>
{
    internal TimerHandle(int index, uint generation)
    {
        Index = index;
        Generation = generation;
    }

    /// <summary>Node index in the wheel's pool.</summary>
    internal int Index { get; }

    /// <summary>The node's generation when the timer was scheduled; never 0 for a real timer.</summary>
    internal uint Generation { get; }

    /// <summary>False for <c>default(TimerHandle)</c>, true for a handle returned by Schedule (live or not).</summary>
    public bool IsAllocated => Generation != 0;

    /// <summary>Equal when both name the same node and generation.</summary>
    public static bool operator ==(TimerHandle left, TimerHandle right) => left.Equals(right);

    /// <summary>Not equal when node or generation differ.</summary>
    public static bool operator !=(TimerHandle left, TimerHandle right) => !left.Equals(right);

    /// <inheritdoc/>
    public bool Equals(TimerHandle other) => Index == other.Index && Generation == other.Generation;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is TimerHandle other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Index, Generation);

    /// <inheritdoc/>
    public override string ToString() => $"Timer #{Index} gen {Generation}";
}
