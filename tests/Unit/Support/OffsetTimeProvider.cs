namespace LockFree.Tests.Unit.Support;

/// <summary>
/// A <see cref="ManualTimeProvider"/> shifted by a constant, so its timestamps can read negative or start near either
/// end of the long range (a legal clock: only differences of timestamps mean anything; the sum wraps).
/// </summary>
public sealed class OffsetTimeProvider(ManualTimeProvider inner, long offset) : TimeProvider
{
    /// <summary>A clock whose first reading is <paramref name="start"/>, moved by <see cref="Inner"/>.</summary>
    public static OffsetTimeProvider StartingAt(long start, out ManualTimeProvider inner)
    {
        inner = new ManualTimeProvider();
        return new OffsetTimeProvider(inner, unchecked(start - inner.GetTimestamp()));
    }

    /// <summary>The clock that moves this one (<see cref="ManualTimeProvider.Advance"/>).</summary>
    public ManualTimeProvider Inner => inner;

    /// <inheritdoc/>
    public override long TimestampFrequency => inner.TimestampFrequency;

    /// <inheritdoc/>
    public override long GetTimestamp() => unchecked(inner.GetTimestamp() + offset);
}
