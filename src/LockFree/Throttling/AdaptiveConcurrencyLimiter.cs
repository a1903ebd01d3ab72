using System.Diagnostics;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree;

/// <summary>
/// A concurrency limiter whose limit an <see cref="AdaptiveLimit"/> algorithm moves from observed latencies and
/// overload signals: admit with <see cref="TryAcquire"/>, finish with <see cref="AdaptiveLease.Complete"/>.
/// </summary>
/// <remarks>
/// <para>
/// Lock-free and allocation-free: admission is one compare-and-swap on the in-flight count against the current
/// limit (so in-flight never exceeds the limit a request was admitted under); completion is an interlocked
/// decrement and one interlocked add of the sample to the open window. When a window is at least
/// <see cref="AdaptiveConcurrencyLimiterOptions.MinWindow"/> old and holds
/// <see cref="AdaptiveConcurrencyLimiterOptions.MinSamples"/> samples, the completion that notices it claims the
/// window with a compare-and-swap and runs the algorithm once; other threads never wait for it. A lowered limit
/// does not evict requests: new ones are refused until in-flight falls below it. Nothing waits: a refused request
/// is the caller's to shed, queue or retry.
/// </para>
/// <para>See <c>docs/adaptive-limits.md</c> for the algorithms, their tested stability bands and a choice guide.</para>
/// </remarks>
[DebuggerDisplay("Limit = {Limit}, InFlight = {InFlight}")]
public sealed class AdaptiveConcurrencyLimiter : IAdaptiveLimiterMetricsSource
{
    // Not readonly: the engine is a mutable struct stored inline, so calls reach it without an indirection.
    private AdaptiveLimiterEngine<RealAtomics> _engine;

    /// <summary>Creates a limiter.</summary>
    /// <param name="options">Options; <see cref="AdaptiveConcurrencyLimiterOptions.Algorithm"/> is required.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/>, its algorithm or its time provider is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="InvalidOperationException">The algorithm already belongs to another limiter.</exception>
    public AdaptiveConcurrencyLimiter(AdaptiveConcurrencyLimiterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Algorithm, "options.Algorithm");
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.MinWindow, TimeSpan.Zero, "options.MinWindow");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MinSamples, 1, "options.MinSamples");
        if (options.SampleEvery < 1 || options.SampleEvery > 1024 || (options.SampleEvery & (options.SampleEvery - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException("options.SampleEvery", options.SampleEvery, "SampleEvery must be a power of two in [1, 1024].");
        }
        if (!options.Algorithm.TryClaim())
        {
            ThrowHelper.ThrowInvalidOperation("The algorithm already belongs to another AdaptiveConcurrencyLimiter; create one per limiter.");
        }

        _engine = new AdaptiveLimiterEngine<RealAtomics>(options.Algorithm, options.TimeProvider, options.MinWindow, options.MinSamples, options.SampleEvery);
        Name = options.Name;
        if (Name is not null)
        {
            AdaptiveLimitMetrics.Register(this);
        }
    }

    /// <summary>The name metrics are tagged with, or null.</summary>
    public string? Name { get; }

    /// <summary>The algorithm that moves the limit.</summary>
    public AdaptiveLimit Algorithm => _engine.Algorithm;

    /// <summary>The clock latencies are measured with; <see cref="AdaptiveLease.Started"/> is one of its timestamps.</summary>
    public TimeProvider TimeProvider => _engine.Time;

    /// <summary>The current limit (a snapshot).</summary>
    public int Limit => (int)_engine.Limit;

    /// <summary>Requests admitted and not completed (a snapshot). May exceed <see cref="Limit"/> right after the limit was lowered.</summary>
    public long InFlight => _engine.InFlight;

    /// <summary>Requests admitted since creation.</summary>
    public long Acquired => _engine.Acquired;

    /// <summary>Requests refused since creation.</summary>
    public long Rejected => _engine.Rejected;

    /// <summary>Admits a request if fewer than <see cref="Limit"/> are in flight. Never waits, never allocates.</summary>
    /// <param name="lease">On success, the slot to complete when the request ends; otherwise <c>default</c>.</param>
    /// <returns>True when admitted.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAcquire(out AdaptiveLease lease)
    {
        if (_engine.TryAcquire(out long start))
        {
            lease = new AdaptiveLease(this, start);
            return true;
        }

        lease = default;
        return false;
    }

    /// <summary>Ends a request started at <paramref name="started"/> (a timestamp of <see cref="TimeProvider"/>); what <see cref="AdaptiveLease.Complete"/> calls.</summary>
    internal void Complete(long started, AdaptiveOutcome outcome)
    {
        if ((uint)outcome > (uint)AdaptiveOutcome.Ignore)
        {
            throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "Undefined AdaptiveOutcome.");
        }

        _engine.Complete(started, outcome);
    }
}
