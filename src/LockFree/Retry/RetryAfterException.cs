namespace LockFree;

/// <summary>
/// A failure that says when to try again (the in-process equivalent of HTTP 429/503 with Retry-After). A
/// <see cref="RetryPolicy"/> waits at least <see cref="RetryAfter"/> before the next attempt.
/// </summary>
public class RetryAfterException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public RetryAfterException()
        : this(TimeSpan.Zero)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public RetryAfterException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the failure it wraps.</summary>
    public RetryAfterException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with the time to wait, and optionally a message and the failure it wraps.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="retryAfter"/> is negative.</exception>
    public RetryAfterException(TimeSpan retryAfter, string? message = null, Exception? innerException = null)
        : base(message ?? $"Retry after {retryAfter}.", innerException)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retryAfter, TimeSpan.Zero);
        RetryAfter = retryAfter;
    }

    /// <summary>How long to wait before the next attempt.</summary>
    public TimeSpan RetryAfter { get; }
}
