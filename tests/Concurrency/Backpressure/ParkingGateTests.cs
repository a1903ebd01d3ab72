using LockFree.Backpressure;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// The back-pressure buffer's lost-wake-up handshake (<see cref="ParkingGate{TAtomics}"/>, the code WaiterList
/// runs) under the controlled scheduler with the TSO store-buffer simulation: a signaller publishes an item and
/// asks whether anyone waits; a waiter checks, takes an event-count ticket, registers, rechecks, and sleeps. A
/// lost wake-up shows as a deadlock (the waiter sleeps, nobody is left to wake it). Both regimes of the gate are
/// explored: the first park ever (the parker's process-wide barrier covers a signaller that does not fence) and
/// later parks (signallers fence). Proof of power: dropping either fence through the seam is found. Two registrants
/// racing the first park (the reason for the gate's three-state flag) need a shaped scenario: see
/// <see cref="FirstParkWindowTests"/>.
/// </summary>
public sealed class ParkingGateTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    /// <summary>
    /// Stores stay buffered for about this many scheduling points: the window in which a lost wake-up can happen
    /// spans the signaller's whole check and the waiter's registration and recheck (six to nine steps), which the
    /// default odds (1/2 per step) almost never leave open (measured: once in ~10,000 random schedules).
    /// </summary>
    private const int DrainOdds = 8;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(11);

    /// <summary>The protocol as BackpressureBuffer uses it, around one item. The cells are pinned for the store-buffer simulation.</summary>
    private sealed class Handshake
    {
        private readonly long[] _item = GC.AllocateArray<long>(1, pinned: true);
        private readonly ParkingGate<TestAtomics>[] _gate = GC.AllocateArray<ParkingGate<TestAtomics>>(1, pinned: true);
        private readonly ControlledEventCount _event = new();
        private readonly long[] _elsewhere = GC.AllocateArray<long>(1, pinned: true);

        /// <summary>Non-draining steps the signaller takes after its signal: more than the waiter needs to register and recheck.</summary>
        private const int TrailingSteps = 4;

        private readonly Publish _publish;

        public Handshake(bool everParked, Publish publish = Publish.Release)
        {
            _publish = publish;
            if (everParked)
            {
                _gate[0].Register(); // outside any exploration: the real atomics run
                _gate[0].Unregister();
            }
        }

        private int _received;

        /// <summary>How many waiters saw the item.</summary>
        public int Received => Volatile.Read(ref _received);

        public void Signaller()
        {
            bool waiters;
            if (_publish == Publish.Release)
            {
                TestAtomics.StoreRelease(ref _item[0], 1); // the publish (a single-role ring's index store): buffered under TSO
                waiters = _gate[0].HasWaiters();
            }
            else if (_publish == Publish.Locked)
            {
                TestAtomics.CompareExchange(ref _item[0], 1, 0); // the publish is a claim CAS (a many-role ring): a full fence
                waiters = _gate[0].HasWaitersAfterLockedPublish();
            }
            else
            {
                TestAtomics.StoreRelease(ref _item[0], 1); // planted: a buffered publish...
                waiters = _gate[0].HasWaitersAfterLockedPublish(); // ...asked without the fence it needs
            }

            if (waiters)
            {
                _event.NotifyAll();
            }

            // The writer goes on with its next items (loads that do not drain its store buffer). A thread that ends
            // drains its buffer at once, which would hide a lost wake-up that a real, still-running writer causes.
            for (int i = 0; i < TrailingSteps; i++)
            {
                _ = TestAtomics.LoadAcquire(ref _elsewhere[0]);
            }
        }

        public void Waiter()
        {
            while (TestAtomics.LoadAcquire(ref _item[0]) == 0)
            {
                long ticket = _event.PrepareWait();
                _gate[0].Register();
                if (TestAtomics.LoadAcquire(ref _item[0]) != 0) // the recheck after registering
                {
                    _gate[0].Unregister();
                    break;
                }

                _event.CommitWait(ticket); // parked until a NotifyAll after the ticket
                _gate[0].Unregister();
            }

            Interlocked.Increment(ref _received);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Handshake_NoLostWakeUp(bool everParked)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), everParked, waiters: 1, PlantedBug.None);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}");
        }
    }

    /// <summary>How the signaller publishes and which gate query it uses.</summary>
    public enum Publish
    {
        /// <summary>A release store, then <see cref="ParkingGate{TAtomics}.HasWaiters"/> (the single-role engines).</summary>
        Release,

        /// <summary>A compare-and-swap, then <see cref="ParkingGate{TAtomics}.HasWaitersAfterLockedPublish"/> (the many-role engines' claims).</summary>
        Locked,

        /// <summary>Planted misuse: a release store, then the fence-free query.</summary>
        ReleaseAskedAsLocked,
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Handshake_LockedPublish_NoLostWakeUpWithoutSignallerFence(bool everParked)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), everParked, waiters: 1, PlantedBug.None, Publish.Locked);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}");
        }
    }

    [Fact]
    public void Handshake_BufferedPublishAskedWithoutFence_IsFoundAsDeadlock() =>
        AllStrategiesFind("a buffered publish asked without the signaller's fence", everParked: true, waiters: 1, PlantedBug.None, Publish.ReleaseAskedAsLocked);

    [Fact]
    public void Handshake_SignallerWithoutFence_IsFoundAsDeadlock() =>
        AllStrategiesFind("signaller without its fence (later parks)", everParked: true, waiters: 1, PlantedBug.DroppedFullFence);

    [Fact]
    public void Handshake_FirstParkWithoutProcessWideBarrier_IsFoundAsDeadlock() =>
        AllStrategiesFind("first park without the process-wide barrier", everParked: false, waiters: 1, PlantedBug.DroppedProcessWideBarrier);

    private static ExplorationResult Explore(Strategy strategy, bool everParked, int waiters, PlantedBug bugs, Publish publish = Publish.Release)
    {
        var threads = new List<Action<Handshake>>();
        for (int i = 0; i < waiters; i++)
        {
            threads.Add(h => h.Waiter());
        }

        threads.Add(h => h.Signaller());
        return ControlledTest.Explore(
            strategy,
            Budget,
            () => new Handshake(everParked, publish),
            threads,
            h => Assert.Equal(waiters, h.Received),
            new ExploreOptions { StoreBuffers = true, StoreBufferDrainOdds = DrainOdds, Bugs = bugs, Name = $"parking gate (ever parked: {everParked}, waiters: {waiters}, publish: {publish}, bugs: {bugs})" });
    }

    private void AllStrategiesFind(string bug, bool everParked, int waiters, PlantedBug bugs, Publish publish = Publish.Release)
    {
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(Strategies, strategy => Explore(strategy, everParked, waiters, bugs, publish));
        output.WriteLine($"{bug}: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }
}
