namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>
/// A blocking primitive for test protocols under the scheduler: an event count (as in Dmitry Vyukov's
/// eventcount / Linux futex usage). <see cref="PrepareWait"/> takes a ticket, <see cref="CommitWait"/> blocks
/// only if no <see cref="NotifyAll"/> happened since the ticket. A waiter that takes its ticket before checking its
/// condition cannot miss a wake-up; one that checks first and then waits can (the lost wake-up), and the
/// scheduler then reports a deadlock. Works only inside a controlled run.
/// </summary>
public sealed class ControlledEventCount
{
    private long _epoch;

    /// <summary>Takes a ticket: a later <see cref="NotifyAll"/> makes <see cref="CommitWait"/> return.</summary>
    public long PrepareWait()
    {
        Scheduler().SchedulingPoint("EventCount.PrepareWait");
        return _epoch;
    }

    /// <summary>Blocks until a notification after <paramref name="ticket"/> was taken (returns at once if one already happened).</summary>
    public void CommitWait(long ticket)
    {
        var s = Scheduler();
        s.SchedulingPoint("EventCount.CommitWait");
        while (_epoch == ticket) // checked and blocked on in one step: the primitive itself loses nothing
        {
            s.Block(this);
        }
    }

    /// <summary>Wakes every waiter whose ticket is older than now.</summary>
    public void NotifyAll()
    {
        var s = Scheduler();
        s.SchedulingPoint("EventCount.NotifyAll");
        _epoch++;
        s.WakeAll(this);
    }

    /// <inheritdoc/>
    public override string ToString() => $"EventCount(epoch {_epoch})";

    private static ControlledScheduler Scheduler() =>
        ControlledScheduler.Current ?? throw new InvalidOperationException("ControlledEventCount works only inside a controlled run.");
}
