namespace LockFree.Tests.Unit.Support;

/// <summary>
/// A clock that moves only when a test says so: timestamps in ticks (frequency <see cref="TimeSpan.TicksPerSecond"/>),
/// starting at a non-zero value (or one a test chooses: near <see cref="long.MaxValue"/>, negative), and timers that fire
/// from <see cref="Advance"/> on the calling thread. Timestamps wrap past <see cref="long.MaxValue"/> as a hardware
/// counter does; due times are compared as differences, so timers work across the wrap too.
/// </summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly object _lock = new();
    private readonly List<ManualTimer> _timers = new();
    private long _now = TimeSpan.FromDays(1).Ticks; // non-zero: a real monotonic clock never reads 0

    /// <summary>A clock that starts at one day's ticks.</summary>
    public ManualTimeProvider()
    {
    }

    /// <summary>A clock that starts at <paramref name="startTimestamp"/> (wrap tests: near <see cref="long.MaxValue"/>, or negative).</summary>
    public ManualTimeProvider(long startTimestamp) => _now = startTimestamp;

    /// <inheritdoc/>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>Timers created and not yet disposed.</summary>
    public int ActiveTimers
    {
        get
        {
            Locked();
            lock (_lock)
            {
                return _timers.Count;
            }
        }
    }

    /// <inheritdoc/>
    public override long GetTimestamp()
    {
        Locked();
        lock (_lock)
        {
            return _now;
        }
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(GetTimestamp());

    /// <summary>Moves the clock forward; with <paramref name="fireTimers"/>, fires (outside the lock) every timer now due.</summary>
    public void Advance(TimeSpan by, bool fireTimers = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        List<ManualTimer> due = new();
        Locked();
        lock (_lock)
        {
            _now = unchecked(_now + by.Ticks); // wraps past long.MaxValue
            if (fireTimers)
            {
                foreach (ManualTimer timer in _timers)
                {
                    if (timer.Armed && unchecked(timer.DueAt - _now) <= 0) // a difference: works across the wrap
                    {
                        due.Add(timer);
                    }
                }

                foreach (ManualTimer timer in due)
                {
                    timer.Armed = false; // one-shot; the tests never use periods
                }
            }
        }

        foreach (ManualTimer timer in due)
        {
            timer.Fire();
        }
    }

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        Locked();
        lock (_lock)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    private void Remove(ManualTimer timer)
    {
        Locked();
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    /// <summary>
    /// The monitor below is a locked instruction. Under the controlled scheduler's store-buffer model (the concurrency
    /// project compiles this file too) the calling logical thread's buffered stores drain here, as on x86: the clock's
    /// state is outside the seam, and a timer registered here must not become visible to the advancing thread before the
    /// stores made ahead of it. No scheduling point. Elsewhere, nothing.
    /// </summary>
    private static void Locked()
    {
#if LOCKFREE_COMPOSED_TESTS
        LockFree.Tests.Concurrency.Scheduling.ControlledScheduler.DrainRunningThread();
#endif
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public long DueAt { get; set; }

        public bool Armed { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Locked();
            lock (owner._lock)
            {
                Armed = dueTime != Timeout.InfiniteTimeSpan;
                DueAt = Armed ? unchecked(owner._now + dueTime.Ticks) : 0;
            }

            return true;
        }

        public void Fire() => callback(state);

        public void Dispose() => owner.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
