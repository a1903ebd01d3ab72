using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: the per-side word of BackpressureBuffer's fast paths (what a write or read must do after its queue
// operation: AfterWork bits), with the completion handshake that rests on it, on its own so the controlled
// scheduler can run this exact code (tests/Concurrency/Backpressure/CompletionHandshakeTests.cs) under the TSO
// store-buffer simulation.
//
// Bits are only ever set (sticky), with one exception: the Parked bit, which a side's signaller may clear through
// ParkingGate.TryDisarm (one signaller) or TryDisarmShared (many, each publishing with a locked claim) once no waiter
// remains (see ParkingGate, "Disarming"). The fast path reads the word with one acquire load (a plain mov on x64) after its
// queue operation and no fence: a reader that takes the last item stores its head, then reads the word. Completion
// sets its bit and then reads the head (is the buffer drained?): a Dekker handshake whose reader side has no fence.
// So completion pays for both sides (asymmetric fences, as ParkingGate's first park): after setting the bit it runs a
// process-wide barrier, which forces every other thread's pending stores out. A reader that still read the bit as
// clear ran that load before the barrier reached its core, so its head store (earlier in program order) is visible to
// the completer's drained check; one that reads the bit set checks the drain itself. Either way someone finishes the
// buffer. Once per buffer, on a rare path.
internal struct StickyBits<TAtomics>
    where TAtomics : struct, IAtomics
{
    private long _bits;

    /// <summary>The bits (one acquire load, no fence): the fast path's question, asked after its queue operation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Read() => TAtomics.LoadAcquire(ref _bits); // acquire: kept after the queue operation; a plain mov on x64

    /// <summary>Sets <paramref name="bits"/> (they stay set); a full fence, even when they were set already.</summary>
    public void Set(long bits)
    {
        long seen = TAtomics.LoadAcquire(ref _bits); // acquire: the CAS below validates it
        while (true)
        {
            long previous = TAtomics.CompareExchange(ref _bits, seen | bits, seen); // full fence: the set before the caller's next load
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }

    /// <summary>Clears <paramref name="bits"/>; a full fence. Only for <c>ParkingGate.TryDisarm</c> and <c>TryDisarmShared</c> (see "Disarming" there).</summary>
    public void Clear(long bits)
    {
        long seen = TAtomics.LoadAcquire(ref _bits); // acquire: the CAS below validates it
        while (true)
        {
            long previous = TAtomics.CompareExchange(ref _bits, seen & ~bits, seen); // full fence: the clear before the caller's next load
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }

    /// <summary>
    /// Sets <paramref name="bits"/> unless they are all set already: the full fence is paid only by the call that may
    /// set them (a parker's "the other side must ask my gate", before its gate registration).
    /// </summary>
    public void SetIfClear(long bits)
    {
        if ((Read() & bits) != bits)
        {
            Set(bits);
        }
    }

    /// <summary>
    /// Sets <paramref name="bits"/> and then runs a process-wide barrier: on return, every fast-path caller either
    /// will see the bits or had its earlier stores (its queue operation) made visible to the caller's next loads.
    /// </summary>
    public void SetAndFlush(long bits)
    {
        Set(bits);
        TAtomics.ProcessWideBarrier(); // stands in for the fast path's missing fence: pairs with its queue store, then its load of the bits
    }
}
