using LockFree.Internal;

namespace LockFree.Timers;

// Design: the one seam through which the delay queue, the acknowledgement queue and the retry policy wait for
// time to pass. Nothing here blocks a thread. A wake-up is either a TimeProvider timer whose callback runs on the
// timer's thread (the default), or a timer on a HierarchicalTimerWheel the user supplies (its callback runs on the
// wheel's driving thread), so that one wheel thread serves the wake-ups of many queues. A delay is Task.Delay on
// the TimeProvider, or a wheel timer.
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
// due time. A delay re-arms itself on the fallback TimeProvider for the rest of its time (at once when already
// due), and its cancellation token cancels it there. The wheel pays for this only in Dispose: a type test per
// dropped timer; nothing on Schedule or Cancel.
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

/// <summary>Creates wake-ups and delays on a <see cref="TimeProvider"/>.</summary>
internal static class Wakeups
{
    /// <summary>The longest delay a wake-up or a delay accepts: the longest due time a <see cref="Timer"/> takes (about 49.7 days).</summary>
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

    /// <summary>Completes after <paramref name="delay"/> on <paramref name="time"/>'s clock without blocking a thread; cancelled by <paramref name="cancellationToken"/>.</summary>
    public static Task DelayAsync(TimeSpan delay, TimeProvider time, CancellationToken cancellationToken) =>
        delay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(delay, time, cancellationToken);

    /// <summary>
    /// Completes after <paramref name="delay"/> on <paramref name="wheel"/> (a timer on the wheel at the absolute due time
    /// <paramref name="delay"/> after this call on <paramref name="fallback"/>'s clock, which the wheel must read; its callback runs on
    /// the wheel's driving thread and only completes the task, whose continuations run asynchronously) without
    /// blocking a thread; cancelled by <paramref name="cancellationToken"/>, which also cancels the wheel timer. A wheel
    /// that refuses the timer (disposed, full, or the delay beyond its MaxDueIn) does not fail the wait: it falls back
    /// to <paramref name="fallback"/>'s timer, as the wake-ups do; neither does a wheel disposed while the timer is
    /// pending: the wait finishes on <paramref name="fallback"/>'s timer at the same time (<paramref name="delay"/>
    /// after this call, on <paramref name="fallback"/>'s clock), still cancelled by the token.
    /// </summary>
    public static Task DelayAsync(TimeSpan delay, HierarchicalTimerWheel wheel, TimeProvider fallback, CancellationToken cancellationToken)
    {
        if (delay <= TimeSpan.Zero)
        {
            return Task.CompletedTask;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        var wait = new WheelDelay(wheel, fallback);
        try
        {
            wait.Start(delay, cancellationToken);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException or ArgumentOutOfRangeException)
        {
            return Task.Delay(delay, fallback, cancellationToken); // Start throws only from Schedule, before registering
        }

        return wait.Task;
    }

    /// <summary>
    /// One wait on the wheel: the timer fires xor the token cancels it (the wheel's Cancel decides, exactly). When the
    /// wheel's Dispose drops the timer, the wait moves to a fallback timer and the token cancels it there.
    /// </summary>
    private sealed class WheelDelay(HierarchicalTimerWheel wheel, TimeProvider fallback)
        : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), IWheelDisposeListener
    {
        private TimerHandle _handle;
        private CancellationTokenRegistration _registration;
        private CancellationToken _token;
        private long _start;          // fallback timestamp of the call; with _delay, the end of the wait on the fallback clock
        private TimeSpan _delay;
        private ITimer? _fallbackTimer; // set once the wheel dropped the timer
        private int _dropped;           // 1 once the wheel's Dispose dropped the timer

        public void Start(TimeSpan delay, CancellationToken cancellationToken)
        {
            _token = cancellationToken; // plain, like _start and _delay: published to OnWheelDisposed by Schedule's release
            _delay = delay;
            _start = fallback.GetTimestamp();

            // At the absolute due time on the clock (the wheel reads the same one): never early however the wheel is
            // driven. The relative Schedule counts from the wheel's last advance, so on a manually driven wheel last
            // advanced long before this wait it fired at the next advance, early by that gap (review, 2026-11-23).
            // A clock about to pass long.MaxValue (only differences of timestamps mean anything) would wrap the due time
            // into the past: then the relative Schedule, whose tick arithmetic copes with the wrap.
            long dueIn = (long)Math.Ceiling(delay.Ticks * (fallback.TimestampFrequency / (double)TimeSpan.TicksPerSecond));
            long due = unchecked(_start + dueIn);
            _handle = due >= _start
                ? wheel.ScheduleAt(due, static state => ((WheelDelay)state!).Fire(), this)
                : wheel.Schedule(delay, static state => ((WheelDelay)state!).Fire(), this);
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(static (state, token) => ((WheelDelay)state!).Cancel(token), this);
                if (Task.IsCompleted)
                {
                    _registration.Dispose(); // fired before the registration: nothing left to cancel
                }
            }
        }

        /// <summary>The wheel was disposed with this wait's timer pending: finish on the fallback clock at the same time.</summary>
        public void OnWheelDisposed()
        {
            Interlocked.Exchange(ref _dropped, 1); // full fence: the flag before the token check; pairs with Cancel's read after the token was cancelled
            if (_token.IsCancellationRequested)
            {
                TrySetCanceled(_token); // Cancel ran before the flag and found the wheel's Cancel false
                return;
            }

            TimeSpan remaining = _delay - fallback.GetElapsedTime(_start);
            if (remaining <= TimeSpan.Zero)
            {
                Fire();
                return;
            }

            ITimer timer = fallback.CreateTimer(static state => ((WheelDelay)state!).Fire(), this, remaining, Timeout.InfiniteTimeSpan);
            Volatile.Write(ref _fallbackTimer, timer); // release: for Cancel and Fire, which dispose it
            if (Task.IsCompleted)
            {
                timer.Dispose(); // cancelled meanwhile
            }
        }

        private void Fire()
        {
            TrySetResult();
            _registration.Dispose();
            Volatile.Read(ref _fallbackTimer)?.Dispose(); // acquire: pairs with the write in OnWheelDisposed
        }

        private void Cancel(CancellationToken token)
        {
            // false from the wheel: it fired (or is firing), and the result stands; or the wheel's Dispose dropped the
            // timer, and then the fallback timer (or OnWheelDisposed, if it has not set the flag yet) is what we cancel.
            if (wheel.Cancel(_handle) || Volatile.Read(ref _dropped) != 0) // acquire: pairs with the exchange in OnWheelDisposed
            {
                TrySetCanceled(token);
                Volatile.Read(ref _fallbackTimer)?.Dispose(); // acquire: as in Fire
            }
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
