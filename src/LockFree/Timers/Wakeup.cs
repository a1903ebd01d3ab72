using LockFree.Internal;

namespace LockFree.Timers;

// Design: the one seam through which the delay queue and the acknowledgement queue wait for time to pass, and the
// checks of delays and wheels that they and the retry policy share (the policy's backoff waits are its pooled
// operation's own since session 13: RetryPolicy.Execution.cs, BackoffWaitState). Nothing here blocks a thread. A
// wake-up is either a TimeProvider timer whose callback runs on the timer's thread (the default), or a timer on a
// HierarchicalTimerWheel the user supplies (its callback runs on the wheel's driving thread), so that one wheel
// thread serves the wake-ups of many queues.
//
// Wheel wake-ups are armed at the owner's absolute due timestamp (ScheduleAt: never early, at most one wheel tick
// late), which needs the wheel and the owner to read the same clock (the owners check it at construction). A
// re-arm cancels the previous wheel timer and schedules a new one; a timer already firing still calls back: a
// spurious wake-up, which every owner tolerates (it re-checks its due time and re-arms), exactly as a TimeProvider
// timer that fires while Change is called. When the wheel refuses (disposed, full, or the time beyond its
// MaxDueIn), the wake-up falls back to a TimeProvider timer, so a wake-up is never lost.
//
// A wheel disposed while one of these timers is pending drops it like any other (counted in DroppedCount), then
// tells its state (IWheelDisposeListener, internal: users' timers cannot implement it and keep their documented
// Dispose semantics) after its scan. A wake-up then fires once, spuriously, on the thread pool: its owner re-checks
// its due time and re-arms, the wheel refuses (disposed), and the wake-up moves to a TimeProvider timer at the same
// due time. (A retry's backoff wait is told the same way and finishes on a TimeProvider timer at the same time.) The
// wheel pays for this only in Dispose: a type test per dropped timer; nothing on Schedule or Cancel.
//
// Threading: Arm and Dispose of one wake-up are serialised by its owner (both owners call them under their lock);
// the callback may run concurrently with them.

/// <summary>A re-armable one-shot wake-up: calls its callback once when the armed time passes.</summary>
internal interface IWakeup : IDisposable
{
    /// <summary>
    /// Arms (or re-arms) the wake-up to fire once at <paramref name="dueTimestamp"/> (a timestamp of the owner's
    /// clock), which is <paramref name="dueIn"/> from now; an earlier arming is replaced (it may still fire once,
    /// spuriously, if it was already firing).
    /// </summary>
    void Arm(long dueTimestamp, TimeSpan dueIn);
}

/// <summary>
/// The state of a library-owned wheel timer: told, on the disposing thread after the scan, when the wheel's
/// <see cref="HierarchicalTimerWheel.Dispose"/> dropped the timer, so that the wait it backs moves to a
/// <see cref="TimeProvider"/> timer instead of hanging. Internal, so a user's timers never get the call.
/// </summary>
internal interface IWheelDisposeListener
{
    /// <summary>The wheel dropped this timer (it will never fire). Must be quick and must not throw.</summary>
    void OnWheelDisposed();
}

/// <summary>Creates wake-ups on a <see cref="TimeProvider"/> (or a wheel reading it), and checks the delays and wheels their owners are given.</summary>
internal static class Wakeups
{
    /// <summary>The longest delay the owners of wake-ups (and the retry policy) accept: the longest due time a <see cref="Timer"/> takes (about 49.7 days).</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="delay"/> is in [0, <see cref="MaxDelay"/>].</summary>
    public static void ValidateDelay(TimeSpan delay, string paramName)
    {
        if (delay < TimeSpan.Zero || delay > MaxDelay)
        {
            Throw(delay, paramName);
        }

        static void Throw(TimeSpan delay, string paramName) =>
            throw new ArgumentOutOfRangeException(paramName, delay, $"The delay must be in [0, {MaxDelay}].");
    }

    /// <summary>
    /// A wake-up on <paramref name="wheel"/> when given (the callback runs on the wheel's driving thread), else on a
    /// <paramref name="time"/> timer. The wheel must read <paramref name="time"/> (see <see cref="ValidateWheel"/>).
    /// </summary>
    public static IWakeup Create(TimeProvider time, HierarchicalTimerWheel? wheel, TimerCallback callback, object state) =>
        wheel is null ? new TimerWakeup(time, callback, state) : new WheelWakeup(wheel, time, callback, state);

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="wheel"/> reads another clock than <paramref name="time"/>.</summary>
    public static void ValidateWheel(HierarchicalTimerWheel? wheel, TimeProvider time, string paramName)
    {
        if (wheel is not null && !ReferenceEquals(wheel.TimeProvider, time))
        {
            throw new ArgumentException("The timer wheel must read the same TimeProvider as the queue (due times are timestamps of that clock).", paramName);
        }
    }

    private sealed class TimerWakeup(TimeProvider time, TimerCallback callback, object state) : IWakeup
    {
        private readonly ITimer _timer = UnflowedTimer.Create(time, callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); // not the creator's context: kept for the owner's life

        public void Arm(long dueTimestamp, TimeSpan dueIn) => _timer.Change(dueIn < TimeSpan.Zero ? TimeSpan.Zero : dueIn, Timeout.InfiniteTimeSpan);

        public void Dispose() => _timer.Dispose();
    }

    /// <summary>A wake-up on a timer wheel: one pooled wheel node per arming, nothing allocated in steady state.</summary>
    private sealed class WheelWakeup(HierarchicalTimerWheel wheel, TimeProvider time, TimerCallback callback, object state) : IWakeup, IWheelDisposeListener
    {
        private TimerHandle _handle; // the armed wheel timer (default: none); serialised by the owner
        private ITimer? _fallback;   // created the first time the wheel refuses
        private bool _disposed;      // written by the owner (serialised); read by OnWheelDisposed on the disposing thread
        private bool _wheelDisposed; // the wheel refused with ObjectDisposedException: every later arming is a fallback one; serialised by the owner

        public void Arm(long dueTimestamp, TimeSpan dueIn)
        {
            if (_disposed)
            {
                return;
            }

            if (!_wheelDisposed && PassesTheWrap(dueTimestamp, dueIn))
            {
                // Session 11: the wheel's ScheduleAt then read a due time past long.MaxValue as long past (a spurious wake-up
                // per advance until the clock wrapped too), so such an arming is timed by its span on the fallback timer.
                // Since s11-rev ScheduleAt is wrap-safe itself (a wheel created before a wrap and used after it fired every
                // due time at once: that case never passed through here); this rare path is kept as it was.
                wheel.Cancel(_handle);
                _handle = default;
            }
            else if (!_wheelDisposed)
            {
                wheel.Cancel(_handle); // false when it fired or is firing: then at most one spurious wake-up follows
                try
                {
                    _handle = wheel.ScheduleAt(dueTimestamp, static s => ((WheelWakeup)s!).Fire(), this);
                    _fallback?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                    return;
                }
                catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException or ArgumentOutOfRangeException)
                {
                    // The wheel was disposed, holds its maximum of timers, or the time is beyond its MaxDueIn.
                    _handle = default;
                    _wheelDisposed = ex is ObjectDisposedException; // for good: later arms skip the wheel (and the exception)
                }
            }

            _fallback ??= UnflowedTimer.Create(time, static s => ((WheelWakeup)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); // not the arming caller's context
            _fallback.Change(dueIn < TimeSpan.Zero ? TimeSpan.Zero : dueIn, Timeout.InfiniteTimeSpan);
        }

        /// <summary>Whether the clock passes long.MaxValue between now (<paramref name="dueIn"/> before the due time) and <paramref name="dueTimestamp"/>.</summary>
        private bool PassesTheWrap(long dueTimestamp, TimeSpan dueIn)
        {
            if (dueIn <= TimeSpan.Zero)
            {
                return false;
            }

            long dueInTimestamps = (long)Math.Ceiling(dueIn.Ticks * (time.TimestampFrequency / (double)TimeSpan.TicksPerSecond));
            return unchecked(dueTimestamp - dueInTimestamps) > dueTimestamp; // "now" numerically after the due time: it wrapped
        }

        public void Dispose()
        {
            Volatile.Write(ref _disposed, true); // release: OnWheelDisposed stops waking a disposed owner
            wheel.Cancel(_handle);
            _handle = default;
            _fallback?.Dispose();
        }

        /// <summary>
        /// The wheel dropped the armed timer: fire once, spuriously, on the thread pool (not the disposing thread: the
        /// owner's callback takes its lock and may run user code). The owner re-checks its due time and re-arms; the
        /// disposed wheel refuses, so the re-arm lands on a <see cref="TimeProvider"/> timer at the same due time.
        /// </summary>
        public void OnWheelDisposed()
        {
            if (!Volatile.Read(ref _disposed)) // acquire: pairs with the write in Dispose; a late call wakes a disposed owner harmlessly
            {
                ThreadPool.UnsafeQueueUserWorkItem(static wakeup => wakeup.FireOffTheWheel(), this, preferLocal: false);
            }
        }

        /// <summary>The spurious wake-up on the thread pool: a failure is reported as the wheel's would have been, not left to end the process.</summary>
        private void FireOffTheWheel()
        {
            try
            {
                Fire();
            }
            catch (Exception ex)
            {
                wheel.ReportCallbackFailure(ex); // the owners report their own failures; this guards the thread pool against any other
            }
        }

        private void Fire() => callback(state);
    }
}
