namespace LockFree.Tests.Unit.Support;

/// <summary>
/// A <see cref="ManualTimeProvider"/> that runs a test's action on its next clock reading (once), then reads (or throws,
/// with <see cref="ThrowAfterHook"/>): lets a test act in the middle of a call, between two steps that read this clock.
/// </summary>
public sealed class HookedReadingClock(ManualTimeProvider inner) : TimeProvider
{
    private Action? _hook;

    /// <summary>When set, the reading that ran the hook throws <see cref="InvalidOperationException"/> ("clock failed") after it.</summary>
    public bool ThrowAfterHook { get; set; }

    /// <inheritdoc/>
    public override long TimestampFrequency => inner.TimestampFrequency;

    /// <summary>Runs <paramref name="hook"/> on the next <see cref="GetTimestamp"/> call (once).</summary>
    public void OnNextReading(Action hook) => Volatile.Write(ref _hook, hook);

    /// <inheritdoc/>
    public override long GetTimestamp()
    {
        Action? hook = Interlocked.Exchange(ref _hook, null);
        if (hook is not null)
        {
            hook();
            if (ThrowAfterHook)
            {
                throw new InvalidOperationException("clock failed");
            }
        }

        return inner.GetTimestamp();
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        inner.CreateTimer(callback, state, dueTime, period);
}
