namespace LockFree;

/// <summary>Options of <see cref="GradientLimit"/>. Validated when the algorithm is created.</summary>
public sealed class GradientLimitOptions : AdaptiveLimitOptions
{
    /// <summary>
    /// How much the short-window latency may exceed the long-window baseline before the limit shrinks, at least 1:
    /// the gradient is min(1, Tolerance · long / short). Default 1.5 (50% queueing delay tolerated).
    /// </summary>
    public double Tolerance { get; init; } = 1.5;

    /// <summary>Weight of the new estimate in the smoothed limit, in (0, 1]. Default 0.2.</summary>
    public double Smoothing { get; init; } = 0.2;

    /// <summary>Length of the long-window latency average, in windows, at least 1 (an exponential average with α = 2 / (n + 1)). Default 600.</summary>
    public int LongWindow { get; init; } = 600;

    /// <summary>Windows averaged plainly before the long average turns exponential, in [1, <see cref="LongWindow"/>]. Default 10.</summary>
    public int Warmup { get; init; } = 10;

    /// <summary>Headroom added to the limit each window (the queue allowed to form), at least 0. Default 4.</summary>
    public double QueueSize { get; init; } = 4;

    /// <summary>
    /// When set (positive), every this often the limit drops to <see cref="AdaptiveLimitOptions.MinLimit"/> until
    /// in-flight has drained to it, and the next window's latency becomes the baseline (Envoy-style re-measurement of
    /// the no-load latency), which stops the baseline drift under sustained queueing. Costs a few windows of reduced
    /// throughput per interval; set MinLimit well below the callee's capacity. Default null (off).
    /// </summary>
    public TimeSpan? BaselineProbeInterval { get; init; }

    /// <summary>
    /// While the limit is being cut (latency above <see cref="Tolerance"/> × baseline), how fast a rise of the
    /// latency that is not our own queueing may raise the baseline, as a fraction of the baseline, at least 0. Such a
    /// window feeds the long average at most (1 + OverloadLatencyCap) × baseline, so the baseline climbs at most
    /// α·OverloadLatencyCap per window (α = 2 / (LongWindow + 1)). Latency that follows our own concurrency (queueing
    /// we cause, told apart by how latency responded to the limit's recent moves) never raises the baseline while
    /// overloaded, so a sustained overload cannot inflate it and the limit keeps backing off.
    /// <see cref="double.PositiveInfinity"/> turns both rules off: every window feeds the long average in full
    /// (Gradient2's behaviour, whose baseline creeps up under sustained queueing). Default 0.5.
    /// </summary>
    public double OverloadLatencyCap { get; init; } = 0.5;

    /// <summary>The smallest gradient (the largest single-window cut before smoothing), in (0, 1]; also applied after a window with drops. Default 0.5.</summary>
    public double MinGradient { get; init; } = 0.5;
}
