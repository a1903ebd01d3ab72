namespace LockFree;

/// <summary>Options of <see cref="ClientSideThrottle"/>. Validated when the throttle is created.</summary>
public sealed class ClientSideThrottleOptions
{
    /// <summary>
    /// The multiplier K of the formula: the backend is sent about K times what it accepts, at least 1. Lower
    /// is more aggressive. Default 2 (the SRE book's value).
    /// </summary>
    public double K { get; init; } = 2;

    /// <summary>The sliding window the requests and accepts are counted over, positive. Default 2 minutes (the SRE book's value).</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Buckets the window is split into, in [1, 1024]: the window slides by Window / Buckets. Default 20.</summary>
    public int Buckets { get; init; } = 20;

    /// <summary>A source of uniform random numbers in [0, 1), called only when the rejection probability is above 0; must be thread-safe. Default <see cref="Random.Shared"/>.</summary>
    public Func<double>? RandomSource { get; init; }

    /// <summary>The clock for the window. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
