using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// Completion racing the last read of <see cref="BackpressureBuffer{T}"/>, under the controlled scheduler with store
/// buffers: the code the buffer runs (its single-reader engines, <see cref="SpscRing{T, TAtomics}"/> and the
/// single-consumer <see cref="SequencedRing{T, TAtomics, TProducers, TConsumers}"/>, whose reader frees its slot with
/// a release store, and the reader side's <see cref="StickyBits{TAtomics}"/>), instantiated with the test atomics. A reader takes the last item (its head
/// store is buffered) and then, as TryRead does, reads the sticky bits without a fence, and finishes the buffer when
/// it sees the completion bit and the buffer drained. A completer, as TryComplete does, sets the completion bit and
/// flushes (<see cref="StickyBits{TAtomics}.SetAndFlush"/>), then finishes the buffer if it is drained. Whatever the
/// interleaving, exactly one of them must finish it. The reader then blocks until the completer is done, so its head
/// store drains only through a barrier (the TSO adversary: a store may stay buffered that long). Proof of power: the
/// completer without the process-wide barrier (<see cref="PlantedBug.DroppedProcessWideBarrier"/>) is found: the
/// reader reads the bit clear, the completer reads the stale head, and nobody finishes the buffer.
/// </summary>
/// <remarks>
/// The store-buffer simulation writes buffered stores later through raw pointers, so the engine must not move
/// (<see cref="UnmovableEngine{TEngine}"/>).
/// </remarks>
public sealed class CompletionHandshakeTests(ITestOutputHelper output)
{
    private const long Completed = 4; // BackpressureBuffer's AfterWork.Completed

    private static int Budget => ExplorationBudget.Schedules(2000);

    /// <summary>Schedules a planted-bug search may take (it stops at the first failure).</summary>
    private const int SearchBudget = 5000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(47);

    /// <summary>The engines whose reader stores its head with a release store (the single-reader ones): the others claim it by CAS, a full fence.</summary>
    public enum Engine
    {
        /// <summary>SingleWriter and SingleReader: <see cref="SpscRing{T, TAtomics}"/>.</summary>
        Spsc,

        /// <summary>Many writers, one reader: <see cref="SequencedRing{T, TAtomics, TProducers, TConsumers}"/> with a single consumer.</summary>
        Mpsc,
    }

    /// <summary>A buffer's last read and its completion: the engine (unmovable), the reader side's bits, the finish claim.</summary>
    internal sealed class LastRead
    {
        private readonly Engine _kind;
        private readonly UnmovableEngine<SpscRing<long, TestAtomics>>? _spsc;
        private readonly UnmovableEngine<SequencedRing<long, TestAtomics, MultiRole, SingleRole>>? _mpsc;
        private readonly StickyBits<TestAtomics>[] _afterRead = GC.AllocateArray<StickyBits<TestAtomics>>(1, pinned: true);
        private readonly long[] _finished = GC.AllocateArray<long>(1, pinned: true);
        private readonly object _completerDone = new();
        private int _done;

        public LastRead(Engine kind, int items)
        {
            _kind = kind;
            if (kind == Engine.Spsc)
            {
                _spsc = new(new SpscRing<long, TestAtomics>(2), "_slots");
            }
            else
            {
                _mpsc = new(new SequencedRing<long, TestAtomics, MultiRole, SingleRole>(2), "_slots");
            }

            for (int i = 0; i < items; i++)
            {
                Assert.True(kind == Engine.Spsc ? Spsc.TryEnqueue(i + 1) : Mpsc.TryEnqueue(i + 1)); // outside the run: the plain accesses
            }
        }

        /// <summary>How many times the buffer was finished.</summary>
        public long Finished => Volatile.Read(ref _finished[0]);

        /// <summary>Whether the engine is empty (after the run).</summary>
        public bool Drained => IsEmpty;

        private ref SpscRing<long, TestAtomics> Spsc => ref _spsc!.Value;

        private ref SequencedRing<long, TestAtomics, MultiRole, SingleRole> Mpsc => ref _mpsc!.Value;

        private bool IsEmpty => _kind == Engine.Spsc ? Spsc.IsEmpty : Mpsc.IsEmpty;

        /// <summary>TryRead: the dequeue, then the bits without a fence; a completed buffer's reader finishes it if drained.</summary>
        public void Reader()
        {
            Assert.True(_kind == Engine.Spsc ? Spsc.TryDequeue(out _) : Mpsc.TryDequeue(out _));
            if ((_afterRead[0].Read() & Completed) != 0)
            {
                TryFinishIfDrained();
            }

            while (Volatile.Read(ref _done) == 0) // the reader goes on elsewhere without a fence: its head store stays buffered
            {
                ControlledScheduler.Current!.Block(_completerDone);
            }
        }

        /// <summary>TryComplete: the bit, the flush, then finish if drained.</summary>
        public void Completer()
        {
            _afterRead[0].SetAndFlush(Completed);
            TryFinishIfDrained();
            Volatile.Write(ref _done, 1);
            ControlledScheduler.Current!.WakeAll(_completerDone);
        }

        private void TryFinishIfDrained()
        {
            if (IsEmpty && TestAtomics.CompareExchange(ref _finished[0], 1, 0) == 0)
            {
                // finished: the buffer's Completion would complete here
            }
        }
    }

    [Theory]
    [InlineData(Engine.Spsc, 1)]
    [InlineData(Engine.Spsc, 2)]
    [InlineData(Engine.Mpsc, 1)]
    public void CompletionRacingLastRead_FinishesExactlyWhenDrained(Engine engine, int items)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), Budget, engine, items, PlantedBug.None);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Theory]
    [InlineData(Engine.Spsc)]
    [InlineData(Engine.Mpsc)]
    public void CompletionRacingLastRead_WithoutProcessWideBarrier_IsFoundUnfinished(Engine engine)
    {
        var found = ScenarioRunner.AssertEachFinds<Xunit.Sdk.EqualException>(Strategies, s => Explore(s, SearchBudget, engine, 1, PlantedBug.DroppedProcessWideBarrier));
        output.WriteLine("completion without the process-wide barrier: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    private static ExplorationResult Explore(Strategy strategy, int budget, Engine engine, int items, PlantedBug bugs) =>
        ControlledTest.Explore(
            strategy,
            budget,
            () => new LastRead(engine, items),
            [r => r.Reader(), r => r.Completer()],
            r => Assert.Equal(r.Drained ? 1 : 0, r.Finished),
            new ExploreOptions { StoreBuffers = true, Bugs = bugs, Name = $"completion racing the last read ({engine}, items: {items}, bugs: {bugs})" });
}
