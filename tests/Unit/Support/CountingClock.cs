namespace LockFree.Tests.Unit.Support;

/// <summary>A <see cref="ManualTimeProvider"/> that counts its readings, its timers' armings (a Change to a finite due time) and their callbacks.</summary>
public sealed class CountingClock(ManualTimeProvider inner) : TimeProvider
{
    private long _readings;
    private int _armings;
    private int _callbacks;

    /// <summary>The clock it wraps (advance it to fire the timers).</summary>
    public ManualTimeProvider Inner => inner;

    /// <summary>Callbacks its timers have run so far.</summary>
    public int Callbacks => Volatile.Read(ref _callbacks);

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
        new Timer(this, inner.CreateTimer(
            s =>
            {
                Interlocked.Increment(ref _callbacks);
                callback(s);
            },
            state,
            dueTime,
            period));

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
