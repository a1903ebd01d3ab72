namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// A manual <see cref="TimeProvider"/> for benchmarks that must decide when time passes (a queued rate-limiter wait is
/// granted when the benchmark advances the clock, not when a real timer happens to fire): <see cref="Advance"/> moves the
/// clock and runs the due timers' callbacks on the calling thread. Timers are few (one per limiter pump); a lock guards
/// them. The tests' <c>ManualTimeProvider</c> (tests/Unit/Support) has the same shape but is kept apart on purpose: a
/// benchmark's clock must not allocate per <see cref="Advance"/> (MemoryDiagnoser counts every thread's bytes) nor take a
/// lock per reading (the limiter reads it on the measured path), and the tests' clock wraps past
/// <see cref="long.MaxValue"/> and counts its timers for assertions.
/// </summary>
public sealed class StepClock : TimeProvider
{
    private readonly object _lock = new();
    private readonly List<StepTimer> _timers = new();
    private readonly List<StepTimer> _due = new();
    private long _now = 1;

    /// <inheritdoc/>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc/>
    public override long GetTimestamp() => Volatile.Read(ref _now);

    /// <summary>Moves the clock by <paramref name="by"/> and runs every timer now due (one-shot; periodic ones re-armed).</summary>
    public void Advance(TimeSpan by)
    {
        lock (_lock)
        {
            _now += by.Ticks;
            foreach (StepTimer timer in _timers)
            {
                if (timer.DueAt <= _now)
                {
                    _due.Add(timer);
                    timer.DueAt = timer.Period > 0 ? _now + timer.Period : long.MaxValue;
                }
            }
        }

        foreach (StepTimer timer in _due)
        {
            timer.Fire();
        }

        _due.Clear();
    }

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new StepTimer(this, callback, state);
        timer.Change(dueTime, period);
        lock (_lock)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    private sealed class StepTimer(StepClock owner, TimerCallback callback, object? state) : ITimer
    {
        public long DueAt = long.MaxValue;
        public long Period;

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._lock)
            {
                DueAt = dueTime == Timeout.InfiniteTimeSpan ? long.MaxValue : owner._now + dueTime.Ticks;
                Period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
            }

            return true;
        }

        public void Dispose()
        {
            lock (owner._lock)
            {
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
