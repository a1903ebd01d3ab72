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
    /// Completes after <paramref name="delay"/> on <paramref name="wheel"/> (a timer on the wheel; its callback runs on
    /// the wheel's driving thread and only completes the task, whose continuations run asynchronously) without
    /// blocking a thread; cancelled by <paramref name="cancellationToken"/>, which also cancels the wheel timer. A wheel
    /// that refuses the timer (disposed, full, or the delay beyond its MaxDueIn) does not fail the wait: it falls back
    /// to <paramref name="fallback"/>'s timer, as the wake-ups do.
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

        var wait = new WheelDelay(wheel);
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

    /// <summary>One wait on the wheel: the timer fires xor the token cancels it (the wheel's Cancel decides, exactly).</summary>
    private sealed class WheelDelay(HierarchicalTimerWheel wheel) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        private TimerHandle _handle;
        private CancellationTokenRegistration _registration;

        public void Start(TimeSpan delay, CancellationToken cancellationToken)
        {
            _handle = wheel.Schedule(delay, static state => ((WheelDelay)state!).Fire(), this);
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(static (state, token) => ((WheelDelay)state!).Cancel(token), this);
                if (Task.IsCompleted)
                {
                    _registration.Dispose(); // fired before the registration: nothing left to cancel
                }
            }
        }

        private void Fire()
        {
            TrySetResult();
            _registration.Dispose();
        }

        private void Cancel(CancellationToken token)
        {
            if (wheel.Cancel(_handle)) // false: it fired (or is firing), and the result stands
            {
                TrySetCanceled(token);
            }
        }
    }

    private sealed class TimerWakeup(TimeProvider time, TimerCallback callback, object state) : IWakeup
    {
        private readonly ITimer _timer = time.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

        public void Arm(long dueTimestamp, TimeSpan dueIn) => _timer.Change(dueIn < TimeSpan.Zero ? TimeSpan.Zero : dueIn, Timeout.InfiniteTimeSpan);

        public void Dispose() => _timer.Dispose();
    }

    /// <summary>A wake-up on a timer wheel: one pooled wheel node per arming, nothing allocated in steady state.</summary>
    private sealed class WheelWakeup(HierarchicalTimerWheel wheel, TimeProvider time, TimerCallback callback, object state) : IWakeup
    {
        private TimerHandle _handle; // the armed wheel timer (default: none); serialised by the owner
        private ITimer? _fallback;   // created the first time the wheel refuses
        private bool _disposed;

        public void Arm(long dueTimestamp, TimeSpan dueIn)
        {
            if (_disposed)
            {
                return;
            }

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
            }

            _fallback ??= time.CreateTimer(static s => ((WheelWakeup)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _fallback.Change(dueIn < TimeSpan.Zero ? TimeSpan.Zero : dueIn, Timeout.InfiniteTimeSpan);
        }

        public void Dispose()
        {
            _disposed = true;
            wheel.Cancel(_handle);
            _handle = default;
            _fallback?.Dispose();
        }

        private void Fire() => callback(state);
    }
}
