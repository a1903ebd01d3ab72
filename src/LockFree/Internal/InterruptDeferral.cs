using System.Runtime.CompilerServices;

namespace LockFree.Internal;

// Design: the library's own blocking steps and Thread.Interrupt.
//
// A Thread.Interrupt is delivered at the target thread's next blocking wait: a contended Monitor.Enter, an event
// wait, a Join, a Sleep. The library blocks in places of its own, often after it changed state: a read that took an
// item then wakes a parked writer under the waiter list's lock; Task.Run and ForkJoin wake a parked scheduler worker
// under the sleepers' lock; Dispose joins threads; workers and the timer driver park. An interrupt meant for user
// code (one it left pending, or aimed at a thread it does not own) used to surface there: a read threw after taking
// its item (the item was lost), a parked scheduler worker or timer driver threw it unhandled and ended the process,
// a Dispose stopped half-way.
//
// So every lock the library takes goes through Lock below, and joins through Join: a step that an interrupt breaks
// is retried, and the interrupt is posted again once the step is done, so the caller's next interruptible wait (in
// user code) still receives it; the .NET thread pool's own waits are uninterruptible likewise. The uncontended path
// is one Monitor.TryEnter, which never blocks. A thread of the library's own that is idle (a parked worker, the
// timer driver) drops an interrupt instead: no user code runs there to receive it. Waits that belong to the caller
// (a blocking write or read, Join, ForkJoin) still throw it, and leave no trace, as a cancellation.
internal static class InterruptDeferral
{
    /// <summary>Takes <paramref name="gate"/>'s monitor; an interrupt while blocked is deferred to <see cref="LockScope.Dispose"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LockScope Lock(object gate)
    {
        bool taken = false;
        Monitor.TryEnter(gate, ref taken); // never blocks, so never throws an interrupt
        return taken ? new LockScope(gate, interrupted: false) : LockContended(gate);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static LockScope LockContended(object gate) => new(gate, EnterContended(gate));

    /// <summary>
    /// As <see cref="Lock"/> without the scope: takes <paramref name="gate"/>'s monitor and returns whether an interrupt
    /// was deferred, to be handed to <see cref="Exit"/> (the atomics seam's lock, <see cref="IAtomics.EnterLock"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Enter(object gate)
    {
        bool taken = false;
        Monitor.TryEnter(gate, ref taken); // never blocks, so never throws an interrupt
        return !taken && EnterContended(gate);
    }

    /// <summary>Releases <paramref name="gate"/>'s monitor taken by <see cref="Enter"/>, then delivers a deferred interrupt.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Exit(object gate, bool interrupted)
    {
        Monitor.Exit(gate);
        Redeliver(interrupted);
    }

    /// <summary>Blocks for the monitor; whether an interrupt was deferred meanwhile.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool EnterContended(object gate)
    {
        bool interrupted = false;
        while (true)
        {
            bool taken = false;
            try
            {
                Monitor.Enter(gate, ref taken);
                return interrupted;
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

    /// <summary>
    /// Sets <paramref name="signal"/>; an interrupt while blocked is posted again afterwards. ManualResetEventSlim.Set
    /// takes the event's own monitor to pulse a thread blocked in Wait, and when that monitor is contended (the waiter is
    /// just entering or leaving its wait) the Monitor.Enter delivers a pending interrupt: Set threw with the state set
    /// but the waiter not pulsed, so it slept on, and the caller lost what it held (a scheduler worker the task it had
    /// just taken). A retried Set pulses (the state is already set).
    /// </summary>
    public static void Set(ManualResetEventSlim signal)
    {
        bool interrupted = false;
        while (true)
        {
            try
            {
                signal.Set();
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
