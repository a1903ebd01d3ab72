namespace LockFree;

/// <summary>How a request admitted by an <see cref="AdaptiveConcurrencyLimiter"/> ended; passed to <see cref="AdaptiveLease.Complete"/>.</summary>
public enum AdaptiveOutcome
{
    /// <summary>The request completed; its round-trip time is a latency sample for the limit algorithm.</summary>
    Success = 0,

    /// <summary>
    /// The request failed because the callee was overloaded (rejected, shed, timed out): an overload signal. Its
    /// latency is not used (a fast rejection would look like a healthy latency).
    /// </summary>
    Dropped = 1,

    /// <summary>The request ended for a reason that says nothing about the callee's load (cancelled, a client error): the slot is released, no sample is recorded.</summary>
    Ignore = 2,
}
