using System.Runtime.CompilerServices;
using LockFree.Internal;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// The boundary polls of <see cref="SequencedRing{T, TAtomics, TProducers, TConsumers}"/> (see its design note): a single
/// side facing many re-reads its slot a bounded number of times before it answers empty (full), once per position.
/// Counted through an atomics policy that records SpinOnce calls (single-threaded, so every SpinOnce is a poll).
/// </summary>
public class BoundaryPollTests
{
    private const int Polls = SequencedRing<long, RealAtomics, MultiRole, SingleRole>.BoundaryPolls;

    [Fact]
    public void MpscTryDequeue_EmptyAtNewPosition_PollsThenAnswersEmptyOncePerPosition()
    {
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole>(4);

        Assert.Equal((false, Polls), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out _)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out _)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryPeek(out _)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeueMany(new long[2]) > 0));

        Assert.True(ring.TryEnqueue(7));
        Assert.Equal((true, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out long item) && item == 7));

        // A new position: the polls run again, on half the budget (the first round did not pay off), and the answer is
        // still exact.
        Assert.Equal((false, Polls / 2), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeueMany(new long[2]) > 0));
        Assert.Equal(0, ring.Count);
    }

    [Fact]
    public void MpscBudget_HalvesToOneWhenPollsFailAndRefillsWhenAnItemLandsDuringThem()
    {
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole>(8);
        var spins = new List<int>();
        for (int round = 0; round < 6; round++)
        {
            Assert.True(ring.TryEnqueue(round));
            Assert.True(ring.TryDequeue(out _));
            var (result, count) = Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out _));
            Assert.False(result);
            spins.Add(count);
        }

        Assert.Equal([Polls, Polls / 2, Polls / 4, Polls / 8, 1, 1], spins);

        // A producer publishes during the (single) poll: the item is taken, and the budget is full again.
        // (The ring is a struct: from here on only the boxed copy is used.)
        var box = new StrongBox<SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole>>(ring);
        Assert.True(box.Value.TryEnqueue(6));
        SpinCountingAtomics.OnSpin = () => Assert.True(box.Value.TryEnqueue(42));
        try
        {
            Assert.True(box.Value.TryDequeue(out _));
            Assert.True(box.Value.TryDequeue(out long landed));
            Assert.Equal(42, landed);
        }
        finally
        {
            SpinCountingAtomics.OnSpin = null;
        }

        Assert.Equal((false, Polls), Counted(ref box.Value, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out _)));
    }

    [Fact]
    public void MpmcTryEnqueue_FullAgainAtTheSamePosition_WritesNothingShared()
    {
        // Session 22: a full answer recorded its position in the producers' shared poll state every time, so writers
        // answering full at once (Reject, DropIncoming) moved that line between their cores at every answer.
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>(2);
        Assert.Equal(2, ring.TryEnqueueMany([1, 2]));
        Assert.False(ring.TryEnqueue(3)); // the first full answer here records the position (one store)

        AssertRepeatedAnswersStoreNothing(() => ring.TryEnqueue(3));

        Assert.True(ring.TryDequeue(out long first));
        Assert.Equal(1, first);
        Assert.True(ring.TryEnqueue(3)); // room again: the ring works on
    }

    [Fact]
    public void MpmcTryDequeue_EmptyAgainAtTheSamePosition_WritesNothingShared()
    {
        // The consumers' twin: readers polling an empty ring at once shared the same line the same way.
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>(2);
        Assert.False(ring.TryDequeue(out _)); // the first empty answer here records the position

        AssertRepeatedAnswersStoreNothing(() => ring.TryDequeue(out _));

        Assert.True(ring.TryEnqueue(5));
        Assert.True(ring.TryDequeue(out long item));
        Assert.Equal(5, item);
    }

    [Fact]
    public void MpscTryEnqueue_FullAgain_WritesNothingShared()
    {
        // Session 22, the same pattern in the cached head MPSC's producers share: every full answer reread the head and
        // stored it again, unchanged.
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole>(2);
        Assert.Equal(2, ring.TryEnqueueMany([1, 2]));
        Assert.False(ring.TryEnqueue(3));

        AssertRepeatedAnswersStoreNothing(() => ring.TryEnqueue(3) | ring.TryEnqueueMany([3, 4]) > 0); // both calls, both refused

        Assert.True(ring.TryDequeue(out long first));
        Assert.Equal(1, first);
        Assert.True(ring.TryEnqueue(3)); // the head moved: the cached copy follows, room again
        Assert.False(ring.TryEnqueue(4));
    }

    [Fact]
    public void SpmcTryDequeue_EmptyAgain_WritesNothingShared()
    {
        // The consumers' twin: SPMC's consumers share the cached tail.
        var ring = new SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole>(2);
        Assert.False(ring.TryDequeue(out _));

        AssertRepeatedAnswersStoreNothing(() => ring.TryDequeue(out _) | ring.TryDequeueMany(new long[2]) > 0); // both calls, both empty

        Assert.True(ring.TryEnqueue(5));
        Assert.True(ring.TryDequeue(out long item));
        Assert.Equal(5, item);
    }

    [Fact]
    public void SpmcTryEnqueue_FullAtNewPosition_PollsThenAnswersFullOncePerPosition()
    {
        var ring = new SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole>(2);
        Assert.Equal(2, ring.TryEnqueueMany([1, 2]));

        Assert.Equal((false, Polls), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole> r) => r.TryEnqueue(3)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole> r) => r.TryEnqueue(3)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole> r) => r.TryEnqueueMany([3, 4]) > 0));

        Assert.True(ring.TryDequeue(out long first));
        Assert.Equal(1, first);
        Assert.Equal((true, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole> r) => r.TryEnqueue(3)));
        Assert.Equal((false, Polls / 2), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole> r) => r.TryEnqueueMany([4]) > 0));
        Assert.Equal(2, ring.Count);
    }

    [Fact]
    public void MpscTryDequeueWithoutPolls_Empty_AnswersAtOnceAndRecordsThePosition()
    {
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole>(4);
        Assert.True(ring.TryEnqueue(5));

        Assert.Equal((true, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeueWithoutPolls(out long item) && item == 5));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeueWithoutPolls(out _)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out _))); // the same position
    }

    [Fact]
    public void MpmcBothSides_PollOnceAtANewBoundaryPosition_EachWithItsOwnBudget()
    {
        // Session 5: MPMC's consumers poll at the empty end and its producers at the full end, like MPSC's consumer and
        // SPMC's producer, each side's state a shared hint in its own region.
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole>(1);

        Assert.Equal((false, Polls), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryDequeue(out _)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryDequeue(out _))); // the same position
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryDequeueMany(new long[2]) > 0));
        Assert.True(ring.TryEnqueue(1));
        Assert.Equal((false, Polls), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryEnqueue(2))); // the producers' own full budget
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryEnqueueMany([2, 3]) > 0));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryEnqueueWithoutPolls(2)));
        Assert.Equal((true, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryDequeue(out long item) && item == 1));
        Assert.Equal((false, Polls / 2), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryDequeue(out _))); // a new position, the halved budget
        Assert.True(ring.TryEnqueue(4));
        Assert.Equal((false, Polls / 2), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, MultiRole> r) => r.TryEnqueue(5))); // likewise
    }

    [Fact]
    public void MpscClosedAndDrained_AnswersEmptyAfterPollsOnce()
    {
        var ring = new SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole>(2);
        Assert.True(ring.TryEnqueue(1));
        Assert.Equal(1, ring.CloseProducers());
        Assert.True(ring.TryDequeue(out long item));
        Assert.Equal(1, item);

        Assert.Equal((false, Polls), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out _)));
        Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole> r) => r.TryDequeue(out _)));
        Assert.False(ring.TryEnqueue(2));
    }

    private delegate bool RingCall<TRing>(ref TRing ring);

    [Fact]
    public void MpscCatchUpPause_DoublesWhileTheProducerStreams_HalvesOnShortRuns_ResetsAfterAnEmptyAnswer()
    {
        const int Max = SequencedRing<long, RealAtomics, MultiRole, SingleRole>.CatchUpPauseMax;
        var box = new StrongBox<SequencedRing<long, SpinCountingAtomics, MultiRole, SingleRole>>(new(8 * Max * 2));
        SpinCountingAtomics.Pauses = [];
        try
        {
            long next = 0;

            // One catch-up: the consumer finds its slot empty, pauses, and a producer's item lands during the pause.
            // Before it, `run` items pass through (enqueued and dequeued) since the previous catch-up.
            int CatchUp(int run)
            {
                for (int i = 0; i < run; i++)
                {
                    Assert.True(box.Value.TryEnqueue(next++));
                    Assert.True(box.Value.TryDequeue(out _));
                }

                long landing = next++;
                SpinCountingAtomics.OnSpin = () => Assert.True(box.Value.TryEnqueue(landing));
                SpinCountingAtomics.Pauses!.Clear();
                Assert.True(box.Value.TryDequeue(out long got));
                Assert.Equal(landing, got);
                return Assert.Single(SpinCountingAtomics.Pauses);
            }

            // Streaming: at least two positions per pause iteration since the last catch-up doubles it, up to the cap.
            var pauses = new List<int>();
            int pause = 1;
            for (int round = 0; round < 13; round++)
            {
                pause = CatchUp(2 * pause);
                pauses.Add(pause);
            }

            Assert.Equal([2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, Max, Max, Max], pauses);

            // Request/response: one item per catch-up halves it.
            Assert.Equal(Max / 2, CatchUp(0));
            Assert.Equal(Max / 4, CatchUp(0));

            // The producer stops: the polls end in an empty answer (pausing once, at the current length), which resets
            // the pause; the next catch-up, at a new position, starts again from 1.
            SpinCountingAtomics.Pauses.Clear();
            Assert.False(box.Value.TryDequeue(out _));
            Assert.Equal([Max / 8], SpinCountingAtomics.Pauses);
            Assert.Equal(1, CatchUp(1));
            Assert.Equal(2, CatchUp(2));
        }
        finally
        {
            SpinCountingAtomics.Pauses = null;
            SpinCountingAtomics.OnSpin = null;
        }
    }

    [Fact]
    public void SpmcCatchUpPause_IsCappedAtAnEighthOfTheCapacity()
    {
        // The producer side: full, a consumer frees a slot during the pause. Capacity 64: at most 8 iterations.
        var box = new StrongBox<SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole>>(new(64));
        SpinCountingAtomics.Pauses = [];
        try
        {
            long next = 0;
            while (box.Value.TryEnqueueWithoutPolls(next))
            {
                next++;
            }

            var pauses = new List<int>();
            for (int round = 0; round < 6; round++)
            {
                // Room for a run of 16 positions, then full again at a new position.
                for (int i = 0; i < 16; i++)
                {
                    Assert.True(box.Value.TryDequeue(out _));
                    Assert.True(box.Value.TryEnqueue(next++));
                }

                SpinCountingAtomics.OnSpin = () => Assert.True(box.Value.TryDequeue(out _));
                SpinCountingAtomics.Pauses.Clear();
                Assert.True(box.Value.TryEnqueue(next++));
                pauses.Add(Assert.Single(SpinCountingAtomics.Pauses));
            }

            Assert.Equal([2, 4, 8, 8, 8, 8], pauses);
            Assert.Equal(64, box.Value.Count);
        }
        finally
        {
            SpinCountingAtomics.Pauses = null;
            SpinCountingAtomics.OnSpin = null;
        }
    }

    [Fact]
    public void SpmcTryEnqueueWithoutPolls_FullAtNewPositions_NeverPollsAndStaysExact()
    {
        // The back-pressure buffer's DropOldest engine: full, evict one, write, full again at the next position.
        var ring = new SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole>(2);
        Assert.True(ring.TryEnqueue(1));
        Assert.True(ring.TryEnqueue(2));
        for (long next = 3; next < 10; next++)
        {
            Assert.Equal((false, 0), Counted(ref ring, static (ref SequencedRing<long, SpinCountingAtomics, SingleRole, MultiRole> r) => r.TryEnqueueWithoutPolls(99)));
            Assert.True(ring.TryDequeue(out long oldest));
            Assert.Equal(next - 2, oldest);
            long value = next;
            Assert.True(ring.TryEnqueueWithoutPolls(value));
        }

        Assert.Equal(2, ring.Count);
    }

    /// <summary>A refusal (full or empty) asked three more times: each answers false and stores no <see cref="long"/> with release (no shared hint).</summary>
    private static void AssertRepeatedAnswersStoreNothing(Func<bool> refusal)
    {
        for (int i = 0; i < 3; i++)
        {
            SpinCountingAtomics.LongReleases = 0;
            Assert.False(refusal());
            Assert.Equal(0, SpinCountingAtomics.LongReleases);
        }
    }

    private static (bool Result, int Spins) Counted<TRing>(ref TRing ring, RingCall<TRing> call)
    {
        SpinCountingAtomics.Spins = 0;
        bool result = call(ref ring);
        return (result, SpinCountingAtomics.Spins);
    }
}

/// <summary>The real atomics, counting SpinOnce calls on the calling thread.</summary>
internal readonly struct SpinCountingAtomics : IAtomics
{
    [ThreadStatic]
    public static int Spins;

    public static long LoadAcquire(ref long location) => RealAtomics.LoadAcquire(ref location);

    public static void StoreRelease(ref long location, long value)
    {
        LongReleases++;
        RealAtomics.StoreRelease(ref location, value);
    }

    /// <summary>Release stores of a <see cref="long"/> on this thread (indices, sequences, shared poll hints).</summary>
    [ThreadStatic]
    public static int LongReleases;

    public static long CompareExchange(ref long location, long value, long comparand)
    {
        Action? hook = BeforeCompareExchange;
        BeforeCompareExchange = null; // once
        hook?.Invoke();
        return RealAtomics.CompareExchange(ref location, value, comparand);
    }

    /// <summary>Run once before the next <see cref="long"/> compare-and-swap on this thread (another thread's step landing just before it).</summary>
    [ThreadStatic]
    public static Action? BeforeCompareExchange;

    public static long Add(ref long location, long value) => RealAtomics.Add(ref location, value);

    public static T LoadPlain<T>(ref T location) => RealAtomics.LoadPlain(ref location);

    public static void StorePlain<T>(ref T location, T value) => RealAtomics.StorePlain(ref location, value);

    public static void CopyPlain<T>(ReadOnlySpan<T> source, Span<T> destination) => RealAtomics.CopyPlain(source, destination);

    public static void ClearPlain<T>(Span<T> destination) => RealAtomics.ClearPlain(destination);

    public static T LoadAcquireReference<T>(ref T location)
        where T : class? => RealAtomics.LoadAcquireReference(ref location);

    public static void StoreReleaseReference<T>(ref T location, T value)
        where T : class? => RealAtomics.StoreReleaseReference(ref location, value);

    public static T CompareExchangeReference<T>(ref T location, T value, T comparand)
        where T : class? => RealAtomics.CompareExchangeReference(ref location, value, comparand);

    public static T LoadSpeculative<T>(ref T location) => RealAtomics.LoadSpeculative(ref location);

    public static bool EnterLock(object gate) => RealAtomics.EnterLock(gate);

    public static void ExitLock(object gate, bool interrupted) => RealAtomics.ExitLock(gate, interrupted);

    public static bool TryEnterLock(object gate) => RealAtomics.TryEnterLock(gate);

    public static T LoadGuarded<T>(ref T location) => RealAtomics.LoadGuarded(ref location);

    public static void StoreGuarded<T>(ref T location, T value) => RealAtomics.StoreGuarded(ref location, value);

    public static void QueueWorkItem(IThreadPoolWorkItem item) => RealAtomics.QueueWorkItem(item);

    public static bool WaitEvent(ManualResetEventSlim signal, TimeSpan timeout) => RealAtomics.WaitEvent(signal, timeout);

    public static long GetTimestamp() => RealAtomics.GetTimestamp();

    public static void SetEvent(ManualResetEventSlim signal) => RealAtomics.SetEvent(signal);

    public static void RegisterCancellation(ref CancellationTokenRegistration registration, CancellationToken token, Action<object?> callback, object? state) =>
        RealAtomics.RegisterCancellation(ref registration, token, callback, state);

    public static bool UnregisterCancellation(ref CancellationTokenRegistration registration) => RealAtomics.UnregisterCancellation(ref registration);

    public static void DisposeCancellation(ref CancellationTokenRegistration registration) => RealAtomics.DisposeCancellation(ref registration);

    public static bool IsPlanted(PlantedFault fault) => false;

    public static void FullFence() => RealAtomics.FullFence();

    public static void ProcessWideBarrier() => RealAtomics.ProcessWideBarrier();

    /// <summary>Run at every SpinOnce (on this thread), e.g. a producer's enqueue landing during a consumer's polls.</summary>
    [ThreadStatic]
    public static Action? OnSpin;

    public static void SpinOnce(ref SpinWait spinner)
    {
        Spins++;
        Action? action = OnSpin;
        OnSpin = null; // once
        action?.Invoke();
        RealAtomics.SpinOnce(ref spinner);
    }

    /// <summary>The iterations of each <see cref="Pause"/> on this thread, in order (null: not recorded).</summary>
    [ThreadStatic]
    public static List<int>? Pauses;

    /// <summary>A pause counts as one spin (a poll), like SpinOnce, and is recorded.</summary>
    public static void Pause(int iterations)
    {
        Spins++;
        Pauses?.Add(iterations);
        Action? action = OnSpin;
        OnSpin = null; // once
        action?.Invoke();
        RealAtomics.Pause(Math.Min(iterations, 1)); // the length is recorded, not spent: keeps the tests fast
    }
}
