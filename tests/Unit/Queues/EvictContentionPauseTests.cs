using System.Reflection;
using System.Runtime.CompilerServices;
using LockFree.Internal;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// The contention pause of the many-producer place-or-evict enqueue (SequencedRing.Evicting.cs, "Contention", session
/// 22): a write that meets another writer on the eviction path pauses once, for
/// <c>ContentionPause</c> iterations, without touching shared memory, then goes on (helps, claims) without pausing
/// again; a write that meets nobody does not pause. Single-threaded: the other writer is a claim past full planted by
/// moving the tail one position on (a writer stopped between its claim and its eviction). Pauses are recorded, not
/// spent (<see cref="SpinCountingAtomics.Pauses"/>).
/// </summary>
public class EvictContentionPauseTests
{
    private const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Instance;

    private static int ContentionPause => SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>.ContentionPause;

    [Fact]
    public void FullRing_NoOtherWriter_EvictsWithoutPausing()
    {
        var ring = Full(capacity: 4); // items 1..4 at positions 0..3

        List<int> pauses = Recording(() =>
        {
            Assert.Equal(EvictingEnqueue.PlacedEvicting, ring.EnqueueOrEvict(99, out long evicted));
            Assert.Equal(1, evicted);
        });

        Assert.Empty(pauses);
        Assert.Equal(4, ring.Count);
    }

    [Fact]
    public void AnotherClaimPastFullPending_PausesOnceThenHelpsAndEvictsItsOwnOldestItem()
    {
        var ring = Full(capacity: 4);
        ring = WithTail(ring, 5); // a writer claimed position 4 past full and has not taken its oldest item (position 0) yet

        List<int> pauses = Recording(() =>
        {
            // Pauses, then evicts position 0 for the stopped writer (handing it the slot), claims position 5 and evicts
            // position 1, its own oldest item.
            Assert.Equal(EvictingEnqueue.PlacedEvicting, ring.EnqueueOrEvict(99, out long evicted));
            Assert.Equal(2, evicted);
        });

        Assert.Equal([ContentionPause], pauses);
        Assert.Equal(6, ring.EnqueuedPositions);
        Assert.Equal(2, ring.DequeuedPositions); // one eviction each: the helped writer's and this one

        // The next write finds no claim past full still to take its oldest item: no pause.
        List<int> next = Recording(() =>
        {
            Assert.Equal(EvictingEnqueue.PlacedEvicting, ring.EnqueueOrEvict(100, out long evicted));
            Assert.Equal(3, evicted);
        });
        Assert.Empty(next);
    }

    [Fact]
    public void LostTailClaim_PausesOnceThenClaimsAgain()
    {
        // One free slot; another writer takes it between this write's read of the tail and its claim (a lost CAS, no
        // claim past full pending): one pause, then the claim of the next position, past full, and its eviction.
        var box = new StrongBox<SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>>(
            new SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>(4));
        for (long item = 1; item <= 3; item++)
        {
            Assert.True(box.Value.TryEnqueue(item));
        }

        EvictingEnqueue outcome = default;
        long evicted = 0;
        SpinCountingAtomics.BeforeCompareExchange = () => Assert.True(box.Value.TryEnqueue(4));
        try
        {
            List<int> pauses = Recording(() => outcome = box.Value.EnqueueOrEvict(99, out evicted));
            Assert.Equal([ContentionPause], pauses);
        }
        finally
        {
            SpinCountingAtomics.BeforeCompareExchange = null;
        }

        Assert.Equal(EvictingEnqueue.PlacedEvicting, outcome);
        Assert.Equal(1, evicted);
        Assert.Equal(5, box.Value.EnqueuedPositions);
        Assert.Equal(1, box.Value.DequeuedPositions);
    }

    [Fact]
    public void ContentionPause_IsAboutTenMicroseconds()
    {
        // Thread.SpinWait iterations: the runtime normalizes one to 35-45 ns. A longer pause costs every losing write
        // more; a much shorter one (16-32) left the contended eviction slower than the BCL channel's lock (docs).
        Assert.InRange(ContentionPause, 128, 512);
    }

    private static SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> Full(int capacity)
    {
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>(capacity);
        for (long item = 1; item <= capacity; item++)
        {
            Assert.True(ring.TryEnqueue(item));
        }

        return ring;
    }

    /// <summary>Moves the tail (the producers' claimed positions) to <paramref name="tail"/>, as claims that have not finished.</summary>
    private static SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> WithTail(
        SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> ring, long tail)
    {
        object boxed = ring;
        FieldInfo pairField = boxed.GetType().GetField("_producers", Private)!;
        object pair = pairField.GetValue(boxed)!;
        pair.GetType().GetField("Index")!.SetValue(pair, tail);
        pairField.SetValue(boxed, pair);
        return (SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>)boxed;
    }

    private static List<int> Recording(Action call)
    {
        var pauses = new List<int>();
        SpinCountingAtomics.Pauses = pauses;
        try
        {
            call();
        }
        finally
        {
            SpinCountingAtomics.Pauses = null;
        }

        return pauses;
    }
}
