using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// Completion of a single-writer <see cref="BackpressureBuffer{T}"/> from a thread other than its writer, under the
/// controlled scheduler with store buffers: the code the buffer runs (the SPSC engine <see cref="SpscRing{T, TAtomics}"/>,
/// both sides' <see cref="StickyBits{TAtomics}"/> and the <see cref="InWriteMark{TAtomics}"/>), instantiated with the test
/// atomics, in the buffer's order. The writer writes as TryWrite does (mark, completed-check, enqueue, clear, after-work
/// word; a completed write leaves as LeaveWriteUnpublished does); the completer as TryComplete does (flag, the writer's
/// Completed bit, the reader's bit with the process-wide barrier, then the mark); a drain-style consumer as ReadAllAsync
/// does (take while not empty, finishing the buffer when a read sees Completed and Done; when empty, end if finished,
/// else wait for a write or a finish). Checked after every schedule: the buffer was finished exactly once, and the
/// consumer read every accepted item in order before it ended, leaving the engine empty. Planted twins: the old code (no
/// mark: <see cref="NoInWriteMark{TAtomics}"/>), found as an accepted item the consumer never saw; the completer without
/// its barrier; and the reader's Done check without its fence (<see cref="UnfencedDoneMark{TAtomics}"/>), both found as
/// an unfinished buffer (a deadlock: the consumer waits for ever).
/// </summary>
/// <remarks>
/// The consumer's wait stands for the buffer's parking, whose own handshake (ParkingGate, explored in
/// <see cref="ParkingGateTests"/>) makes a publish visible to a woken reader: here a waker fences before it wakes. And
/// the engine reads each side's own index with a plain C# load, which the simulation does not forward from that side's
/// store buffer (the hardware does), so a side that runs a second operation fences after the first (the writer in its
/// wake, the consumer at the end of each read): otherwise the consumer took one item twice. Both fences come after
/// everything the operation's part of this protocol does, so the windows inside an operation are explored as they are.
/// </remarks>
public sealed class ForeignCompletionTests(ITestOutputHelper output)
{
    private const long Completed = 4; // BackpressureBuffer's AfterWork.Completed

    private static int Budget => ExplorationBudget.Schedules(1500);

    /// <summary>Schedules a planted-bug search may take (it stops at the first failure).</summary>
    private const int SearchBudget = 5000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(53);

    /// <summary>The buffer's state for one schedule: the engine (unmovable), both after-work words, the mark, the flags.</summary>
    internal sealed class Run<TMark>
        where TMark : struct, IInWriteMark
    {
        private readonly UnmovableEngine<SpscRing<long, TestAtomics>> _engine = new(new SpscRing<long, TestAtomics>(4), "_slots");
        private readonly StickyBits<TestAtomics>[] _afterWrite = GC.AllocateArray<StickyBits<TestAtomics>>(1, pinned: true);
        private readonly StickyBits<TestAtomics>[] _afterRead = GC.AllocateArray<StickyBits<TestAtomics>>(1, pinned: true);
        private readonly TMark[] _mark = GC.AllocateArray<TMark>(1, pinned: true);
        private readonly long[] _flags = GC.AllocateArray<long>(2, pinned: true); // [0] completed, [1] finished
        private readonly object _wake = new();
        private readonly int _prefilled;
        private readonly int _writes;
        private int _wakes; // plain: one controlled thread runs at a time
        private long _accepted;
        private readonly List<long> _read = [];
        private long _finishes;

        public Run(int prefilled, int writes)
        {
            _prefilled = prefilled;
            _writes = writes;
            for (int i = 1; i <= prefilled; i++)
            {
                Assert.True(Ring.TryEnqueue(i)); // outside the run: the plain accesses
            }
        }

        private ref SpscRing<long, TestAtomics> Ring => ref _engine.Value;

        private ref long CompletedFlag => ref _flags[0];

        private ref long FinishedFlag => ref _flags[1];

        /// <summary>The writer: <c>_writes</c> writes as TryWrite's SPSC path, stopping at the first that meets completion.</summary>
        public void Writer()
        {
            for (int i = 0; i < _writes; i++)
            {
                _mark[0].Enter();
                if (TestAtomics.LoadAcquire(ref CompletedFlag) != 0)
                {
                    LeaveUnpublished(); // CompletedOrDisposed
                    return;
                }

                Assert.True(Ring.TryEnqueue(_prefilled + i + 1)); // never full here
                _accepted++; // the write answers Accepted
                _mark[0].Exit();
                if ((_afterWrite[0].Read() & Completed) != 0) // AfterWrite's Completed bit
                {
                    WriterDone();
                }

                Wake(); // AfterWrite wakes a parked reader
            }
        }

        /// <summary>TryComplete on a single-writer buffer, from its own thread.</summary>
        public void Completer()
        {
            Assert.Equal(0, TestAtomics.CompareExchange(ref CompletedFlag, 1, 0));
            _afterWrite[0].Set(Completed);
            _afterRead[0].SetAndFlush(Completed);
            if (_mark[0].WriterIdle())
            {
                WriterDone();
            }

            Wake(); // FinishAll(Signaled): readers recheck
        }

        /// <summary>ReadAllAsync: take while not empty; when empty, end if finished, else wait for a wake.</summary>
        public void Consumer()
        {
            while (true)
            {
                int seen = _wakes;
                if (Ring.TryDequeue(out long item))
                {
                    _read.Add(item);
                    if ((_afterRead[0].Read() & Completed) != 0) // AfterRead's Completed bit
                    {
                        TryFinishIfDrained();
                    }

                    TestAtomics.FullFence(); // the read is over: its head store reaches our own next read (see the remarks)
                    continue;
                }

                if (TestAtomics.LoadAcquire(ref FinishedFlag) != 0)
                {
                    return; // WaitToReadAsync answered false: the loop ends
                }

                while (_wakes == seen)
                {
                    ControlledScheduler.Current!.Block(_wake); // a deadlock here is a buffer nobody finishes
                }
            }
        }

        public void Check()
        {
            Assert.Equal(1, _finishes);
            long[] expected = Enumerable.Range(1, _prefilled + (int)_accepted).Select(i => (long)i).ToArray();
            Assert.True(_read.SequenceEqual(expected), $"accepted {_accepted} of {_writes} (after {_prefilled} prefilled), the consumer read [{string.Join(", ", _read)}] before the loop ended");
            Assert.True(Ring.IsEmpty);
        }

        private void LeaveUnpublished()
        {
            _mark[0].Exit();
            if ((_afterWrite[0].Read() & Completed) != 0)
            {
                WriterDone();
            }
        }

        private void WriterDone()
        {
            _mark[0].SetDone();
            TryFinishIfDrained();
        }

        private void TryFinishIfDrained()
        {
            if (TestAtomics.LoadAcquire(ref CompletedFlag) == 0 || !_mark[0].IsDone() || !Ring.IsEmpty)
            {
                return;
            }

            if (TestAtomics.CompareExchange(ref FinishedFlag, 1, 0) == 0)
            {
                _finishes++;
                Wake(); // the finish wakes the readers: FinishAll(Completed)
            }
        }

        private void Wake()
        {
            TestAtomics.FullFence(); // the parking handshake (see the remarks): what the woken reader rechecks is visible
            _wakes++;
            ControlledScheduler.Current!.WakeAll(_wake);
        }
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(0, 2)]
    [InlineData(1, 1)]
    public void ForeignCompletion_EveryAcceptedItemIsReadAndTheBufferFinishesOnce(int prefilled, int writes)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore<InWriteMark<TestAtomics>>(make(), Budget, prefilled, writes, PlantedBug.None);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public void ForeignCompletion_WithoutTheMark_TheOldCode_IsFoundLosingAnAcceptedItem()
    {
        // Random walk and PCT; the bounded-preemption search did not reach it within 30,000 schedules (its depth-first
        // order spends them on preemptions late in the writer's run; the window is the writer's second step).
        var found = ScenarioRunner.AssertEachFinds<Xunit.Sdk.TrueException>(Strategies[..3], s => Explore<NoInWriteMark<TestAtomics>>(s, SearchBudget, 0, 1, PlantedBug.None));
        output.WriteLine("no in-write mark (the code before): found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    [Fact]
    public void ForeignCompletion_WithoutTheProcessWideBarrier_IsFoundUnfinishedOrLosing()
    {
        var found = ScenarioRunner.AssertEachFinds<Exception>(Strategies, s => Explore<InWriteMark<TestAtomics>>(s, SearchBudget, 0, 1, PlantedBug.DroppedProcessWideBarrier));
        output.WriteLine("completer without the process-wide barrier: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1} ({f.Failure.InnerException?.GetType().Name})")));
    }

    [Fact]
    public void ForeignCompletion_DoneCheckWithoutItsFence_IsFoundUnfinished()
    {
        // The window is the reader's head store staying buffered across its own next steps and the completer's Done and
        // drained check, so stores are kept buffered longer (drain odds 8); found by random walk and PCT depth 3 (PCT
        // depth 2 cannot express the three switches it needs; the bounded search did not reach it within 5,000).
        Func<Strategy>[] finders = [Strategies[0], Strategies[2]];
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(finders, s => Explore<UnfencedDoneMark<TestAtomics>>(s, SearchBudget, 1, 1, PlantedBug.None, drainOdds: 8));
        output.WriteLine("Done read without the fence: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    private static ExplorationResult Explore<TMark>(Strategy strategy, int budget, int prefilled, int writes, PlantedBug bugs, int drainOdds = 2)
        where TMark : struct, IInWriteMark =>
        ControlledTest.Explore(
            strategy,
            budget,
            () => new Run<TMark>(prefilled, writes),
            [r => r.Writer(), r => r.Completer(), r => r.Consumer()],
            r => r.Check(),
            new ExploreOptions { StoreBuffers = true, StoreBufferDrainOdds = drainOdds, Bugs = bugs, Name = $"foreign completion ({typeof(TMark).Name}, prefilled {prefilled}, writes {writes}, bugs: {bugs})" });
}
