namespace LockFree;

/// <summary>A <see cref="RetryPolicy"/>'s answer for one failed attempt: retry after <see cref="Delay"/>, or stop and why.</summary>
/// <param name="ShouldRetry">Whether to retry.</param>
/// <param name="Delay">How long to wait before the retry; <see cref="TimeSpan.Zero"/> when stopping.</param>
/// <param name="StopReason">Why not to retry; <see cref="RetryStopReason.None"/> when retrying.</param>
public readonly record struct RetryDecision(bool ShouldRetry, TimeSpan Delay, RetryStopReason StopReason)
{
    /// <summary>A decision to retry after <paramref name="delay"/>.</summary>
    public static RetryDecision Retry(TimeSpan delay) => new(true, delay, RetryStopReason.None);

    /// <summary>A decision to stop, for <paramref name="reason"/>.</summary>
    public static RetryDecision Stop(RetryStopReason reason) => new(false, TimeSpan.Zero, reason);
}
