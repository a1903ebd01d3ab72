using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Queues;

// The boundary polls and the catch-up pause of SequencedRing (see "Boundary polls", "Catch-up pause" and "MPMC" in
// the design note in SequencedRing.cs): a side facing many on the other side re-reads its slot, after a pause, before
// it reads the other side's compare-and-swap index for an empty (full) answer; its poll state and its adaptation.
internal partial struct SequencedRing<T, TAtomics, TProducers, TConsumers>
    where TAtomics : struct, IAtomics
    where TProducers : struct, IRolePolicy
    where TConsumers : struct, IRolePolicy
{
    /// <summary>
    /// Whether <paramref name="consumer"/> (the consumer side, else the producer side) polls at its boundary: a side facing
    /// many on the other side. MPSC's consumer and SPMC's producer (their state private), and since session 5 both sides
    /// of MPMC (each side's state a hint shared by its threads, in its own padded region).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Polls(bool consumer) => consumer ? !TProducers.IsSingle : !TConsumers.IsSingle;

    /// <summary>Whether the polling sides are many threads (MPMC): their poll state is then a shared hint.</summary>
    private static bool SharedPollState => !TProducers.IsSingle && !TConsumers.IsSingle;

    /// <summary>
    /// A side facing many on the other side (MPSC's consumer, SPMC's producer, either side of MPMC), its slot not ready:
    /// whether to re-read the slot, after the shortest pause, before it reads the other side's compare-and-swap index to
    /// answer empty (full). At most the current budget (<see cref="BoundaryPolls"/> after polls that paid off, halved down
    /// to 1 after polls that did not) per call, and not at a position that already answered so. See "Boundary
    /// polls" in the design note.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool PollSlotAgain(bool consumer, long position, ref int polls)
    {
        if (!Polls(consumer))
        {
            return false;
        }

        ref PaddedIndexPair side = ref PollingSide(consumer);
        if (polls >= (int)LoadPollState(ref side.Spare) || position == LoadPollState(ref side.Cached))
        {
            return false;
        }

        if (polls++ == 0)
        {
            TAtomics.Pause(NextCatchUpPause(ref side, position)); // the first poll of a call: the catch-up pause (design note)
        }
        else
        {
            var pause = default(SpinWait);
            TAtomics.SpinOnce(ref pause); // the first, shortest step of a SpinWait (tens of nanoseconds), never a yield
        }

        return true;
    }

    /// <summary>
    /// The slot of <paramref name="position"/> is not ready for this side (<paramref name="consumer"/>: not yet
    /// published; otherwise: not yet released by the consumer a lap behind). Whether that is the answer, empty (full):
    /// a side facing many first re-reads the slot (the boundary polls), then answers from the other side's index unless
    /// one of the other side has claimed the position and not finished it, and then waits a step for it. False: read
    /// the slot again. With one thread on the other side the caller's gate already decided, so this only waits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool AnswersAtUnreadySlot(bool consumer, long position, ref int polls, ref SpinWait spinner)
    {
        if (PollSlotAgain(consumer, position, ref polls))
        {
            return false; // re-read the slot before the other side's index: see "Boundary polls"
        }

        if (Polls(consumer) && !(consumer ? ProducerInFlight(position) : ConsumerInFlight(position)))
        {
            NoteBoundary(consumer, position, polls);
            return true; // empty (full)
        }

        TAtomics.SpinOnce(ref spinner); // the other side has claimed the position and not finished it yet
        return false;
    }

    /// <summary>
    /// The polling side caught up with the other at <paramref name="position"/>: the length of this catch-up pause. It
    /// doubles (up to <see cref="CatchUpPauseMax"/> and capacity / 8) when the side moved at least two positions per
    /// pause iteration since its last catch-up, so the other side is streaming faster than a line transfer per item and
    /// the two would otherwise run in lock-step; otherwise it halves (down to 1). <see cref="NoteBoundary"/> resets it
    /// to 1. State in the side's region: Spare2 = CatchUpAt (the last catch-up position), Spare3 = CatchUpPause.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int NextCatchUpPause(ref PaddedIndexPair side, long position)
    {
        long run = position - LoadPollState(ref side.Spare2); // positions taken (filled) since the last catch-up (by all its threads, MPMC)
        StorePollState(ref side.Spare2, position);
        int pause = (int)LoadPollState(ref side.Spare3);
        // Capped at capacity / 8 too: at two positions an iteration the other side fills (empties) at most a quarter of
        // the ring meanwhile, so a small ring does not turn the pause into a full (empty) wait for the other side.
        int longest = Math.Max(1, Math.Min(CatchUpPauseMax, _capacity >> 3));
        pause = run >= 2L * pause ? Math.Min(2 * pause, longest) : Math.Max(1, pause / 2);
        StorePollState(ref side.Spare3, pause);
        return pause;
    }

    /// <summary>The polling side met an item (room) after <paramref name="polls"/> boundary polls: the full budget again.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PollsPaidOff(bool consumer, int polls)
    {
        if (Polls(consumer) && polls > 0 && polls <= BoundaryPolls)
        {
            StorePollState(ref PollingSide(consumer).Spare, BoundaryPolls); // PollBudget
        }
    }

    /// <summary>
    /// The polling side answered empty (full) at <paramref name="position"/> after reading the other side's index,
    /// having spent <paramref name="polls"/> boundary polls in vain: records the position (LastBoundary, the side's Cached
    /// word), halves the budget (PollBudget, its Spare word) and resets the catch-up pause.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NoteBoundary(bool consumer, long position, int polls)
    {
        if (Polls(consumer))
        {
            ref PaddedIndexPair side = ref PollingSide(consumer);
            if (LoadPollState(ref side.Cached) != position)
            {
                // Only when it changes: MPMC's producers (consumers) share this line, and on a full (empty) ring every
                // answer is at the same position; storing it again moved the line between their cores at every answer.
                StorePollState(ref side.Cached, position);
            }

            if (polls > 0 && polls <= BoundaryPolls)
            {
                StorePollState(ref side.Spare, Math.Max(1, (int)LoadPollState(ref side.Spare) / 2));
                StorePollState(ref side.Spare3, 1); // the other side has stopped (or is sparse): back to the shortest pause, for latency
            }
        }
    }

    /// <summary>
    /// A polling side's own padded region. Its words, unused otherwise where that side polls (a consumer facing many
    /// producers keeps no cached tail, a producer facing many consumers no cached head): Cached = the last position that
    /// answered empty (full), Spare = the poll budget, Spare2 = the last catch-up position, Spare3 = the catch-up pause.
    /// </summary>
    [UnscopedRef]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref PaddedIndexPair PollingSide(bool consumer) => ref consumer ? ref _consumers : ref _producers;

    // Poll state: private to a single polling side, plain; among MPMC's consumers a shared hint (LoadHint/StoreHint). A
    // stale or lost update only changes how long a poller waits before it reads the other side's index; every answer
    // is still made from that read.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long LoadPollState(ref long word) => LoadHint(ref word, SharedPollState);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePollState(ref long word, long value) => StoreHint(ref word, value, SharedPollState);
}
