using LockFree.Backpressure;
using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// Disarming (<see cref="ParkingGate{TAtomics}.TryDisarm"/>) and arming (<see cref="ParkingGate{TAtomics}.RegisterArming"/>)
/// under the controlled scheduler with the TSO store-buffer simulation: the code a single-thread side of
/// BackpressureBuffer runs to leave the fenced path once nobody waits, and a parker runs to bring it back. The gate
/// starts armed after an earlier park (bit set, barrier done). The one signaller runs two operations, each a publish
/// (a buffered store) and then the fast path's question: if the armed bit is set, ask the gate; the first operation,
/// finding no waiter, disarms (the buffer does so after a run of such operations; here after one). The waiters need
/// the second item, so a waiter that sleeps through the second operation's question sleeps for good: a lost wake-up
/// shows as a deadlock. Cued runs shape the threads around the window (test-only flags outside the simulated memory:
/// the waiters start once the signaller found no waiter and is about to disarm; the signaller looks a few times, each
/// a free switch, for a settled waiter before its second operation), leaving every step of the gate to the strategies;
/// an uncued run with two waiters covers the other orders. Proof of power: the registrant that sets the bit before
/// counting itself (the sticky-bit order), the disarm that does not read the count after its clear (both interleaving
/// bugs, found without store buffers), and the real code without its process-wide barrier (the re-arming parker's
/// cover for a signaller that read the bit clear, found with them) are each found.
/// </summary>
public sealed class DisarmTests(ITestOutputHelper output)
{
    private const long ArmedBit = 2;

    private static int Budget => ExplorationBudget.Schedules(1000);

    /// <summary>Schedules a planted-bug search may take (it stops at the first failure).</summary>
    private const int SearchBudget = 5000;

    /// <summary>Stores stay buffered for about this many scheduling points (as in <see cref="ParkingGateTests"/>).</summary>
    private const int DrainOdds = 8;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(53);

    /// <summary>
    /// The standard set without PCT at depth 2, for a bug that needs two ordering constraints between the threads
    /// (PCT's depth-2 guarantee covers one; random walk, PCT at depth 3 and two preemptions cover two).
    /// </summary>
    private static readonly Func<Strategy>[] TwoConstraintStrategies = [Strategies[0], Strategies[2], Strategies[3]];

    /// <summary>One signaller, one or two waiters, around a count of published items. The shared words are pinned.</summary>
    internal sealed class Quiet<TGate>
        where TGate : struct, IArmingGate<TestAtomics>
    {
        private const long Needed = 2;

        /// <summary>How many times the cued signaller looks for a settled waiter before its second operation.</summary>
        private const int SettlePolls = 4;

        /// <summary>Non-draining steps the signaller takes at the end: more than a waiter needs to register and recheck.</summary>
        private const int TrailingSteps = 6;

        private readonly long[] _items = GC.AllocateArray<long>(1, pinned: true);
        private readonly TGate[] _gate = GC.AllocateArray<TGate>(1, pinned: true);
        private readonly StickyBits<TestAtomics>[] _bits = GC.AllocateArray<StickyBits<TestAtomics>>(1, pinned: true);
        private readonly long[] _elsewhere = GC.AllocateArray<long>(1, pinned: true);
        private readonly ControlledEventCount _event = new();
        private readonly bool _cued;
        private int _asked; // test-only cue: the signaller found no waiter and is about to disarm
        private int _settled; // test-only cue: a waiter is about to sleep, or has its item
        private int _received;

        public Quiet(bool cued)
        {
            _cued = cued;
            _gate[0].RegisterArming(ref _bits[0], ArmedBit); // an earlier park, outside any exploration: the real atomics run
            _gate[0].Unregister();
        }

        /// <summary>How many waiters saw the second item.</summary>
        public int Received => Volatile.Read(ref _received);

        /// <summary>How the disarm went: 1 it stood (no registration seen; a later parker re-arms), -1 a registrant raced it (re-armed at once), 0 not reached.</summary>
        public int Disarm { get; private set; }

        public void Signaller()
        {
            Operation(1, disarmIfNoWaiter: true);

            // Cued: the next item comes a little later (a few spins, each a free switch, while no waiter has parked
            // or finished yet), so a waiter that races the disarm can register and recheck before it without a
            // preemption of its own.
            var spinner = default(SpinWait);
            for (int i = 0; _cued && i < SettlePolls && Volatile.Read(ref _settled) == 0; i++)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            Operation(2, disarmIfNoWaiter: false);

            // The signaller goes on with loads that do not drain its store buffer: a thread that ends drains at once,
            // which would hide a lost wake-up that a real, still-running signaller causes.
            for (int i = 0; i < TrailingSteps; i++)
            {
                _ = TestAtomics.LoadAcquire(ref _elsewhere[0]);
            }
        }

        public void Waiter()
        {
            var spinner = default(SpinWait);
            while (_cued && Volatile.Read(ref _asked) == 0)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            while (TestAtomics.LoadAcquire(ref _items[0]) < Needed)
            {
                long ticket = _event.PrepareWait();
                _gate[0].RegisterArming(ref _bits[0], ArmedBit);
                if (TestAtomics.LoadAcquire(ref _items[0]) >= Needed) // the recheck after registering
                {
                    _gate[0].Unregister();
                    break;
                }

                Volatile.Write(ref _settled, 1);
                _event.CommitWait(ticket); // parked until a NotifyAll after the ticket
                _gate[0].Unregister();
            }

            Volatile.Write(ref _settled, 1);
            Interlocked.Increment(ref _received);
        }

        /// <summary>A publish, then the fast path's question (BackpressureBuffer.AfterRead / AfterWrite, quiet run of one).</summary>
        private void Operation(long items, bool disarmIfNoWaiter)
        {
            TestAtomics.StoreRelease(ref _items[0], items); // the publish (a single-role ring's index store): buffered under TSO
            if ((_bits[0].Read() & ArmedBit) == 0) // the fast path: one load, no fence
            {
                return;
            }

            if (_gate[0].HasWaiters())
            {
                _event.NotifyAll();
            }
            else if (disarmIfNoWaiter)
            {
                Volatile.Write(ref _asked, 1);
                Disarm = _gate[0].TryDisarm(ref _bits[0], ArmedBit) ? 1 : -1;
            }
        }
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(2, false)]
    public void Disarm_RealGate_NoLostWakeUp(int waiters, bool cued)
    {
        int stood = 0, raced = 0;
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore<ParkingGate<TestAtomics>>(make(), waiters, cued, PlantedBug.None, q => (stood, raced) = (stood + (q.Disarm > 0 ? 1 : 0), raced + (q.Disarm < 0 ? 1 : 0)));
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}");
        }

        // The schedules must take both ways out of the disarm, or the scenario does not exercise the protocol: the
        // disarm stands (a waiter that then parks re-arms with its barrier) and a registrant races it (re-armed).
        output.WriteLine($"schedules whose disarm stood: {stood}; raced by a registrant: {raced}");
        Assert.True(stood > 0, "no schedule's disarm stood");
        Assert.True(!cued || raced > 0, "no schedule raced a registrant against the disarm");
    }

    /// <summary>
    /// Two ordering constraints: the waiter reads the bit before the disarm clears it, and counts itself after the
    /// disarm read the count. Found without store buffers: it is an interleaving bug.
    /// </summary>
    [Fact]
    public void Disarm_BitSetBeforeCount_IsFoundAsDeadlock() =>
        AllStrategiesFind<BitBeforeCountGate<TestAtomics>>("bit set before the count (the sticky-bit order)", PlantedBug.None, storeBuffers: false, TwoConstraintStrategies);

    /// <summary>Found without store buffers: an interleaving bug.</summary>
    [Fact]
    public void Disarm_WithoutCountAfterClear_IsFoundAsDeadlock() =>
        AllStrategiesFind<BlindDisarmGate<TestAtomics>>("disarm without reading the count after the clear", PlantedBug.None, storeBuffers: false);

    [Fact]
    public void Disarm_ReArmWithoutProcessWideBarrier_IsFoundAsDeadlock() =>
        AllStrategiesFind<ParkingGate<TestAtomics>>("re-arming parker without the process-wide barrier", PlantedBug.DroppedProcessWideBarrier);

    private static ExplorationResult Explore<TGate>(Strategy strategy, int waiters, bool cued, PlantedBug bugs, Action<Quiet<TGate>>? observe = null, bool storeBuffers = true)
        where TGate : struct, IArmingGate<TestAtomics>
    {
        var threads = new List<Action<Quiet<TGate>>>();
        for (int i = 0; i < waiters; i++)
        {
            threads.Add(q => q.Waiter());
        }

        threads.Add(q => q.Signaller());
        return ControlledTest.Explore(
            strategy,
            bugs == PlantedBug.None && typeof(TGate) == typeof(ParkingGate<TestAtomics>) ? Budget : SearchBudget,
            () => new Quiet<TGate>(cued),
            threads,
            q =>
            {
                Assert.Equal(waiters, q.Received);
                observe?.Invoke(q);
            },
            new ExploreOptions { StoreBuffers = storeBuffers, StoreBufferDrainOdds = DrainOdds, Bugs = bugs, Name = $"disarm ({typeof(TGate).Name}, waiters: {waiters}, cued: {cued}, bugs: {bugs})" });
    }

    private void AllStrategiesFind<TGate>(string bug, PlantedBug bugs, bool storeBuffers = true, Func<Strategy>[]? strategies = null)
        where TGate : struct, IArmingGate<TestAtomics>
    {
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(strategies ?? Strategies, strategy => Explore<TGate>(strategy, waiters: 1, cued: true, bugs, storeBuffers: storeBuffers));
        output.WriteLine($"{bug}: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }
}
