namespace LockFree;

/// <summary>Why a <see cref="RetryPolicy"/> decided not to retry.</summary>
public enum RetryStopReason
{
    /// <summary>Not stopped: the decision is to retry.</summary>
    None,

    /// <summary>The attempt that failed was the last one <see cref="RetryPolicyOptions.MaxAttempts"/> allows.</summary>
    MaxAttempts,

    /// <summary>The failure is not retryable (<see cref="RetryPolicyOptions.ShouldRetry"/> said no).</summary>
    NotRetryable,

    /// <summary>The <see cref="RetryBudget"/> has no retry left: retries would amplify an overload.</summary>
    BudgetExhausted,

    /// <summary>The failure asked to be retried later than <see cref="RetryPolicyOptions.MaxDelay"/> allows the policy to wait.</summary>
    RetryAfterTooLong,
}

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
