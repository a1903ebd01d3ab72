namespace LockFree;

// Design: additive increase / multiplicative decrease (Chiu & Jain, "Analysis of the increase and decrease
// algorithms for congestion avoidance in computer networks", 1989; TCP Reno's congestion window), applied once
// per sample window instead of once per request. Overload = any drop in the window, or the average latency above
// an optional threshold. Increase only when the window was busy (MaxInFlight ≥ limit / 2): an idle client proves
// nothing about the callee's capacity and must not inflate the limit (the "app-limited" rule of Netflix
// concurrency-limits). Stateless apart from the options: the current limit arrives in the window.

/// <summary>
/// Additive increase, multiplicative decrease: after a busy window without overload signals the limit grows by
/// <see cref="AimdLimitOptions.Increase"/>; after a window with a drop (or with latency above
/// <see cref="AimdLimitOptions.LatencyThreshold"/>) it is multiplied by <see cref="AimdLimitOptions.BackoffRatio"/>.
/// </summary>
/// <remarks>
/// Needs an explicit overload signal from the callee (drops, timeouts); it probes for capacity by design, so the
/// limit saw-tooths just below the point where the callee starts dropping. See <c>docs/adaptive-limits.md</c>.
/// </remarks>
public sealed class AimdLimit : AdaptiveLimit
{
    private readonly int _increase;
    private readonly double _backoff;
    private readonly long _thresholdTicks;

    /// <summary>Creates the algorithm.</summary>
    /// <param name="options">Options; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public AimdLimit(AimdLimitOptions? options = null)
        : base(options ??= new AimdLimitOptions())
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Increase, 1, "options.Increase");
        if (!(options.BackoffRatio > 0 && options.BackoffRatio < 1))
        {
            throw new ArgumentOutOfRangeException("options.BackoffRatio", options.BackoffRatio, "BackoffRatio must be in (0, 1).");
        }

        if (options.LatencyThreshold is { } threshold && threshold <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException("options.LatencyThreshold", threshold, "LatencyThreshold must be positive when set.");
        }

        _increase = options.Increase;
        _backoff = options.BackoffRatio;
        _thresholdTicks = options.LatencyThreshold?.Ticks ?? long.MaxValue;
    }

    /// <inheritdoc/>
    public override int Update(in AdaptiveWindow window)
    {
        int limit = window.Limit;
        bool overloaded = window.DroppedCount > 0 || (window.SampleCount > 0 && window.AverageLatency.Ticks > _thresholdTicks);
        if (overloaded)
        {
            return (int)Bound(Math.Floor(limit * _backoff));
        }

        if (window.SampleCount > 0 && window.MaxInFlight * 2 >= limit)
        {
            return (int)Bound((double)limit + _increase);
        }

        return (int)Bound(limit);
    }
}
