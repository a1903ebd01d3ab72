using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: completion from any thread on a single-writer BackpressureBuffer, on its own so the controlled scheduler can
// run this exact code (tests/Concurrency/Backpressure/ForeignCompletionTests.cs) under the TSO store-buffer simulation.
//
// The hole it closes: the one writer checks "not completed" and then publishes its item; nothing closes its engine's
// tail (no claim CAS: that is what makes it fast). A completer on another thread that ran between the two found the
// buffer empty and finished it (Completion completed, ReadAllAsync ended), and the item landed afterwards: the write
// answered Accepted and no drain-style reader ever saw the item.
//
// The mark: the writer stores 1 before its completed-check and 0 after its publish (both plain movs on x64, to a word
// alone on its cache line, which only the writer writes). The completer sets the completed flag and the Completed bit
// of the writer's after-work word (both full fences), runs a process-wide barrier (shared with the reader handshake of
// StickyBits.SetAndFlush), and reads the mark:
// - the writer's completed-check ran after the barrier reached its core: it sees the flag and publishes nothing;
// - it ran before: the mark's 1 was stored before it in program order, so the barrier made it visible; the completer
//   reads 1 (the write is in flight) or the later 0 (the write is over: the 0 is a release store after the publish, the
//   completer's read an acquire load, so its drained check that follows sees the item).
// Reading 1, the completer does not finish the buffer and does not wait: it leaves the finish to the writer. The writer,
// after its 0, reads its after-work word (the load its fast path makes anyway) and, seeing Completed, finishes the
// buffer if drained. That load is after the store of 0 with no fence between, the same Dekker shape again, covered by
// the same barrier: if the load ran before the barrier reached the writer's core, so did the store of 0 (earlier in
// program order), and the completer reads 0, not 1. So whenever the completer reads 1, the writer sees Completed.
// Completion therefore never blocks on a preempted writer, and a writer that completes from inside its own write (a
// user clock read while stamping an item) finishes the buffer itself at the end of that write.
//
// Writer done: a reader that drains the buffer after the completion must not finish it while such a write is still in
// flight either, and a reader cannot read the mark (the writer's store of 1 may still sit in its store buffer: only the
// completer's barrier flushes it). So nobody finishes a single-writer buffer before a second word, Done, is set: by the
// completer when it read the mark clear, or by the writer when it saw Completed at the end of a write (every later
// write of that writer sees the completed flag, set before the bit, and publishes nothing). Either way no publish can
// follow, and the setter then tries to finish. The setter (a CAS: full fence, then its drained check) and a reader that
// took the last item (its head store, then its read of Done) are a Dekker pair again: the reader fences before reading
// Done, but only while Done still reads 0 (draining after completion, a rare phase; once Done is set, no fence).
//
// Cost: two plain stores per write, on a line the writer owns; the completer pays nothing extra (the barrier was there
// already); a draining reader pays a fence per read until Done is set. Compiler ordering: the mark's stores are release
// stores and the checks acquire loads. Acquire/release alone would let a store move below a later load; the argument
// relies, as ParkingGate's and StickyBits' fence-free sides do, on the JIT emitting volatile accesses in program order,
// and covers the store-load reordering the hardware may do with the barrier. Many-writer buffers need none of
// this: their completion closes the engine's tail with a CAS, so a claim either lands before the close (and is drained
// before the finish) or fails.
internal struct InWriteMark<TAtomics> : IInWriteMark
    where TAtomics : struct, IAtomics
{
    // Index: the mark, 1 while the one writer is between its completed-check and the end of its write; Cached: Done
    // (0, then 1 once no publish can follow the completion). Alone on their line: the writer stores the mark every write,
    // and Done is read only once the buffer is completed.
    private PaddedIndexPair _words;

    /// <summary>The mark's word, for the layout unit test (how far it lies from the fields the reader keeps hot).</summary>
    [UnscopedRef]
    internal ref long MarkWord => ref _words.Index;

    /// <summary>Writer: a write begins (before its completed-check).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter() => TAtomics.StoreRelease(ref _words.Index, 1); // a plain mov on x64: ordered before the completed-check by the completer's barrier, not by a fence here

    /// <summary>Writer: the write is over (after its publish, before its read of the after-work word).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit() => TAtomics.StoreRelease(ref _words.Index, 0); // release: the publish before it; pairs with the acquire in WriterIdle

    /// <summary>
    /// Completer, after setting the completed flag and the writer's Completed bit and running the process-wide barrier:
    /// whether no write that began before the completion is still in flight (false: that write sets Done).
    /// </summary>
    public bool WriterIdle() => TAtomics.LoadAcquire(ref _words.Index) == 0; // acquire: pairs with Exit's release (a cleared mark shows the publish)

    /// <summary>
    /// The completer that found the writer idle, or the writer that saw Completed after a write: no publish can follow.
    /// A full fence before the caller's drained check. It must stay a locked instruction also when Done is already set: on
    /// the writer's side it also makes the mark's clear globally visible before the drained check. The process-wide
    /// barrier reaches each core at its own moment (membarrier), so the head store of a reader that read the Completed
    /// bit as clear may become visible only after the writer's drained check; then the writer's clear was visible before
    /// the completer read the mark (the fence), and the completer, reading 0, makes the check itself after its barrier.
    /// The controlled scheduler drains every store buffer at one instant, so its model cannot show this (review, s9).
    /// </summary>
    public void SetDone() => TAtomics.CompareExchange(ref _words.Cached, 1, 0); // full fence: Done before our drained check; pairs with the fence in IsDone

    /// <summary>
    /// A finisher, before its drained check: whether no publish can follow any more. Fences (store-load: a reader's head
    /// store before this read) only while Done still reads 0.
    /// </summary>
    public bool IsDone()
    {
        if (TAtomics.LoadAcquire(ref _words.Cached) != 0) // acquire: pairs with SetDone (the writer's last publish before it)
        {
            return true;
        }

        TAtomics.FullFence(); // store-load: our head store (the read that drained) before the re-read; pairs with SetDone's CAS
        return TAtomics.LoadAcquire(ref _words.Cached) != 0; // acquire: as above
    }
}

/// <summary>
/// The face of the in-write mark, so the controlled-scheduler model runs the real <see cref="InWriteMark{TAtomics}"/> or
/// a planted twin through one struct type argument (the buffer itself calls the struct directly).
/// </summary>
internal interface IInWriteMark
{
    /// <summary>Writer: a write begins.</summary>
    void Enter();

    /// <summary>Writer: the write is over.</summary>
    void Exit();

    /// <summary>Completer, after its barrier: whether no write is in flight.</summary>
    bool WriterIdle();

    /// <summary>No publish can follow (completer or writer); a full fence.</summary>
    void SetDone();

    /// <summary>A finisher's question before its drained check.</summary>
    bool IsDone();
}
