namespace LockFree;

/// <summary>
/// An algorithm that sets a concurrency limit from what the last sample window observed. Built-in:
/// <see cref="AimdLimit"/>, <see cref="GradientLimit"/>, <see cref="PidLimit"/>; derive to write your own.
/// </summary>
/// <remarks>
/// <para>
/// An instance is stateful and belongs to one <see cref="AdaptiveConcurrencyLimiter"/> (the limiter refuses an
/// algorithm another limiter already uses). The limiter calls <see cref="Update"/> from one thread at a time (a
/// single updater, chosen by a compare-and-swap when a window closes), never under a lock that acquirers take,
/// and publishes the result with a release store; so an implementation needs no synchronisation of its own.
/// </para>
/// <para>The limiter keeps the result within [<see cref="MinLimit"/>, <see cref="MaxLimit"/>] whatever an implementation returns.
/// An exception from <see cref="Update"/> propagates out of the <see cref="AdaptiveLease.Complete"/> call that closed the
/// window (after its slot was released); that window's samples are consumed and the limit stays as it was.</para>
/// </remarks>
public abstract class AdaptiveLimit
{
    private int _owned;

    /// <summary>Validates and stores the bounds.</summary>
    /// <param name="options">The bounds.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range (see <see cref="AdaptiveLimitOptions"/>).</exception>
    protected AdaptiveLimit(AdaptiveLimitOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MinLimit, 1, "options.MinLimit");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxLimit, options.MinLimit, "options.MaxLimit");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.InitialLimit, options.MinLimit, "options.InitialLimit");
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.InitialLimit, options.MaxLimit, "options.InitialLimit");
        MinLimit = options.MinLimit;
        MaxLimit = options.MaxLimit;
        InitialLimit = options.InitialLimit;
    }

    /// <summary>The lowest limit.</summary>
    public int MinLimit { get; }

    /// <summary>The highest limit.</summary>
    public int MaxLimit { get; }

    /// <summary>The limit before the first window closes.</summary>
    public int InitialLimit { get; }

    /// <summary>Computes the next limit from a closed window. Called by one thread at a time.</summary>
    /// <param name="window">What the window observed, including the limit in force.</param>
    /// <returns>The next limit; the limiter keeps it within [<see cref="MinLimit"/>, <see cref="MaxLimit"/>].</returns>
    public abstract int Update(in AdaptiveWindow window);

    /// <summary>Binds the algorithm to one limiter; false when another limiter already owns it.</summary>
    internal bool TryClaim() => Interlocked.CompareExchange(ref _owned, 1, 0) == 0;

    /// <summary>Clamps <paramref name="value"/> to [<see cref="MinLimit"/>, <see cref="MaxLimit"/>].</summary>
    private protected double Bound(double value) => Math.Clamp(value, MinLimit, MaxLimit);
}
