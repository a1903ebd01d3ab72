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
