using LockFree.Internal;

namespace LockFree;

// Design: the end-exactly-once protocol of a retry's backoff wait, which the pooled ExecuteAsync operation owns (no Task
// per wait; session 13, the last leftover of acceptance gap A). One word: the wait's generation (grows with every wait,
// so a TimeProvider timer of an earlier wait, which an ITimer's Dispose does not stop mid-callback, can never end a later
// one), a Parked bit and the status. Its enders (the timer, the token's cancellation, the wheel's Dispose) race for one
// CAS out of Pending; the losers do nothing more. The arming thread raises Parked with one CAS from Pending once everything
// is armed: an ender that ended the wait before it leaves the operation to the arming thread, which goes on inline; one
// that ended it after resumes the operation. So the operation runs on one thread at a time, and nothing resumes it while
// its arming thread still writes its fields.
//
// A wheel timer's callback reads the operation after its CAS (it loses when the token won), so the operation must not
// be recycled while a fired callback may still touch it: Begin sets _timerRefs to 2 (the wait and the timer) for a wheel
// wait; a wheel Cancel that succeeds means the callback never runs; one that fails means it runs or ran (or the wheel's
// Dispose dropped the timer and tells the operation), and the wait's release (ReleaseByWait) and the losing callback
// (ReleaseByTimer) each drop a reference, the last returning the operation to its pool (Waiter's protocol). A callback
// that won touches nothing after its CAS (it resumes the operation, or leaves it to the arming thread): it keeps no
// reference, and the wait never asks for one back.
//
// Threading: Begin, TryPark and ReleaseByWait on the operation's thread of control; TryEnd and ReleaseByTimer on the
// enders' threads.

/// <summary>How a backoff wait ended.</summary>
internal enum BackoffWaitStatus
{
    /// <summary>Still waiting.</summary>
    Pending = 0,

    /// <summary>The delay passed.</summary>
    Fired = 1,

    /// <summary>The caller's token was cancelled first.</summary>
    Canceled = 2,

    /// <summary>The wheel's Dispose dropped the wait's timer: the rest of the delay moves to a <see cref="TimeProvider"/> timer.</summary>
    WheelDropped = 3,
}

/// <summary>The state of one pooled operation's backoff waits; see the design note. Generic over the atomics seam (production: <see cref="RealAtomics"/>).</summary>
/// <typeparam name="TAtomics">The atomics seam.</typeparam>
internal struct BackoffWaitState<TAtomics>
    where TAtomics : struct, IAtomics
{
    private const long StatusMask = 3;
    private const long ParkedBit = 4;
    private const int GenerationShift = 3;

    private long _word;      // generation << 3 | Parked | status
    private long _timerRefs; // 2 while a wheel wait is armed: the wait and the timer

    /// <summary>How the current wait ended (<see cref="BackoffWaitStatus.Pending"/> while it waits).</summary>
    public BackoffWaitStatus Status => (BackoffWaitStatus)(TAtomics.LoadAcquire(ref _word) & StatusMask); // acquire: pairs with the winning CAS

    /// <summary>The current wait's generation (an ender armed without a stamp reads it: it is held until the wait is released).</summary>
    public int Generation => GenerationOf(TAtomics.LoadAcquire(ref _word)); // acquire: the wait the ender targets

    /// <summary>
    /// Begins a wait: a new generation, pending and not parked; <paramref name="wheelTimer"/> when its timer is a wheel
    /// timer (two references). Call before arming anything; the arming (Schedule, CreateTimer, UnsafeRegister) publishes it.
    /// </summary>
    public int Begin(bool wheelTimer)
    {
        int generation = unchecked(GenerationOf(TAtomics.LoadAcquire(ref _word)) + 1); // acquire: the previous wait's end
        TAtomics.StoreRelease(ref _timerRefs, wheelTimer ? 2 : 0); // release: before the word, which the enders read first
        TAtomics.StoreRelease(ref _word, (long)generation << GenerationShift); // release: the reset before the timer and the registration publish the wait
        return generation;
    }

    /// <summary>
    /// An ender: ends the wait of <paramref name="generation"/> with <paramref name="status"/> unless it already ended.
    /// True when this call ended it; then <paramref name="resume"/> says whether the operation was parked (this ender
    /// resumes it) or not (its arming thread goes on inline). A loser does nothing more with the wait.
    /// </summary>
    public bool TryEnd(BackoffWaitStatus status, int generation, out bool resume)
    {
        long pending = (long)generation << GenerationShift;
        long word = TAtomics.LoadAcquire(ref _word); // acquire: pairs with Begin's release and TryPark's CAS
        while ((word & ~ParkedBit) == pending)
        {
            long seen = TAtomics.CompareExchange(ref _word, word | (long)status, word); // full fence: the one transition out of Pending
            if (seen == word)
            {
                resume = (word & ParkedBit) != 0;
                return true;
            }

            word = seen; // the arming thread parked meanwhile (the only other change while pending): once more
        }

        resume = false;
        return false;
    }

    /// <summary>
    /// The arming thread, once every ender is armed: true when the operation is parked (an ender resumes it; the caller
    /// touches nothing after); false when the wait already ended (the caller consumes it inline).
    /// </summary>
    public bool TryPark(int generation)
    {
        long pending = (long)generation << GenerationShift;
        return TAtomics.CompareExchange(ref _word, pending | ParkedBit, pending) == pending; // full fence: the fields armed before it, for the ender that resumes
    }

    /// <summary>
    /// The wait's side, when its wheel timer could not be cancelled (it fired, or the wheel dropped it) and the wait ended
    /// otherwise: drops the wait's reference; true when the operation may go back to its pool now, false when the
    /// losing callback still holds it (and returns it).
    /// </summary>
    public bool ReleaseByWait() =>
        TAtomics.IsPlanted(PlantedFault.BackoffReleaseIgnoresTimerRef) ||
        TAtomics.Add(ref _timerRefs, -1) == 0; // full fence: pairs with the callback's decrement

    /// <summary>A wheel callback that lost the race, when done with the operation: drops its reference; true when it is the last (it returns the operation).</summary>
    public bool ReleaseByTimer() => TAtomics.Add(ref _timerRefs, -1) == 0; // full fence: pairs with the wait's decrement

    private static int GenerationOf(long word) => unchecked((int)(word >> GenerationShift));
}
