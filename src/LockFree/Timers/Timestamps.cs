namespace LockFree.Timers;

/// <summary>
/// Wrap-safe arithmetic on the timestamps of a <see cref="TimeProvider"/> for the delay queue and the ack queue: a
/// timestamp is a counter that may start anywhere (negative, near <see cref="long.MaxValue"/>) and wrap, so only
/// differences mean anything (as <see cref="TimeProvider.GetElapsedTime(long, long)"/> uses them). Two timestamps are
/// compared by the sign of their difference, exact while they lie within 2^63 timestamps of each other (about 29,000
/// years at 10^7 per second; pending due times lie within <see cref="Wakeups.MaxDelay"/> of a reading).
/// </summary>
internal static class Timestamps
{
    /// <summary>
    /// A delay queue's due time "at once, whatever the clock reads": an item put back while the clock threw (it has no
    /// reading). It sorts before every other due time and is due at every reading. No real due time takes this value
    /// (<see cref="DueAt"/> moves it). It is also the published root's "a drain is in progress": both tell the lock-free
    /// "nothing due" check to take the lock.
    /// </summary>
    public const long DueNow = long.MinValue;

    /// <summary>Whether timestamp <paramref name="a"/> is before <paramref name="b"/> (wrap-safe).</summary>
    public static bool IsBefore(long a, long b) => unchecked(a - b) < 0;

    /// <summary>Whether timestamp <paramref name="a"/> is at or before <paramref name="b"/> (wrap-safe).</summary>
    public static bool IsAtOrBefore(long a, long b) => unchecked(a - b) <= 0;

    /// <summary>
    /// The due time <paramref name="dueIn"/> timestamps after the reading <paramref name="now"/>, wrapping past
    /// <see cref="long.MaxValue"/>. A sum that lands on <see cref="DueNow"/> is moved: one timestamp earlier when
    /// <paramref name="dueIn"/> is 0 (the due time is the reading itself, already past: no reading can come before it),
    /// else one later (never early).
    /// </summary>
    public static long DueAt(long now, long dueIn)
    {
        long due = unchecked(now + dueIn);
        return due != DueNow ? due : dueIn == 0 ? long.MaxValue : DueNow + 1;
    }
}
