namespace LockFree;

/// <summary>Settings of a <see cref="RetryPolicy"/>. Immutable; every value is validated by the policy's constructor.</summary>
public sealed class RetryPolicyOptions
{
    /// <summary>Attempts in all, the first included: 1 means never retry. Default 3. In [1, 1_000_000].</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>The backoff unit: the delay before the first retry without jitter. Default 100 ms. In [0, <see cref="MaxDelay"/>].</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The cap on any delay: backoff never exceeds it, and a failure whose retry-after hint exceeds it is not retried
    /// (<see cref="RetryStopReason.RetryAfterTooLong"/>). Default 30 s. At most <see cref="DelayQueue{T}.MaxDelay"/>.
    /// </summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How the backoff is randomised. Default <see cref="RetryJitter.Full"/>.</summary>
    public RetryJitter Jitter { get; init; } = RetryJitter.Full;

    /// <summary>
    /// Which failures are retried. Default: every exception except <see cref="OperationCanceledException"/>
    /// (a cancellation of the caller's own token is never retried, whatever this says).
    /// </summary>
    public Func<Exception, bool>? ShouldRetry { get; init; }

    /// <summary>
    /// Reads the failure's retry-after hint, if any: the policy waits at least that long. Default: the
    /// <see cref="RetryAfterException.RetryAfter"/> of a <see cref="RetryAfterException"/>, else none.
    /// </summary>
    public Func<Exception, TimeSpan?>? RetryAfter { get; init; }

    /// <summary>The retry budget to spend from (share one across policies that call the same dependency). Default none: unlimited.</summary>
    public RetryBudget? Budget { get; init; }

    /// <summary>
    /// The random source of the jitter. Default <see cref="Random.Shared"/> (thread-safe). A seeded
    /// <see cref="Random"/> makes the delays reproducible; it is not thread-safe, so use it from one thread at a time.
    /// </summary>
    public Random? Random { get; init; }

    /// <summary>The clock <see cref="RetryPolicy.ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/> waits on. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// When set, <see cref="RetryPolicy.ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/>
    /// waits out each backoff on this wheel (one pooled timer node; the wheel's driver must run, or its owner must
    /// call <see cref="HierarchicalTimerWheel.Advance"/>) instead of a <see cref="TimeProvider"/> timer: cheaper when
    /// many calls retry at once, and precise to the wheel's tick (scheduled at the absolute due time on
    /// <see cref="TimeProvider"/>: never early, however the wheel is driven; at most one tick late plus the driving latency). A wait
    /// costs one task allocation; the success path none. A wheel that refuses the timer (disposed, or holding its
    /// <see cref="HierarchicalTimerWheel.MaxTimers"/>) does not fail the call: that wait falls back to a
    /// <see cref="TimeProvider"/> timer; a wait pending when the wheel is disposed finishes on a
    /// <see cref="TimeProvider"/> timer at the same time (still cancelled by the token). The wheel must read <see cref="TimeProvider"/> (its
    /// <see cref="HierarchicalTimerWheel.TimeProvider"/>; else the policy's constructor throws <see cref="ArgumentException"/>).
    /// Default null (wait on <see cref="TimeProvider"/>).
    /// </summary>
    public HierarchicalTimerWheel? TimerWheel { get; init; }
}
