namespace LockFree;

/// <summary>Options of <see cref="AimdLimit"/>. Validated when the algorithm is created.</summary>
public sealed class AimdLimitOptions : AdaptiveLimitOptions
{
    /// <summary>Added to the limit after a healthy, busy window, at least 1. Default 1.</summary>
    public int Increase { get; init; } = 1;

    /// <summary>The limit is multiplied by this after an overloaded window, in (0, 1). Default 0.9.</summary>
    public double BackoffRatio { get; init; } = 0.9;

    /// <summary>
    /// When set (positive), a window whose average latency exceeds it counts as overloaded, like a window with
    /// drops. Default null: only <see cref="AdaptiveOutcome.Dropped"/> signals overload.
    /// </summary>
    public TimeSpan? LatencyThreshold { get; init; }
}
