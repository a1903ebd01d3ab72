namespace LockFree;

/// <summary>The bounds every adaptive limit algorithm shares. Validated when the algorithm is created.</summary>
public abstract class AdaptiveLimitOptions
{
    /// <summary>The limit before the first window closes, in [<see cref="MinLimit"/>, <see cref="MaxLimit"/>]. Default 20.</summary>
    public int InitialLimit { get; init; } = 20;

    /// <summary>The lowest limit, at least 1: even a failing callee keeps this many requests going, so recovery can be seen. Default 1.</summary>
    public int MinLimit { get; init; } = 1;

    /// <summary>The highest limit, at least <see cref="MinLimit"/>. Default 1000.</summary>
    public int MaxLimit { get; init; } = 1000;
}
