namespace LockFree;

/// <summary>Options of <see cref="AdaptiveConcurrencyLimiter"/>. Validated when the limiter is created.</summary>
public sealed class AdaptiveConcurrencyLimiterOptions
{
    /// <summary>The algorithm that moves the limit (required): <see cref="AimdLimit"/>, <see cref="GradientLimit"/>, <see cref="PidLimit"/> or your own. One limiter per instance.</summary>
    public AdaptiveLimit? Algorithm { get; init; }

    /// <summary>The shortest sample window, positive: the limit changes at most once per window. Default 100 ms.</summary>
    public TimeSpan MinWindow { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Samples (successes + drops) a window needs before it closes, at least 1; a quieter window stays open. Default 10.</summary>
    public int MinSamples { get; init; } = 10;

    /// <summary>
    /// Latency is measured for one admitted request in this many, a power of two in [1, 1024]. A measured request
    /// costs two clock reads (about 26 ns each on a quiet 2-vCPU VM, several times more on a loaded one); the others
    /// read no clock. Drops are counted for every request. Default 1 (every request).
    /// </summary>
    public int SampleEvery { get; init; } = 1;

    /// <summary>The clock for latencies and windows. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>When set, the limiter reports metrics tagged with this name (see <see cref="AdaptiveLimitMetrics"/>). Default null.</summary>
    public string? Name { get; init; }
}
