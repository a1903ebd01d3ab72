namespace LockFree;

/// <summary>How a <see cref="RetryPolicy"/> randomises its exponential backoff (formulas in <c>docs/retry-and-dead-letters.md</c>).</summary>
public enum RetryJitter
{
    /// <summary>No randomness: <c>min(MaxDelay, BaseDelay * 2^(n-1))</c> before retry n.</summary>
    None,

    /// <summary>
    /// "Full jitter": uniform in <c>[0, min(MaxDelay, BaseDelay * 2^(n-1)))</c>. Spreads a synchronised burst of
    /// retries the most; the least total work under contention (Brooker, "Exponential Backoff And Jitter", AWS 2015).
    /// </summary>
    Full,

    /// <summary>
    /// "Decorrelated jitter": uniform in <c>[BaseDelay, 3 * previous)</c>, capped at MaxDelay, where previous is the
    /// delay before the last retry (BaseDelay before the first). Grows like the exponential on average without
    /// keeping callers in step.
    /// </summary>
    Decorrelated,
}
