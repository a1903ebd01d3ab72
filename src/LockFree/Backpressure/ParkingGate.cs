using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: the lost-wake-up handshake of WaiterList, on its own so the controlled scheduler can run this exact
// code (tests/Concurrency/Backpressure/ParkingGateTests.cs) under a TSO store-buffer simulation.
//
// The protocol is Dekker's: a waiter registers (Waiters += 1), then rechecks its condition; a signaller publishes
// (its queue store), then reads Waiters. Each side needs store-load order between its store and its load, or
// both can read stale values (the signaller sees no waiter, the waiter sees no item) and the waiter sleeps on.
// The waiter's side is a full fence (the atomic add). The signaller's side is where the cost would land on
// every write, so it is paid as you go (asymmetric fences, as Linux membarrier): until the first waiter ever
// registers, signallers read Waiters with no fence, and that first waiter runs a process-wide barrier after
// raising EverParked, which forces every other thread's pending stores out (a signaller's publish included)
// before its recheck. From then on signallers fence before the read (a few ns) and waiters need only their own
// full fence. A signaller that still reads EverParked as 0 after the first waiter raised it ran its loads
// before that waiter's barrier reached its core, so the barrier covers it.
//
// The first park is a window, not a point: between the first parker raising the flag and the end of its barrier,
// a second registrant that saw the flag raised and skipped the barrier could recheck before that barrier flushed a
// signaller that read the flag clear (and so neither fenced nor signalled), and sleep beside an item the first
// parker's barrier was about to expose (two items published, the first parker takes one). So the flag has three
// states and a registrant that does not see BarrierDone runs a barrier itself; only registrants racing the first
// park ever pay it (tests/Concurrency/Backpressure/FirstParkWindowTests.cs finds the two-state variant's lost wake-up). A signaller that read Never read it before any registrant's barrier completed (each raises the
// flag before its barrier), so that barrier flushed its publish; BarrierDone is stored only after a barrier, so a
// registrant that sees it rechecks after the publish became visible.
//
// Encoding: _waiters counts registered waiters; _everParked is Never (0) until the first registration, Raised (1)
// while a registrant runs its barrier, then BarrierDone (2) (a late racing registrant may store Raised and then
// BarrierDone again: signallers treat both as "fence").
//
// Arming (RegisterArming): the back-pressure buffer's signallers do not even call HasWaiters unless an armed bit (the
// Parked bit of a StickyBits word their fast path reads anyway, with no fence) is set. A registrant counts itself
// (full fence) and then reads the bit: set, it is armed; clear, it sets the bit (full fence) and runs the barrier
// itself, whatever the flag says, since signallers that read the bit clear asked nothing and fenced nothing (the
// first-park argument again: a signaller that read it clear did so before this barrier reached its core). Reading
// the bit after the count, not before, is what makes the bit clearable.
//
// Disarming (TryDisarm, only where ONE thread signals: a single reader's or single writer's side): without it a side
// that ever saw a waiter pays the fence of HasWaiters (and a call) on every operation for the buffer's lifetime.
// After a run of operations that found no waiter, the signaller stores Never, clears the bit (full fence) and reads
// the count: Dekker against the registrant's count-then-bit. Either its read sees the registration, and it sets the
// bit and the flag again (re-arms) before its next operation, so the registrant is covered as before; or the
// registrant's read of the bit sees it clear, so it sets it and runs a barrier (Arming). Never is stored before the
// clear, so a registrant that sees the cleared bit (or one set after it) also sees Never or a later flag: a racing
// registrant that finds the bit set by another still runs its own barrier unless one completed after the disarm.
// Between its clear and its re-arm the one signaller runs no operation, so no publish falls in that window. The
// price is a process-wide barrier for the first park after a disarm: one per quiet spell, next to a park's own cost
// (a thread-pool hop or a kernel wait). Explored with planted twins in tests/Concurrency/Backpressure/DisarmTests.cs
// (bit before count, no recount, no barrier) and ReArmWindowTests.cs (no Never: the first-park window after a disarm).
//
// Disarming a side played by many threads (TryDisarmShared: every signaller publishes with a locked claim, a CAS on
// the index the waiters' recheck reads, and then asks HasWaitersAfterLockedPublish). The one-signaller argument above
// does not carry over: between one signaller's clear and its re-arm, the others go on publishing, read the bit clear
// and ask nothing. So a disarm that finds a registration after its clear re-arms and then wakes every registered
// waiter (the caller does: FinishAll), each of which rechecks. Why that is enough, for a registrant R and a signaller S
// that read the bit clear and asked nothing:
//   - S's publish is a locked instruction, globally visible before S's load of the bit.
//   - If R read the bit clear, R sets it (full fence) after that load in the one order of locked operations on the
//     word, so S's load and S's publish precede R's set, which precedes R's recheck: R sees S's item. (R also runs
//     its barrier, as in Arming; for locked publishers it is not needed.)
//   - If R read the bit set and S read it clear later, a clear came between the two loads. R's count (a full fence)
//     precedes R's load of the bit, which precedes that clear (a full fence), which precedes the disarmer's read of
//     the count: the disarmer sees R, re-arms and wakes R, and R's recheck after the wake-up follows S's load of the
//     bit (before the re-arm), so it sees S's item. If R had already left (woken otherwise) the disarm may stand: R's
//     next registration reads the bit clear and is the first case.
// Disarms may run concurrently (any signaller may run one): the argument is per clear. No Never is stored: the
// signallers of such a side never read the flag, and a registrant that finds the bit clear runs its barrier anyway.
// Explored with planted twins (no wake-up on re-arm; no recount) in tests/Concurrency/Backpressure/SharedDisarmTests.cs.
internal struct ParkingGate<TAtomics> : IParkingGate, IArmingGate<TAtomics>, ISharedArmingGate<TAtomics>
    where TAtomics : struct, IAtomics
{
    private const long Never = 0;
    private const long Raised = 1;
    private const long BarrierDone = 2;

    private long _waiters;
    private long _everParked;

    /// <summary>Registered waiters (a snapshot).</summary>
    public long Waiters => TAtomics.LoadAcquire(ref _waiters); // acquire: snapshot

    /// <summary>Whether a waiter has ever registered (signallers fence from then on): diagnostics, and a test's cue.</summary>
    public bool EverParked => TAtomics.LoadAcquire(ref _everParked) != Never; // acquire: diagnostics only

    /// <summary>
    /// Waiter side: registers, with store-load order against the caller's recheck that follows. The first
    /// registration ever also runs the process-wide barrier that covers signallers that do not fence yet.
    /// </summary>
    public void Register()
    {
        TAtomics.Add(ref _waiters, 1); // full fence: our registration before the recheck; pairs with the signaller's fence
        if (TAtomics.LoadAcquire(ref _everParked) != BarrierDone) // acquire: whether a finished barrier covers the signallers that do not fence
        {
            TAtomics.StoreRelease(ref _everParked, Raised); // release: from now on signallers fence (a racing registrant may store it again: harmless)
            TAtomics.ProcessWideBarrier(); // every other thread's pending stores (a publish) are visible before our recheck
            TAtomics.StoreRelease(ref _everParked, BarrierDone); // release: later registrants may rely on the barrier above
        }
    }

    /// <summary>
    /// Waiter side, for signallers that ask only while <paramref name="armedBit"/> is set in <paramref name="bits"/>
    /// (see "Arming"): registers, then makes sure the bit is set, with the barrier that covers signallers that read it
    /// clear; store-load order against the caller's recheck that follows.
    /// </summary>
    public void RegisterArming(ref StickyBits<TAtomics> bits, long armedBit)
    {
        TAtomics.Add(ref _waiters, 1); // full fence: the registration before the read of the bit; pairs with TryDisarm's clear-then-read
        bool armed = (bits.Read() & armedBit) != 0; // acquire: after the fence above
        if (!armed)
        {
            bits.Set(armedBit); // full fence: signallers ask the gate from now on
        }

        if (!armed || TAtomics.LoadAcquire(ref _everParked) != BarrierDone) // acquire: whether a finished barrier covers the signallers that read the bit clear
        {
            TAtomics.StoreRelease(ref _everParked, Raised); // release: signallers that reach the gate fence
            TAtomics.ProcessWideBarrier(); // every other thread's pending stores (a publish) are visible before our recheck
            TAtomics.StoreRelease(ref _everParked, BarrierDone); // release: later registrants may rely on the barrier above
        }
    }

    /// <summary>
    /// Signaller side, the ONE signaller of this gate only, after it found no waiter: clears
    /// <paramref name="armedBit"/> so its fast path stops asking (see "Disarming"). False, with the bit set again, when a
    /// registrant raced it; the caller then asks as before.
    /// </summary>
    public bool TryDisarm(ref StickyBits<TAtomics> bits, long armedBit)
    {
        TAtomics.StoreRelease(ref _everParked, Never); // release: before the clear; a registrant that sees the bit cleared runs its barrier
        if (TryDisarmShared(ref bits, armedBit)) // the clear, the recount and the re-arm, as for many signallers
        {
            return true;
        }

        TAtomics.StoreRelease(ref _everParked, Raised); // release: HasWaiters fences again (a registrant reading it runs a barrier: harmless)
        return false; // the one signaller ran no operation between its clear and its re-arm: nobody to wake
    }

    /// <summary>
    /// Signaller side, for a side whose signallers all publish with a locked claim (see "Disarming a side played by
    /// many threads"): clears <paramref name="armedBit"/> after a quiet spell. True: no waiter was registered, and the
    /// bit stays clear. False: a registrant raced the clear; the bit is set again and the caller must wake every
    /// registered waiter (other signallers may have read the bit clear meanwhile and asked nothing).
    /// </summary>
    public bool TryDisarmShared(ref StickyBits<TAtomics> bits, long armedBit)
    {
        bits.Clear(armedBit); // full fence: the clear before the read of the count; pairs with RegisterArming's add
        if (TAtomics.LoadAcquire(ref _waiters) == 0) // acquire: the registration count
        {
            return true;
        }

        bits.Set(armedBit); // full fence: re-armed before the caller's next operation (and wake-up: the woken waiters' rechecks follow every publish that skipped the gate)
        return false;
    }

    /// <summary>Waiter side: a registration ends (woken, cancelled, timed out, or abandoned after a successful recheck).</summary>
    public void Unregister() => TAtomics.Add(ref _waiters, -1); // full fence: the count only ever matters to the next signaller

    /// <summary>
    /// Signaller side, when its publish was a read-modify-write (a claim CAS: a full fence on every platform .NET
    /// runs on) on the very index the waiter's recheck reads: whether any waiter is registered. No fence and no
    /// flag check: the locked publish is already ordered before this load, and it is globally visible before any
    /// later load, so either the waiter's recheck sees it or this load sees the waiter's registration (both sides
    /// of the Dekker handshake have their store-load order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool HasWaitersAfterLockedPublish() => TAtomics.LoadAcquire(ref _waiters) != 0; // acquire: the registration count

    /// <summary>Signaller side, after its publish: whether any waiter is registered.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool HasWaiters()
    {
        if (TAtomics.LoadAcquire(ref _everParked) != Never) // acquire: raised by the first waiter
        {
            TAtomics.FullFence(); // store-load: our publish before the read of the count; pairs with the waiter's add
        }

        return TAtomics.LoadAcquire(ref _waiters) != 0; // acquire: the registration count
    }
}

/// <summary>
/// The parking face of a gate: the controlled-scheduler models take the real <see cref="ParkingGate{TAtomics}"/> or a
/// planted twin through one struct type argument (no interface call in the explored code; the buffer itself calls the
/// struct directly).
/// </summary>
internal interface IParkingGate
{
    /// <summary>Registered waiters (a snapshot).</summary>
    long Waiters { get; }

    /// <summary>Whether any waiter ever registered (diagnostics).</summary>
    bool EverParked { get; }

    /// <summary>Counts a waiter in, the first park running the process-wide barrier.</summary>
    void Register();

    /// <summary>Counts a waiter out.</summary>
    void Unregister();

    /// <summary>The signaller's question after a publish.</summary>
    bool HasWaiters();
}

/// <summary>The waiter's face of an arming gate (see "Arming"), shared by the two faces below.</summary>
/// <typeparam name="TAtomics">The atomics seam.</typeparam>
internal interface IArmingRegistration<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>Counts a waiter in, then sets the armed bit (running the barrier when it set it).</summary>
    void RegisterArming(ref StickyBits<TAtomics> bits, long armedBit);

    /// <summary>Counts a waiter out.</summary>
    void Unregister();
}

/// <summary>The arming face of a gate (a single-thread side's bit and its disarm), for the same models.</summary>
/// <typeparam name="TAtomics">The atomics seam.</typeparam>
internal interface IArmingGate<TAtomics> : IArmingRegistration<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>The signaller's question after a publish.</summary>
    bool HasWaiters();

    /// <summary>After a quiet run: clears the armed bit unless a waiter registered meanwhile.</summary>
    bool TryDisarm(ref StickyBits<TAtomics> bits, long armedBit);
}

/// <summary>
/// The arming face of a gate whose side is played by many threads, each publishing with a locked claim (see
/// "Disarming a side played by many threads"), for the models.
/// </summary>
/// <typeparam name="TAtomics">The atomics seam.</typeparam>
internal interface ISharedArmingGate<TAtomics> : IArmingRegistration<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>The signaller's question after a locked publish.</summary>
    bool HasWaitersAfterLockedPublish();

    /// <summary>After a quiet spell: clears the armed bit; false (re-armed) when a waiter was registered: wake them all.</summary>
    bool TryDisarmShared(ref StickyBits<TAtomics> bits, long armedBit);
}
