using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>The queue engines under test, and which thread roles each allows.</summary>
public enum QueueKind
{
    /// <summary><see cref="SpscRing{T, TAtomics}"/>: one producer, one consumer.</summary>
    Spsc,

    /// <summary>SequencedRing&lt;Multi, Single&gt;.</summary>
    Mpsc,

    /// <summary>SequencedRing&lt;Single, Multi&gt;.</summary>
    Spmc,

    /// <summary>SequencedRing&lt;Multi, Multi&gt;.</summary>
    Mpmc,

    /// <summary>The test-only SPSC ring of PlantedBugs/PlantedRing.cs, correct (a control for the planted variants).</summary>
    TestRing,

    /// <summary>The test-only ring with the planted off-by-one full check.</summary>
    PlantedOffByOne,

    /// <summary>The test-only ring with the planted spurious "empty" answer.</summary>
    PlantedSpuriousEmpty,

    /// <summary>
    /// SequencedRing&lt;Multi, Single&gt; primed single-threaded before the run with three empty answers at new positions:
    /// its boundary-poll budget is 1, so its catch-up pause is the only poll before it reads the producers' index (at the
    /// full budget the short polls, spinning points that hand the baton to the producers, hide a wrong answer made after them).
    /// </summary>
    MpscPrimed,

    /// <summary>SequencedRing&lt;Single, Multi&gt; primed likewise with three full answers at new positions.</summary>
    SpmcPrimed,

    /// <summary>The test-only MPSC ring with a catch-up pause of PlantedBugs/PlantedCatchUpRing.cs, correct (a control).</summary>
    CatchUpRing,

    /// <summary>The test-only MPSC ring whose consumer answers empty after its catch-up pause without reading the tail.</summary>
    PlantedTrustCatchUpPause,

    /// <summary>
    /// <see cref="SpscRing{T, TAtomics}"/> tuned to read the producer's index on every take beyond its known-published
    /// bound and to pause whenever it trails the producer (the streaming mechanism, exercised on every call).
    /// </summary>
    SpscEagerBound,

    /// <summary>
    /// SequencedRing&lt;Multi, Multi&gt; primed single-threaded with three full and three empty answers at new positions: both
    /// sides' shared boundary-poll budgets are 1, so the catch-up pause is the only poll before they read the other side's index.
    /// </summary>
    MpmcPrimed,

    /// <summary>The test-only ring of PlantedBugs/PlantedCatchUpRing.cs with many consumers (claiming by CAS), correct (a control).</summary>
    MpmcCatchUpRing,

    /// <summary>The many-consumer test-only catch-up ring whose consumers answer empty after their pause without reading the tail.</summary>
    PlantedMpmcTrustCatchUpPause,

    /// <summary>
    /// <see cref="SpscRing{T, TAtomics}"/> tuned to read the producer's index on every take beyond its bound and to pause
    /// whenever it trails the producer by less than 2 (capacity 4 or more): the batch dequeue's bound read and pause run on
    /// every call that its bound does not cover.
    /// </summary>
    SpscEagerPause,

    /// <summary>The test-only run-sequence ring of PlantedBugs/PlantedRunRing.cs, correct (a control).</summary>
    RunRing,

    /// <summary>The test-only run-sequence ring whose consumer lowers its bound to a tail read below a run's end.</summary>
    PlantedBoundGoesDown,

    /// <summary>The test-only run-sequence ring whose consumer takes a sequence equal to the position as published.</summary>
    PlantedRunEndOffByOne,

    /// <summary>The test-only run-sequence ring whose batch is published as runs of one, front to back.</summary>
    PlantedFrontToBackRuns,

    /// <summary>The test-only run-sequence ring whose consumer raises its bound to one past the tail it read.</summary>
    PlantedRunBoundPastTail,

    /// <summary>
    /// The test-only ring of PlantedBugs/PlantedCatchUpRing.cs with many consumers and producers that gate on their slot and
    /// poll at the full end (MPMC's producer side), correct (a control).
    /// </summary>
    MpmcFullEndRing,

    /// <summary>The MPMC full-end test-only ring whose producers answer full after their pause without reading the head.</summary>
    PlantedMpmcTrustFullPause,
}

/// <summary>One engine behind a uniform face, items as boxed ints (a reference type, so slot clearing runs too).</summary>
internal interface ITestQueue
{
    int Capacity { get; }

    bool TryEnqueue(object item);

    bool TryDequeue([MaybeNullWhen(false)] out object item);

    bool TryPeek([MaybeNullWhen(false)] out object item);

    int TryEnqueueMany(ReadOnlySpan<object> items);

    int TryDequeueMany(Span<object> destination);
}

internal static class TestQueues
{
    public static bool MultiProducer(this QueueKind kind) =>
        kind is QueueKind.Mpsc or QueueKind.Mpmc or QueueKind.MpscPrimed or QueueKind.CatchUpRing or QueueKind.PlantedTrustCatchUpPause
            or QueueKind.MpmcPrimed or QueueKind.MpmcCatchUpRing or QueueKind.PlantedMpmcTrustCatchUpPause
            or QueueKind.MpmcFullEndRing or QueueKind.PlantedMpmcTrustFullPause;

    public static bool MultiConsumer(this QueueKind kind) =>
        kind is QueueKind.Spmc or QueueKind.Mpmc or QueueKind.SpmcPrimed
            or QueueKind.MpmcPrimed or QueueKind.MpmcCatchUpRing or QueueKind.PlantedMpmcTrustCatchUpPause
            or QueueKind.MpmcFullEndRing or QueueKind.PlantedMpmcTrustFullPause;

    public static bool CanPeek(this QueueKind kind) => !kind.MultiConsumer();

    public static ITestQueue Create(QueueKind kind, int capacity) => kind switch
    {
        QueueKind.Spsc => new SpscBox(new SpscRing<object, TestAtomics>(capacity)),
        QueueKind.SpscEagerBound => new SpscBox(new SpscRing<object, TestAtomics>(capacity, boundReadStreak: 1, streamDistance: 1)),
        QueueKind.Mpsc => new SequencedBox<MultiRole, SingleRole>(capacity),
        QueueKind.Spmc => new SequencedBox<SingleRole, MultiRole>(capacity),
        QueueKind.Mpmc => new SequencedBox<MultiRole, MultiRole>(capacity),
        QueueKind.TestRing => new PlantedRingBox(capacity, RingBug.None),
        QueueKind.PlantedOffByOne => new PlantedRingBox(capacity, RingBug.OffByOneFull),
        QueueKind.PlantedSpuriousEmpty => new PlantedRingBox(capacity, RingBug.SpuriousEmpty),
        QueueKind.MpscPrimed => SequencedBox<MultiRole, SingleRole>.Primed(capacity),
        QueueKind.SpmcPrimed => SequencedBox<SingleRole, MultiRole>.Primed(capacity),
        QueueKind.CatchUpRing => new PlantedCatchUpRingBox(capacity, CatchUpBug.None),
        QueueKind.PlantedTrustCatchUpPause => new PlantedCatchUpRingBox(capacity, CatchUpBug.TrustCatchUpPause),
        QueueKind.MpmcPrimed => SequencedBox<MultiRole, MultiRole>.Primed(capacity),
        QueueKind.MpmcCatchUpRing => new PlantedCatchUpRingBox(capacity, CatchUpBug.None, multiConsumer: true),
        QueueKind.PlantedMpmcTrustCatchUpPause => new PlantedCatchUpRingBox(capacity, CatchUpBug.TrustCatchUpPause, multiConsumer: true),
        QueueKind.SpscEagerPause => new SpscBox(new SpscRing<object, TestAtomics>(capacity, boundReadStreak: 1, streamDistance: 2)),
        QueueKind.MpmcFullEndRing => new PlantedCatchUpRingBox(capacity, CatchUpBug.None, multiConsumer: true, pollingProducers: true),
        QueueKind.PlantedMpmcTrustFullPause => new PlantedCatchUpRingBox(capacity, CatchUpBug.TrustFullPause, multiConsumer: true, pollingProducers: true),
        QueueKind.RunRing => new PlantedRunRingBox(capacity, RunRingBug.None),
        QueueKind.PlantedBoundGoesDown => new PlantedRunRingBox(capacity, RunRingBug.BoundGoesDown),
        QueueKind.PlantedRunEndOffByOne => new PlantedRunRingBox(capacity, RunRingBug.RunEndOffByOne),
        QueueKind.PlantedFrontToBackRuns => new PlantedRunRingBox(capacity, RunRingBug.FrontToBackRuns),
        QueueKind.PlantedRunBoundPastTail => new PlantedRunRingBox(capacity, RunRingBug.BoundPastTail),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private sealed class SpscBox(SpscRing<object, TestAtomics> engine) : ITestQueue
    {
        private SpscRing<object, TestAtomics> _engine = engine;

        public int Capacity => _engine.Capacity;

        public bool TryEnqueue(object item) => _engine.TryEnqueue(item);

        public bool TryDequeue([MaybeNullWhen(false)] out object item) => _engine.TryDequeue(out item);

        public bool TryPeek([MaybeNullWhen(false)] out object item) => _engine.TryPeek(out item);

        public int TryEnqueueMany(ReadOnlySpan<object> items) => _engine.TryEnqueueMany(items);

        public int TryDequeueMany(Span<object> destination) => _engine.TryDequeueMany(destination);
    }

    private sealed class SequencedBox<TProducers, TConsumers>(int capacity) : ITestQueue
        where TProducers : struct, IRolePolicy
        where TConsumers : struct, IRolePolicy
    {
        private SequencedRing<object, TestAtomics, TProducers, TConsumers> _engine = new(capacity);

        /// <summary>
        /// A ring whose polling side (MPSC's and MPMC's consumers, SPMC's producer) has answered empty (full) at three new
        /// positions, so its boundary-poll budget is down to 1; left empty. Runs before the controlled run (the seam is
        /// then the plain access).
        /// </summary>
        public static SequencedBox<TProducers, TConsumers> Primed(int capacity)
        {
            var box = new SequencedBox<TProducers, TConsumers>(capacity);
            if (!TConsumers.IsSingle)
            {
                // The producers poll (SPMC, MPMC): three full answers at new positions, left empty.
                for (int round = 0; round < 3; round++)
                {
                    while (box.TryEnqueue(-1))
                    {
                    }

                    Xunit.Assert.True(box.TryDequeue(out _) && box.TryEnqueue(-1));
                    Xunit.Assert.False(box.TryEnqueue(-1)); // full at a new position: the budget halves
                    while (box.TryDequeue(out _))
                    {
                    }
                }
            }

            if (!TProducers.IsSingle)
            {
                // The consumers poll (MPSC, MPMC): three empty answers at new positions.
                for (int round = 0; round < 3; round++)
                {
                    Xunit.Assert.True(box.TryEnqueue(-1) && box.TryDequeue(out _));
                    Xunit.Assert.False(box.TryDequeue(out _)); // empty at a new position: the budget halves
                }

                // One more item through (no polls: it is published when the consumer comes), so the run starts past the
                // position that last answered empty, where polls are skipped: the first catch-up polls on budget 1.
                Xunit.Assert.True(box.TryEnqueue(-1) && box.TryDequeue(out _));
            }

            return box;
        }

        public int Capacity => _engine.Capacity;

        public bool TryEnqueue(object item) => _engine.TryEnqueue(item);

        public bool TryDequeue([MaybeNullWhen(false)] out object item) => _engine.TryDequeue(out item);

        public bool TryPeek([MaybeNullWhen(false)] out object item) => _engine.TryPeek(out item);

        public int TryEnqueueMany(ReadOnlySpan<object> items) => _engine.TryEnqueueMany(items);

        public int TryDequeueMany(Span<object> destination) => _engine.TryDequeueMany(destination);
    }
}
