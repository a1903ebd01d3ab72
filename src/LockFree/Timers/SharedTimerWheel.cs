namespace LockFree.Timers;

/// <summary>
/// The library's own timer wheel on <see cref="TimeProvider.System"/>, for the timeouts of its asynchronous waits:
/// a 1 ms tick, created with its driver thread (a background thread that sleeps until the next expiry) on first use,
/// never disposed. Schedule and Cancel are lock-free and allocate nothing, where an <see cref="ITimer"/> per wait
/// costs an allocation and a timer-queue insertion. Timeouts are scheduled at their absolute due time (one clock
/// reading), so they fire no earlier than asked, however late the driver ran, and about a tick or two later, as
/// <see cref="TimeProvider.System"/>'s own timers do at their granularity.
/// </summary>
internal static class SharedTimerWheel
{
    private static HierarchicalTimerWheel? s_wheel;

    /// <summary>The wheel, created and started on first use.</summary>
    public static HierarchicalTimerWheel Instance => Volatile.Read(ref s_wheel) ?? Create(); // acquire: pairs with the CAS in Create

    /// <summary>
    /// Schedules <paramref name="callback"/> on <paramref name="wheel"/> (this class's, or a test's) after
    /// <paramref name="dueIn"/>; false (nothing scheduled) when the wheel refuses it (beyond its range, disposed, or
    /// the pool at its limit), so the caller falls back to a <see cref="TimeProvider"/> timer.
    /// </summary>
    public static bool TrySchedule(HierarchicalTimerWheel wheel, TimeSpan dueIn, Action<object?> callback, object state, out TimerHandle handle)
    {
        if (dueIn > wheel.MaxDueIn)
        {
            handle = default;
            return false;
        }

        try
        {
            // At the absolute due time on the wheel's clock (one reading, on a path that parks anyway): never early. The
            // relative Schedule counts from the tick the wheel last published, which lags the clock when its driver
            // oversleeps a one-tick nap (docs/timers.md), so a timeout could fire early by that lag (review, 2026-11-23).
            // A due time that would wrap past long.MaxValue goes the relative way (the wheel's tick arithmetic copes).
            TimeProvider clock = wheel.TimeProvider;
            long now = clock.GetTimestamp();
            long due = unchecked(now + (long)Math.Ceiling(dueIn.Ticks * (clock.TimestampFrequency / (double)TimeSpan.TicksPerSecond)));
            handle = due >= now ? wheel.ScheduleAt(due, callback, state) : wheel.Schedule(dueIn, callback, state);
            return true;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException or ArgumentOutOfRangeException) // the pool is at its limit (millions of pending timeouts); a test's disposed wheel; a due time past MaxDueIn of a lagging tick
        {
            handle = default;
            return false;
        }
    }

    private static HierarchicalTimerWheel Create()
    {
        var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), TimeProvider.System);
        if (Interlocked.CompareExchange(ref s_wheel, wheel, null) is { } winner) // CAS: one wheel per process
        {
            wheel.Dispose();
            return winner;
        }

        wheel.StartDriver();
        return wheel;
    }
}
