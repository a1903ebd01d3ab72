namespace LockFree.Internal;

/// <summary>
/// How the library reports an exception it caught on a thread where nothing may escape (a timer thread, a wheel's
/// driver): count it, then raise the owner's event; the handler's own exceptions are swallowed, since they would
/// escape on that same thread.
/// </summary>
internal static class FailureReport
{
    /// <summary>The first retry after a failure: soon, so a one-off failure costs about a millisecond.</summary>
    private static readonly long MinRetryTicks = TimeSpan.FromMilliseconds(1).Ticks;

    /// <summary>The longest retry (doubling from the first): a failure that persists costs one attempt (and one report) per second.</summary>
    private static readonly long MaxRetryTicks = TimeSpan.FromSeconds(1).Ticks;

    /// <summary>
    /// The next retry delay after a failure, doubling from 1 ms to 1 s; <paramref name="retryTicks"/> holds the current
    /// one (0: the last attempt succeeded; the caller resets it then) and is guarded by the caller.
    /// </summary>
    public static TimeSpan NextRetry(ref long retryTicks)
    {
        retryTicks = retryTicks == 0 ? MinRetryTicks : Math.Min(retryTicks * 2, MaxRetryTicks);
        return TimeSpan.FromTicks(retryTicks);
    }

    /// <summary>
    /// Runs a drop callback (<c>ItemDropped</c>) for an item its writer already dropped or evicted: an exception it throws
    /// is counted in <paramref name="counter"/> and handed to <paramref name="handler"/>, never thrown into the writer.
    /// </summary>
    public static void InvokeDropped<T>(Action<T, DropReason>? callback, T item, DropReason reason, ref long counter, EventHandler<Exception>? handler, object sender)
    {
        if (callback is null)
        {
            return;
        }

        try
        {
            callback(item, reason);
        }
        catch (Exception error)
        {
            Raise(ref counter, handler, sender, error);
        }
    }

    /// <summary>Increments <paramref name="counter"/>, then raises <paramref name="handler"/>(<paramref name="sender"/>, <paramref name="exception"/>), swallowing what it throws.</summary>
    public static void Raise(ref long counter, EventHandler<Exception>? handler, object sender, Exception exception)
    {
        Interlocked.Increment(ref counter);
        try
        {
            handler?.Invoke(sender, exception);
        }
        catch (Exception)
        {
            // A failing handler must not end the thread either; the counter still records the failure.
        }
    }
}
