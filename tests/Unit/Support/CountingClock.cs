namespace LockFree.Tests.Unit.Support;

/// <summary>A <see cref="ManualTimeProvider"/> that counts its readings and its timers' armings (a Change to a finite due time).</summary>
public sealed class CountingClock(ManualTimeProvider inner) : TimeProvider
{
    private long _readings;
    private int _armings;

    /// <summary>Clock readings (<see cref="GetTimestamp"/>) so far.</summary>
    public long Readings => Interlocked.Read(ref _readings);

    /// <summary>Armings of its timers (a Change to a finite due time) so far.</summary>
    public int Armings => Volatile.Read(ref _armings);

    /// <inheritdoc/>
    public override long TimestampFrequency => inner.TimestampFrequency;

    /// <inheritdoc/>
    public override long GetTimestamp()
    {
        Interlocked.Increment(ref _readings);
        return inner.GetTimestamp();
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new Timer(this, inner.CreateTimer(callback, state, dueTime, period));

    private sealed class Timer(CountingClock owner, ITimer timer) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                Interlocked.Increment(ref owner._armings);
            }

            return timer.Change(dueTime, period);
        }

        public void Dispose() => timer.Dispose();

        public ValueTask DisposeAsync() => timer.DisposeAsync();
    }
}
