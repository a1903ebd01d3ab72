using LockFree.Internal;

namespace LockFree.Timers;

/// <summary>
/// The library's own timer wheel on <see cref="TimeProvider.System"/>, for the timeouts of its asynchronous waits:
/// a 1 ms tick, created with its driver thread (a background thread that sleeps until the next expiry) on first use,
/// never disposed. Schedule and Cancel are lock-free and allocate nothing, where an <see cref="ITimer"/> per wait
/// costs an allocation and a timer-queue insertion. Timeouts are scheduled at their absolute due time (one clock
/// reading), so they fire no earlier than asked, however late the driver ran, and about a tick or two later, as
/// <see cref="TimeProvider.System"/>'s own timers do at their granularity. While its driver thread cannot be started
/// (see <see cref="LazyDrivenWheel"/>) there is no wheel: the waits use an <see cref="ITimer"/> each.
/// </summary>
internal static class SharedTimerWheel
{
    /// <summary>How long after a failed start of the driver thread the next use tries again (each try creates a thread).</summary>
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);

    private static readonly LazyDrivenWheel s_source = new(static () => new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), TimeProvider.System), RetryAfterFailure);

    /// <summary>
    /// The wheel with its driver running, created and started on first use; null while the driver thread cannot be
    /// started (counted in <see cref="DriverStartFailures"/>, retried on a use at least a second later): the caller
    /// then arms a <see cref="TimeProvider"/> timer, which fires without the wheel.
    /// </summary>
    public static HierarchicalTimerWheel? Driven => s_source.TryGet() ?? NoDriver();

    /// <summary>Failed starts of the shared wheel's driver thread so far (each one a period of per-wait timers instead).</summary>
    public static long DriverStartFailures => s_source.StartFailures;

    /// <summary>The exception of the last failed start of the driver thread, or null.</summary>
    public static Exception? LastDriverStartFailure => s_source.LastStartFailure;

    /// <summary>The driver is not running: make sure the failure counter is published (lockfree.timer.shared.driver_start_failures).</summary>
    private static HierarchicalTimerWheel? NoDriver()
    {
        TimerWheelMetrics.EnsureInstruments();
        return null;
    }

    /// <summary>
    /// Schedules <paramref name="callback"/> on <paramref name="wheel"/> (this class's, or a test's) after
    /// <paramref name="dueIn"/>; false (nothing scheduled) when the wheel refuses it (beyond its range, disposed, or
    /// the pool at its limit), so the caller falls back to a <see cref="TimeProvider"/> timer.
    /// </summary>
    public static bool TrySchedule(HierarchicalTimerWheel wheel, TimeSpan dueIn, Action<object?> callback, object state, out TimerHandle handle) =>
        TryScheduleFromNow(wheel, dueIn, callback, state, out handle, out _);

    /// <summary>
    /// As <see cref="TrySchedule(HierarchicalTimerWheel, TimeSpan, Action{object?}, object, out TimerHandle)"/>, and gives
    /// the wheel clock's reading the due time counts from (<paramref name="now"/>; 0 when nothing was scheduled), for a
    /// caller that must finish the wait elsewhere at the same due time (a retry's backoff when the wheel is disposed).
    /// </summary>
    public static bool TryScheduleFromNow(HierarchicalTimerWheel wheel, TimeSpan dueIn, Action<object?> callback, object state, out TimerHandle handle, out long now)
    {
        now = 0;
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
            // A due time that wraps past long.MaxValue goes the relative way (the wheel's tick arithmetic copes). Never on
            // TimeProvider.System (timestamps from boot, and MaxDueIn at most ~1.1e18 timestamps ahead: centuries of uptime
            // to wrap); on a user's clock (a RetryPolicy's own wheel) it is reachable and needed: on a fine clock a delay
            // of seconds can lie 2^62 timestamps or more ahead, or saturate the conversion at long.MaxValue, and ScheduleAt
            // reads a wrapped due time that far away numerically, as already past: due at once, early by the whole delay
            // (SharedTimerWheelScheduleTests, 2^60 timestamps a second). Near long.MaxValue at an ordinary rate either way
            // is right (ScheduleAt reads a nearby wrapped due time by the signed difference).
            TimeProvider clock = wheel.TimeProvider;
            now = clock.GetTimestamp();
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
}

/// <summary>
/// A wheel created and driven on first use, handed out only once its driver thread runs. A failed start (the thread
/// could not be created or started: <see cref="OutOfMemoryException"/>, <see cref="ThreadStartException"/>, or the
/// wheel could not be created) is counted, its exception kept, and retried on the first use after
/// <c>retryAfter</c>; meanwhile <see cref="TryGet"/> answers null and the callers use their per-wait timers. Before
/// the review of 2026-11-23 the shared wheel was published before its driver started: a failed start reached one
/// caller, and every later timed wait was scheduled on a wheel that nothing drove, so its timeout never fired.
/// </summary>
/// <param name="create">Creates the wheel (once; a wheel whose driver failed to start is kept and started again).</param>
/// <param name="retryAfter">How long after a failed start the next try is made.</param>
internal sealed class LazyDrivenWheel(Func<HierarchicalTimerWheel> create, TimeSpan retryAfter)
{
    private readonly object _lock = new();
    private readonly long _retryAfterMs = (long)retryAfter.TotalMilliseconds;
    private HierarchicalTimerWheel? _driven; // published once its driver runs; never unpublished
    private HierarchicalTimerWheel? _wheel;  // created, maybe not yet driven; under _lock
    private long _retryAt = long.MinValue;   // Environment.TickCount64 from which a failed start is tried again
    private long _startFailures;
    private Exception? _lastStartFailure;

    /// <summary>Failed starts so far.</summary>
    public long StartFailures => Interlocked.Read(ref _startFailures);

    /// <summary>The exception of the last failed start, or null.</summary>
    public Exception? LastStartFailure => Volatile.Read(ref _lastStartFailure);

    /// <summary>The driven wheel; null while its driver cannot be started (the caller uses another timer).</summary>
    public HierarchicalTimerWheel? TryGet() => Volatile.Read(ref _driven) ?? TryStart(); // acquire: pairs with the release in TryStart

    private HierarchicalTimerWheel? TryStart()
    {
        if (Environment.TickCount64 < Interlocked.Read(ref _retryAt))
        {
            return null; // backing off after a failure: no lock, no thread creation per wait
        }

        using (InterruptDeferral.Lock(_lock))
        {
            if (_driven is not null)
            {
                return _driven;
            }

            if (Environment.TickCount64 < _retryAt)
            {
                return null;
            }

            try
            {
                _wheel ??= create();
                _wheel.StartDriver(); // rolls itself back when the thread does not start, so it can be called again
                Volatile.Write(ref _driven, _wheel); // release: the wheel and its running driver, for TryGet's acquire
                return _wheel;
            }
            catch (Exception ex)
            {
                // The wait that met the failure is not failed for it: it falls back like every wait until the retry.
                Interlocked.Increment(ref _startFailures);
                Volatile.Write(ref _lastStartFailure, ex);
                Interlocked.Exchange(ref _retryAt, Environment.TickCount64 + _retryAfterMs);
                return null;
            }
        }
    }
}
