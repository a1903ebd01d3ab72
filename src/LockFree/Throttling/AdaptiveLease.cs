using System.Diagnostics;

namespace LockFree;

/// <summary>
/// A slot admitted by <see cref="AdaptiveConcurrencyLimiter.TryAcquire"/>: remembers when the request started.
/// Complete it exactly once with how the request ended.
/// </summary>
/// <remarks>
/// A struct, so admission allocates nothing. Copies share the slot: completing two copies (or a lease twice)
/// releases the slot twice; the limiter detects the case where that would drive its in-flight count below zero
/// and throws <see cref="InvalidOperationException"/>, but not every double completion.
/// </remarks>
[DebuggerDisplay("Started = {Started}")]
public readonly struct AdaptiveLease
{
    private readonly AdaptiveConcurrencyLimiter? _limiter;

    internal AdaptiveLease(AdaptiveConcurrencyLimiter limiter, long started)
    {
        _limiter = limiter;
        Started = started;
    }

    /// <summary>The request's start, a timestamp of the limiter's <see cref="TimeProvider"/>; <see cref="long.MinValue"/> when its latency is not measured (see <see cref="AdaptiveConcurrencyLimiterOptions.SampleEvery"/>).</summary>
    public long Started { get; }

    /// <summary>True for a lease from a successful acquire; false for <c>default</c>.</summary>
    public bool IsAcquired => _limiter is not null;

    /// <summary>Releases the slot and feeds the request's latency and outcome to the limit algorithm.</summary>
    /// <param name="outcome">How the request ended.</param>
    /// <exception cref="InvalidOperationException">The lease is <c>default</c>, or more leases were completed than acquired.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="outcome"/> is not a defined value.</exception>
    public void Complete(AdaptiveOutcome outcome = AdaptiveOutcome.Success)
    {
        if (_limiter is null)
        {
            Internal.ThrowHelper.ThrowInvalidOperation("The lease was not acquired (default AdaptiveLease).");
        }

        _limiter.Complete(Started, outcome);
    }
}
