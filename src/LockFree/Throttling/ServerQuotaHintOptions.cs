namespace LockFree;

/// <summary>Options of <see cref="ServerQuotaHint"/>. Validated when the hint is created.</summary>
public sealed class ServerQuotaHintOptions
{
    /// <summary>
    /// When the remaining quota is at most this, requests are paced: spaced evenly over the time left until the
    /// reset instead of sent in a burst, at least 0 (0: never pace, only stop at 0). Default 10.
    /// </summary>
    public long PaceBelow { get; init; } = 10;

    /// <summary>
    /// The clock. Default <see cref="TimeProvider.System"/>. Read once when the tracker is created; its monotonic
    /// timestamps may start anywhere and wrap past <see cref="long.MaxValue"/> (the tracker counts differences).
    /// </summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
