namespace LockFree;

/// <summary>
/// What an <see cref="AdaptiveConcurrencyLimiter"/> observed during one sample window: the input of
/// <see cref="AdaptiveLimit.Update"/>.
/// </summary>
/// <remarks>
/// The limiter accumulates samples with a few interlocked additions per completion and hands them over as one
/// window, so algorithms run once per window, not once per request. Samples that complete while a window is
/// being closed may be counted in that window or in the next one; every sample is counted exactly once.
/// </remarks>
/// <param name="Limit">The limit in force during the window.</param>
/// <param name="SampleCount">Requests that completed with <see cref="AdaptiveOutcome.Success"/>.</param>
/// <param name="DroppedCount">Requests that completed with <see cref="AdaptiveOutcome.Dropped"/> (overload signals).</param>
/// <param name="AverageLatency">Mean round-trip time of the successful requests; <see cref="TimeSpan.Zero"/> when <paramref name="SampleCount"/> is 0. Resolution 1 µs.</param>
/// <param name="MaxInFlight">The most requests in flight seen at a completion during the window (tells a busy limiter from an idle one).</param>
/// <param name="Duration">How long the window lasted.</param>
/// <param name="Elapsed">Time since the limiter was created, at the end of the window (for cooldowns).</param>
public readonly record struct AdaptiveWindow(
    int Limit,
    long SampleCount,
    long DroppedCount,
    TimeSpan AverageLatency,
    long MaxInFlight,
    TimeSpan Duration,
    TimeSpan Elapsed);
