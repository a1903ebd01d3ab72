using System.Diagnostics;

namespace LockFree;

/// <summary>
/// Identifies one timer scheduled on a <see cref="HierarchicalTimerWheel"/>: a node index, the node's
/// generation at scheduling time and the issuing wheel's identity, 12 bytes, no allocation.
/// </summary>
/// <remarks>
/// A handle stays valid until its timer fires or is cancelled; after that the node is reused with a new
/// generation, so a stale handle never cancels a newer timer (<see cref="HierarchicalTimerWheel.Cancel"/>
/// returns false). The generation is 32 bits: a handle kept while its node is reused 2^32 times could alias,
/// which at one reuse per microsecond takes over an hour of that one node's churn. A handle belongs to the
/// wheel that issued it: <see cref="HierarchicalTimerWheel.Cancel"/> on another wheel throws
/// <see cref="ArgumentException"/> (wheel identities are a process-wide 32-bit counter, so only a process that
/// creates 2^32 wheels could see two share one). <c>default</c> is never a live timer.
/// </remarks>
[DebuggerDisplay("Timer #{Index} gen {Generation} on wheel {WheelId}")]
public readonly struct TimerHandle : IEquatable<TimerHandle>
{
    internal TimerHandle(int index, uint generation, int wheelId)
    {
        Index = index;
        Generation = generation;
        WheelId = wheelId;
    }

    /// <summary>Node index in the wheel's pool.</summary>
    internal int Index { get; }

    /// <summary>The node's generation when the timer was scheduled; never 0 for a real timer.</summary>
    internal uint Generation { get; }

    /// <summary>The issuing wheel's identity (never 0 for a real timer).</summary>
    internal int WheelId { get; }

    /// <summary>False for <c>default(TimerHandle)</c>, true for a handle returned by Schedule (live or not).</summary>
    public bool IsAllocated => Generation != 0;

    /// <summary>Equal when both name the same wheel, node and generation.</summary>
    public static bool operator ==(TimerHandle left, TimerHandle right) => left.Equals(right);

    /// <summary>Not equal when wheel, node or generation differ.</summary>
    public static bool operator !=(TimerHandle left, TimerHandle right) => !left.Equals(right);

    /// <inheritdoc/>
    public bool Equals(TimerHandle other) => Index == other.Index && Generation == other.Generation && WheelId == other.WheelId;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is TimerHandle other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Index, Generation, WheelId);

    /// <inheritdoc/>
    public override string ToString() => $"Timer #{Index} gen {Generation} on wheel {WheelId}";
}
