namespace LockFree.Tests.Unit.Support;

/// <summary>
/// A <see cref="ManualTimeProvider"/> whose first <see cref="CreationFailures"/> timer creations, and first
/// <see cref="ArmingFailures"/> armings (a Change to a finite due time) of its timers, throw; settable while in use.
/// </summary>
public sealed class TimerFailingClock(ManualTimeProvider inner) : TimeProvider
{
    private int _creationFailures;
    private int _armingFailures;
    private int _created;
    private int _armings;

    /// <summary>Timer creations still to fail (from now).</summary>
    public int CreationFailures { get => Math.Max(Volatile.Read(ref _creationFailures), 0); set => Volatile.Write(ref _creationFailures, value); }

    /// <summary>Armings still to fail (from now).</summary>
    public int ArmingFailures { get => Math.Max(Volatile.Read(ref _armingFailures), 0); set => Volatile.Write(ref _armingFailures, value); }

    /// <summary>Timers created successfully.</summary>
    public int TimersCreated => Volatile.Read(ref _created);

    /// <summary>Successful armings (a Change to a finite due time).</summary>
    public int Armings => Volatile.Read(ref _armings);

    /// <inheritdoc/>
    public override long TimestampFrequency => inner.TimestampFrequency;

    /// <inheritdoc/>
    public override long GetTimestamp() => inner.GetTimestamp();

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (Interlocked.Decrement(ref _creationFailures) >= 0)
        {
            throw new InvalidOperationException("timer failed");
        }

        ITimer timer = new ArmFailingTimer(this, inner.CreateTimer(callback, state, dueTime, period));
        Interlocked.Increment(ref _created);
        return timer;
    }

    private sealed class ArmFailingTimer(TimerFailingClock owner, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                if (Interlocked.Decrement(ref owner._armingFailures) >= 0)
                {
                    throw new InvalidOperationException("arming failed");
                }

                bool changed = inner.Change(dueTime, period);
                Interlocked.Increment(ref owner._armings); // after the arming: a test that sees the count sees the timer armed
                return changed;
            }

            return inner.Change(dueTime, period);
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
