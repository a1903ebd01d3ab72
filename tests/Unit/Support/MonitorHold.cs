namespace LockFree.Tests.Unit.Support;

/// <summary>Holds a monitor the code under test needs, to make one of its locks contended on cue.</summary>
internal static class MonitorHold
{
    /// <summary>
    /// Takes <paramref name="monitor"/>, sets <paramref name="held"/>, waits (bounded) until the other thread sets
    /// <paramref name="reaching"/> just before the step that needs the monitor, lingers so that it blocks there, then
    /// releases the monitor.
    /// </summary>
    public static void Until(object monitor, ManualResetEventSlim held, ManualResetEventSlim reaching, TimeSpan timeout)
    {
        Monitor.Enter(monitor);
        try
        {
            held.Set();
            if (!reaching.Wait(timeout))
            {
                throw new TimeoutException("The other thread never reached the step that needs the held monitor.");
            }

            Thread.Sleep(50); // let it reach the held monitor
        }
        finally
        {
            Monitor.Exit(monitor);
        }
    }
}
