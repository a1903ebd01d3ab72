namespace LockFree.Internal;

/// <summary>
/// Creates the library's long-lived internal timers (a token or leaky bucket's pump, a queue's wake-up, a timer wheel
/// driver's sleep, the scheduler's scaling sample) without capturing the caller's <see cref="ExecutionContext"/>.
/// <see cref="TimeProvider.System"/>'s timers capture it, and such a timer is created by whichever caller first needs
/// it, inside that caller's request: before the review of 2026-11-23 its AsyncLocal values (an <c>Activity</c>, a
/// user, a logging scope) stayed reachable for the life of the owning object (the process, for the shared wheel of
/// timed waits), and the timer's callback ran inside them. The callbacks are the library's own and need no context;
/// the continuations they release restore their awaiters' contexts themselves. As the runtime's own internal timers
/// (<c>Task.Delay</c>, <c>CancellationTokenSource.CancelAfter</c>), which do not flow the context either.
/// </summary>
internal static class UnflowedTimer
{
    /// <summary><paramref name="time"/>.CreateTimer(...) with the execution context's flow suppressed.</summary>
    public static ITimer Create(TimeProvider time, TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (ExecutionContext.IsFlowSuppressed())
        {
            return time.CreateTimer(callback, state, dueTime, period);
        }

        AsyncFlowControl flow = ExecutionContext.SuppressFlow();
        try
        {
            return time.CreateTimer(callback, state, dueTime, period);
        }
        finally
        {
            flow.Undo();
        }
    }

    /// <summary>
    /// Arms <paramref name="timer"/> (created on first use, without the caller's context) on <see cref="TimeProvider.System"/>
    /// to call <paramref name="callback"/> once after <paramref name="dueTime"/>: the fallback of a component whose own
    /// clock's timer cannot be created or armed (a token bucket's pump, a leaky bucket's pacing, an ack queue's expiry
    /// pass), so its retry needs no other caller. The caller guards <paramref name="timer"/> and disposes it with itself.
    /// </summary>
    public static void ArmSystemFallback(ref ITimer? timer, TimerCallback callback, object state, TimeSpan dueTime)
    {
        timer ??= Create(TimeProvider.System, callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        timer.Change(dueTime, Timeout.InfiniteTimeSpan);
    }
}
