using System.Diagnostics;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: how long an asynchronous wait spins before it parks, adapted per buffer side.
//
// Why spin: a park costs the woken side a thread-pool hop (a work item, often the wake-up of an idle worker:
// microseconds, tens of them on a loaded VM), while a counterpart that is running on another core frees a slot
// (or publishes an item) every few tens of nanoseconds.
//
// Why short and adaptive: a spin helps only while the counterpart runs on another core. When it does not (it is
// parked itself and its wake-up is queued, the machine is loaded, more loops than cores), spinning only delays
// the moment this thread returns to the pool, which is often the thread that would run the counterpart: measured
// on the 2-vCPU VM, spins of 20-100 us made the asynchronous benchmark several times slower. So:
// - no spin at all on one core, or while the other side has a parked waiter or a wake-up still queued on the pool
//   (WaiterList.Count, WaiterList.WakesInFlight): it cannot make progress until some pool thread runs it;
// - otherwise the budget doubles after a spin that found its condition and halves after one that ran out, between
//   MinTicks and MaxTicks (a few microseconds, about what SpinWait spends before it would yield); the minimum
//   keeps probing, so a budget that fell can grow back.
// A spin never yields, so it never runs anyone else's code on this thread.
//
// Races: the budget is a plain long read and written by any waiter of its side without synchronisation. Every
// stored value lies in [MinTicks, MaxTicks] and an aligned 64-bit store does not tear on the 64-bit platforms,
// so a lost update only makes one spin a little longer or shorter.
internal struct AdaptiveSpin
{
    /// <summary>Whether spinning can help at all: another core may run the counterpart meanwhile.</summary>
    public static readonly bool Enabled = Environment.ProcessorCount > 1;

    /// <summary>The longest spin.</summary>
    private static readonly long MaxTicks = Math.Max(1, Stopwatch.Frequency * MaxMicroseconds / 1_000_000);

    /// <summary>The shortest spin: still long enough for a running counterpart to move a few items.</summary>
    private static readonly long MinTicks = Math.Max(1, Stopwatch.Frequency / 2_000_000);

    private const long MaxMicroseconds = 8;

    /// <summary>Normalized spin-wait iterations between two rechecks (each a shared-line read): a few tens of ns.</summary>
    private const int PauseIterations = 4;

    /// <summary>Rechecks between two reads of the clock (the clock costs about as much as a recheck).</summary>
    private const int RechecksPerClockRead = 8;

    private long _budgetTicks; // 0: nothing learned yet, start at MaxTicks

    /// <summary>
    /// Starts a spin of the current budget, or an empty one where spinning cannot help: on one core, and while
    /// <paramref name="counterpart"/> (the other side's waiters) is parked or has a wake-up still queued. Never under
    /// the controlled scheduler (a test seam): a spin timed by the real clock would make a schedule's steps depend on time.
    /// </summary>
    /// <typeparam name="TAtomics">The buffer's atomics seam.</typeparam>
    public readonly SpinRound Start<TAtomics>(WaiterList<TAtomics> counterpart)
        where TAtomics : struct, IAtomics =>
        Enabled && typeof(TAtomics) == typeof(RealAtomics) && counterpart.WakesInFlight == 0 && counterpart.Count == 0
            ? new SpinRound(_budgetTicks == 0 ? MaxTicks : _budgetTicks, Stopwatch.GetTimestamp())
            : default;

    /// <summary>Adapts the budget to how <paramref name="round"/> ended: its condition held (true) or the budget ran out.</summary>
    public void Finish(in SpinRound round, bool found)
    {
        if (round.Budget != 0)
        {
            long next = found ? Math.Min(MaxTicks, round.Budget * 2) : Math.Max(MinTicks, round.Budget / 2);
            if (next != _budgetTicks)
            {
                _budgetTicks = next; // only when it changes: a racy hint the side's threads share; at the bound it stays put (session 22)
            }
        }
    }

    /// <summary>One spin: call <see cref="Pause"/> before each recheck until it answers false.</summary>
    public struct SpinRound(long budget, long start)
    {
        private int _rechecks;

        /// <summary>The budget this round started with (0: spinning is disabled).</summary>
        public readonly long Budget => budget;

        /// <summary>Pauses briefly; false (without pausing) once the budget is spent.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Pause()
        {
            if (budget == 0)
            {
                return false;
            }

            _rechecks++;
            if (_rechecks % RechecksPerClockRead == 0 && Stopwatch.GetTimestamp() - start >= budget)
            {
                return false;
            }

            Thread.SpinWait(PauseIterations);
            return true;
        }
    }
}
