namespace LockFree.Timers;

/// <summary>Process-wide identities of timer wheels, stamped into their handles (non-generic: one counter for every engine instantiation).</summary>
internal static class TimerWheelIds
{
    private static int s_last;

    /// <summary>A new identity, never 0 (the default handle's).</summary>
    public static int Next()
    {
        while (true)
        {
            int id = Interlocked.Increment(ref s_last);
            if (id != 0)
            {
                return id;
            }
        }
    }
}
