namespace LockFree;

/// <summary>Options of <see cref="PidLimit"/>. Validated when the algorithm is created.</summary>
public sealed class PidLimitOptions : AdaptiveLimitOptions
{
    /// <summary>The latency the controller steers to (required, positive): typically the callee's unloaded latency plus the queueing delay you accept.</summary>
    public TimeSpan TargetLatency { get; init; }

    /// <summary>Proportional gain, at least 0. Default 0.5.</summary>
    public double ProportionalGain { get; init; } = 0.5;

    /// <summary>Integral gain, at least 0. Default 0.1.</summary>
    public double IntegralGain { get; init; } = 0.1;

    /// <summary>Derivative gain, at least 0. Default 0 (window-to-window latency noise makes a derivative term jumpy).</summary>
    public double DerivativeGain { get; init; }

    /// <summary>
    /// Hysteresis: while the relative error |target − latency| / target is at most this, the limit is held, in
    /// [0, 1). Default 0.1.
    /// </summary>
    public double Hysteresis { get; init; } = 0.1;

    /// <summary>The least time between two changes of the limit, at least zero. Default 500 ms.</summary>
    public TimeSpan Cooldown { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The largest relative change of the limit in one step, in (0, 1]. Default 0.25.</summary>
    public double MaxStep { get; init; } = 0.25;

    /// <summary>Anti-windup: the integral of the error is kept within ±this, positive. Default 2.</summary>
    public double IntegralLimit { get; init; } = 2;
}
