namespace LockFree.Tests.Unit.Support;

/// <summary>
/// A <see cref="ManualTimeProvider"/> whose chosen reading (1 = the next <see cref="GetTimestamp"/>) throws once, and
/// whose chosen timer creation (1 = the next <see cref="CreateTimer"/>) throws once.
/// </summary>
public sealed class FailingReadingClock(ManualTimeProvider inner) : TimeProvider
{
    private int _countdown;
    private int _timerCountdown;

    /// <inheritdoc/>
    public override long TimestampFrequency => inner.TimestampFrequency;

    /// <summary>The <paramref name="reading"/>-th clock reading from now throws <see cref="InvalidOperationException"/> ("clock failed").</summary>
    public void FailReading(int reading) => Volatile.Write(ref _countdown, reading);

    /// <summary>The <paramref name="creation"/>-th <see cref="CreateTimer"/> from now throws <see cref="InvalidOperationException"/> ("timer failed").</summary>
    public void FailTimer(int creation) => Volatile.Write(ref _timerCountdown, creation);

    /// <inheritdoc/>
    public override long GetTimestamp()
    {
        if (Volatile.Read(ref _countdown) > 0 && Interlocked.Decrement(ref _countdown) == 0)
        {
            throw new InvalidOperationException("clock failed");
        }

        return inner.GetTimestamp();
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (Volatile.Read(ref _timerCountdown) > 0 && Interlocked.Decrement(ref _timerCountdown) == 0)
        {
            throw new InvalidOperationException("timer failed");
        }

        return inner.CreateTimer(callback, state, dueTime, period);
    }
}
