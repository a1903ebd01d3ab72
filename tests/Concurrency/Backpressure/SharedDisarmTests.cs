using LockFree.Backpressure;
using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// Disarming a side played by many threads (<see cref="ParkingGate{TAtomics}.TryDisarmShared"/>) under the controlled
/// scheduler with the TSO store-buffer simulation: the code BackpressureBuffer's many writers (or readers) run to leave
/// the gate-asking path after a quiet spell, against a waiter that registers with
/// <see cref="ParkingGate{TAtomics}.RegisterArming"/>. The gate starts armed after an earlier park. Two signallers each
/// publish one item with a locked add (a claim CAS on the ring) and then take the fast path: if the armed bit is set,
/// ask the gate; the first, finding no waiter, disarms, and wakes everyone when the disarm reports a re-arm. The waiter
/// needs both items, so a waiter that sleeps through the second publish sleeps for good: a lost wake-up shows as a
/// deadlock. Proof of power: a disarm that re-arms without reporting it (the one-signaller rule) and a disarm that does
/// not read the count after its clear are each found.
/// </summary>
public sealed class SharedDisarmTests(ITestOutputHelper output)
{
    private const long ArmedBit = 2;

    private static int Budget => ExplorationBudget.Schedules(1000);

    /// <summary>Schedules a planted-bug search may take (it stops at the first failure).</summary>
    private const int SearchBudget = 5000;

    /// <summary>Stores stay buffered for about this many scheduling points.</summary>
    private const int DrainOdds = 8;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(61);

    /// <summary>
    /// The strategies for the planted bugs. The lost wake-up needs three ordering constraints even with the cues (the
    /// waiter registers and rechecks between the disarm's question and its clear; the other signaller publishes and
    /// reads the bit between the clear and the recount), so PCT at depth 2 cannot guarantee it, and the two-preemption
    /// search did not reach it within 40,000 schedules (its budget goes on the free switches of the cues' spins);
    /// random walk finds it within a few dozen schedules and PCT at depth 3 within a few hundred.
    /// </summary>
    private static readonly Func<Strategy>[] SearchStrategies = [() => Strategy.RandomWalk(61), () => Strategy.Pct(61, depth: 3), () => Strategy.Pct(61, depth: 4)];

    /// <summary>Two locked-publish signallers, one or two waiters. The shared words are pinned.</summary>
    internal sealed class Shared<TGate>
        where TGate : struct, ISharedArmingGate<TestAtomics>
    {
        private const long Needed = 2;

        /// <summary>How many times the cued second signaller looks for a settled waiter before it publishes.</summary>
        private const int SettlePolls = 4;

        private readonly long[] _items = GC.AllocateArray<long>(1, pinned: true);
        private readonly TGate[] _gate = GC.AllocateArray<TGate>(1, pinned: true);
        private readonly StickyBits<TestAtomics>[] _bits = GC.AllocateArray<StickyBits<TestAtomics>>(1, pinned: true);
        private readonly long[] _elsewhere = GC.AllocateArray<long>(1, pinned: true);
        private readonly ControlledEventCount _event = new();
        private readonly bool _cued;
        private int _asked; // test-only cue: the disarming signaller found no waiter and is about to disarm
        private int _settled; // test-only cue: a waiter is about to sleep
        private int _received;

        public Shared(bool cued)
        {
            _cued = cued;
            _gate[0].RegisterArming(ref _bits[0], ArmedBit); // an earlier park, outside any exploration: the real atomics run
            _gate[0].Unregister();
        }

        /// <summary>How many waiters saw both items.</summary>
        public int Received => Volatile.Read(ref _received);

        /// <summary>Disarms that stood (no registration seen) and that reported a re-arm.</summary>
        public int Stood { get; private set; }

        /// <summary>Disarms that found a registration after their clear.</summary>
        public int Raced { get; private set; }

        public void Signaller(bool disarm)
        {
            // Cued: the other signaller publishes a little later (a few spins, each a free switch, while no waiter has
            // parked yet), so that a waiter racing the disarm can register and recheck before that publish.
            var spinner = default(SpinWait);
            for (int i = 0; _cued && !disarm && i < SettlePolls && Volatile.Read(ref _settled) == 0; i++)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            TestAtomics.Add(ref _items[0], 1); // the publish: a locked claim, globally visible at once
            if ((_bits[0].Read() & ArmedBit) != 0) // the fast path: one load, no fence
            {
                if (_gate[0].HasWaitersAfterLockedPublish())
                {
                    _event.NotifyAll();
                }
                else if (disarm)
                {
                    Volatile.Write(ref _asked, 1);
                    if (_gate[0].TryDisarmShared(ref _bits[0], ArmedBit))
                    {
                        Stood++;
                    }
                    else
                    {
                        Raced++;
                        _event.NotifyAll(); // the buffer: FinishAll(Signaled)
                    }
                }
            }

            // Loads that do not drain the store buffer: a thread that ends drains at once, which would hide a lost
            // wake-up that a real, still-running signaller causes.
            for (int i = 0; i < 4; i++)
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

            Interlocked.Increment(ref _received);
        }
    }

    [Theory]
    [InlineData(1, false, true)]
    [InlineData(1, false, false)]
    [InlineData(1, true, false)]
    [InlineData(2, false, false)]
    public void SharedDisarm_RealGate_NoLostWakeUp(int waiters, bool bothDisarm, bool cued)
    {
        int stood = 0, raced = 0;
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore<ParkingGate<TestAtomics>>(make(), waiters, bothDisarm, cued, Budget, s => (stood, raced) = (stood + s.Stood, raced + s.Raced));
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}");
        }

        // Both ways out of the disarm must be taken, or the scenario does not exercise the protocol.
        output.WriteLine($"disarms that stood: {stood}; raced by a registrant: {raced}");
        Assert.True(stood > 0, "no disarm stood");
        Assert.True(raced > 0, "no registrant raced a disarm");
    }

    [Fact]
    public void SharedDisarm_ReArmWithoutWakeUp_IsFoundAsDeadlock() =>
        AllStrategiesFind<SilentReArmSharedGate<TestAtomics>>("re-arm without waking the waiters");

    [Fact]
    public void SharedDisarm_WithoutCountAfterClear_IsFoundAsDeadlock() =>
        AllStrategiesFind<BlindSharedDisarmGate<TestAtomics>>("disarm without reading the count after the clear");

    private static ExplorationResult Explore<TGate>(Strategy strategy, int waiters, bool bothDisarm, bool cued, int budget, Action<Shared<TGate>>? observe = null)
        where TGate : struct, ISharedArmingGate<TestAtomics>
    {
        var threads = new List<Action<Shared<TGate>>>();
        for (int i = 0; i < waiters; i++)
        {
            threads.Add(s => s.Waiter());
        }

        threads.Add(s => s.Signaller(disarm: true));
        threads.Add(s => s.Signaller(disarm: bothDisarm));
        return ControlledTest.Explore(
            strategy,
            budget,
            () => new Shared<TGate>(cued),
            threads,
            s =>
            {
                Assert.Equal(waiters, s.Received);
                observe?.Invoke(s);
            },
            new ExploreOptions { StoreBuffers = true, StoreBufferDrainOdds = DrainOdds, Name = $"shared disarm ({typeof(TGate).Name}, waiters: {waiters}, both disarm: {bothDisarm}, cued: {cued})" });
    }

    private void AllStrategiesFind<TGate>(string bug)
        where TGate : struct, ISharedArmingGate<TestAtomics>
    {
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(SearchStrategies, strategy => Explore<TGate>(strategy, waiters: 1, bothDisarm: false, cued: true, SearchBudget));
        output.WriteLine($"{bug}: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }
}
