namespace LockFree;

// Design: the scheduler's own blocking steps and Thread.Interrupt.
//
// A Thread.Interrupt is delivered at the target thread's next blocking wait: a contended Monitor.Enter, an event
// wait, a Join, a Sleep. The scheduler blocks in a few places of its own, reached from user code (Task.Run and
// ForkJoin wake a parked worker under the sleepers' lock; Dispose joins threads) or from its worker loop (parking,
// retiring). Left alone, an interrupt meant for user code surfaced there instead: a parked worker's wait threw it
// unhandled and ended the process, a worker that had just stolen a batch lost the task it held when its wake-up of
// another worker threw, and a Dispose that threw half-way left later Dispose calls waiting forever.
//
// So these steps run uninterruptibly, as the .NET thread pool's own waits do: a lock or join that an interrupt
// breaks is retried, and the interrupt is posted again once the step is done, so the caller's next interruptible
// wait (in user code) still receives it. A worker that is idle drops an interrupt instead: no user code runs
// there to receive it, and a re-posted interrupt would break every later park.
internal static class InterruptDeferral
{
    /// <summary>Takes <paramref name="gate"/>'s monitor; an interrupt while blocked is deferred to <see cref="LockScope.Dispose"/>.</summary>
    public static LockScope Lock(object gate)
    {
        bool interrupted = false;
        while (true)
        {
            bool taken = false;
            try
            {
                Monitor.Enter(gate, ref taken);
                return new LockScope(gate, interrupted);
            }
            catch (ThreadInterruptedException) when (!taken)
            {
                interrupted = true; // nothing was done yet: try again, deliver it afterwards
            }
        }
    }

    /// <summary>Joins <paramref name="thread"/>; an interrupt while blocked is posted again afterwards.</summary>
    public static void Join(Thread thread)
    {
        bool interrupted = false;
        while (true)
        {
            try
            {
                thread.Join();
                break;
            }
            catch (ThreadInterruptedException)
            {
                interrupted = true;
            }
        }

        Redeliver(interrupted);
    }

    private static void Redeliver(bool interrupted)
    {
        if (interrupted)
        {
            Thread.CurrentThread.Interrupt();
        }
    }

    /// <summary>A held monitor; <see cref="Dispose"/> releases it and re-posts an interrupt deferred while taking it.</summary>
    public readonly ref struct LockScope
    {
        private readonly object _gate;
        private readonly bool _interrupted;

        internal LockScope(object gate, bool interrupted)
        {
            _gate = gate;
            _interrupted = interrupted;
        }

        /// <summary>Releases the monitor, then delivers a deferred interrupt.</summary>
        public void Dispose()
        {
            Monitor.Exit(_gate);
            Redeliver(_interrupted);
        }
    }
}
