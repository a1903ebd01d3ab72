namespace LockFree.Timers;

// Design: the one seam through which the delay queue, the acknowledgement queue and the retry policy wait for
// time to pass. Nothing here blocks a thread: a wake-up is a TimeProvider timer whose callback runs on the
// timer's thread, and a delay is Task.Delay on the same TimeProvider. The hierarchical timer wheel can replace
// both later by changing this file only (a wheel-backed IWakeup, and a wheel-backed DelayAsync).

/// <summary>A re-armable one-shot wake-up: calls its callback once when the armed time passes.</summary>
internal interface IWakeup : IDisposable
{
    /// <summary>Arms (or re-arms) the wake-up to fire once, <paramref name="dueIn"/> from now; an earlier arming is replaced.</summary>
    void Arm(TimeSpan dueIn);
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

    /// <summary>A wake-up that calls <paramref name="callback"/> with <paramref name="state"/> on a timer thread.</summary>
    public static IWakeup Create(TimeProvider time, TimerCallback callback, object state) => new TimerWakeup(time, callback, state);

    /// <summary>Completes after <paramref name="delay"/> on <paramref name="time"/>'s clock without blocking a thread; cancelled by <paramref name="cancellationToken"/>.</summary>
    public static Task DelayAsync(TimeSpan delay, TimeProvider time, CancellationToken cancellationToken) =>
        delay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(delay, time, cancellationToken);

    /// <summary>
    /// Completes after <paramref name="delay"/> on <paramref name="wheel"/> (a timer on the wheel; its callback runs on
    /// the wheel's driving thread and only completes the task, whose continuations run asynchronously) without
    /// blocking a thread; cancelled by <paramref name="cancellationToken"/>, which also cancels the wheel timer.
    /// </summary>
    public static Task DelayAsync(TimeSpan delay, HierarchicalTimerWheel wheel, CancellationToken cancellationToken)
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
        wait.Start(delay, cancellationToken);
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

        public void Arm(TimeSpan dueIn) => _timer.Change(dueIn < TimeSpan.Zero ? TimeSpan.Zero : dueIn, Timeout.InfiniteTimeSpan);

        public void Dispose() => _timer.Dispose();
    }
}
