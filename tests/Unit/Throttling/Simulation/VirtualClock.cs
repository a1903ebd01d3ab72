namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>A single-threaded virtual clock for the discrete-event simulations: ticks of 100 ns, moved only by <see cref="AdvanceTo"/>.</summary>
public sealed class VirtualClock : TimeProvider
{
    private long _now = TimeSpan.FromDays(1).Ticks; // non-zero, as a real monotonic clock

    /// <inheritdoc/>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>Now, in ticks.</summary>
    public long Now => _now;

    /// <inheritdoc/>
    public override long GetTimestamp() => _now;

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(_now);

    /// <summary>Moves the clock to <paramref name="ticks"/> (never backwards).</summary>
    public void AdvanceTo(long ticks)
    {
        if (ticks < _now)
        {
            throw new InvalidOperationException("The virtual clock cannot go back.");
        }

        _now = ticks;
    }

    /// <summary>Moves the clock forward by <paramref name="by"/>.</summary>
    public void Advance(TimeSpan by) => AdvanceTo(_now + by.Ticks);
}
