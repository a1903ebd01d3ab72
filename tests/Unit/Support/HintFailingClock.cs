using System.Diagnostics;

namespace LockFree.Tests.Unit.Support;

/// <summary>
/// A manual clock whose readings throw, while <see cref="Fail"/> is set, when taken for a retry hint: made inside a method
/// named <c>EstimateRetryAfter</c> (BackpressureBuffer's and DelayQueue's, both never inlined), so a write's other readings
/// (an item's stamp or due time, a deadline) still work.
/// </summary>
public sealed class HintFailingClock(ManualTimeProvider inner) : TimeProvider
{
    private volatile bool _fail;

    /// <summary>Whether readings taken for a retry hint throw <see cref="InvalidOperationException"/> ("clock failed").</summary>
    public bool Fail
    {
        get => _fail;
        set => _fail = value;
    }

    /// <inheritdoc/>
    public override long TimestampFrequency => inner.TimestampFrequency;

    /// <inheritdoc/>
    public override long GetTimestamp()
    {
        if (_fail && IsForTheRetryHint())
        {
            throw new InvalidOperationException("clock failed");
        }

        return inner.GetTimestamp();
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        inner.CreateTimer(callback, state, dueTime, period);

    /// <summary>Whether a hint method is on the stack.</summary>
    private static bool IsForTheRetryHint()
    {
        foreach (StackFrame frame in new StackTrace().GetFrames())
        {
            if (frame.GetMethod()?.Name == "EstimateRetryAfter")
            {
                return true;
            }
        }

        return false;
    }
}
