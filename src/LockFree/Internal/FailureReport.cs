namespace LockFree.Internal;

/// <summary>
/// How the library reports an exception it caught on a thread where nothing may escape (a timer thread, a wheel's
/// driver): count it, then raise the owner's event; the handler's own exceptions are swallowed, since they would
/// escape on that same thread.
/// </summary>
internal static class FailureReport
{
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
