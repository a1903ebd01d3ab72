using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: the end-exactly-once state machine of one pooled Waiter, on its own so the controlled scheduler can run
// this exact code (tests/Concurrency/Backpressure/WaitStateTests.cs).
//
// One word: (generation << StateBits) | WaitStatus. Begin starts a wait: Pending (0) of the next generation. Every
// way a wait can end (signal, completion, timeout, cancellation, the waiter's own successful recheck) is one CAS
// from Pending of the generation the ender was given to a final status of that generation, so exactly one of them
// wins and the losers see the CAS fail and do nothing. The generation makes reuse safe: a late ender of an earlier
// wait (a timer callback, which ITimer.Dispose does not wait for) compares against its own generation's Pending,
// which the word never holds again, so it can never end a later wait. Generations wrap at 2^32 (a stale ender
// would have to sleep through four billion reuses of its waiter).
internal struct WaitState<TAtomics>
    where TAtomics : struct, IAtomics
{
    private const int StateBits = 3;
    private const long StateMask = (1 << StateBits) - 1;

    private long _word;

    /// <summary>How the current wait ended, or <see cref="WaitStatus.Pending"/>.</summary>
    public WaitStatus Status
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (WaitStatus)(TAtomics.LoadAcquire(ref _word) & StateMask); // acquire: pairs with the winning CAS
    }

    /// <summary>The generation of the current wait (grows with every <see cref="Begin"/>).</summary>
    public int Generation
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => GenerationOf(TAtomics.LoadAcquire(ref _word)); // acquire: the wait an ender is about to target
    }

    /// <summary>
    /// Starts the next wait (Pending of a new generation) and returns its generation. The owner calls it before the
    /// waiter is linked again, after the previous wait ended.
    /// </summary>
    public int Begin()
    {
        int generation = unchecked(GenerationOf(TAtomics.LoadAcquire(ref _word)) + 1); // acquire: the previous wait's end
        TAtomics.StoreRelease(ref _word, Pending(generation)); // release: the reset happens-before the waiter is linked
        return generation;
    }

    /// <summary>Ends the wait of <paramref name="generation"/> with <paramref name="status"/> unless it already ended or a later wait began; whether this call ended it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFinish(WaitStatus status, int generation)
    {
        long pending = Pending(generation);
        return TAtomics.CompareExchange(ref _word, pending | (long)status, pending) == pending; // full fence: the one transition out of Pending
    }

    /// <summary>Ends the current wait with <paramref name="status"/> unless it already ended (for an ender that cannot outlive the wait).</summary>
    public bool TryFinish(WaitStatus status) => TryFinish(status, Generation);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Pending(int generation) => (long)(uint)generation << StateBits;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int GenerationOf(long word) => unchecked((int)(uint)(word >> StateBits));
}
