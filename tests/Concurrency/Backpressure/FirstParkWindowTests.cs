using LockFree.Backpressure;
using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// The first-park window of <see cref="ParkingGate{TAtomics}"/> (the reason for its three-state flag), under the
/// controlled scheduler with store buffers. A signaller publishes two items (one buffered store) and asks the gate
/// before anyone registered: it reads the flag clear, so it neither fences nor signals, and its store stays
/// buffered (it then blocks until both items are taken, and a blocked thread's buffer drains only through a
/// barrier: the TSO model lets a store wait that long, and it is the adversary the gate must survive). The first
/// waiter registers and raises the flag; a second waiter, cued by the raised flag, registers and rechecks. With the
/// real gate the second sees Raised rather than BarrierDone and runs a barrier itself, so it sees the items; with
/// the planted two-state gate (<see cref="TwoStateParkingGate{TAtomics}"/>) it trusts the raised flag, rechecks
/// before the first waiter's barrier flushed the signaller, and sleeps while the first waiter takes one item and
/// leaves: a deadlock. The cues (both waiters start once the signaller has asked; the second looks a few times for
/// the raised flag before it registers) are test-only coordination outside the simulated memory: they shape the threads so that this window
/// is the schedule space, without constraining the gate's own steps (what happens between the flag store, its
/// drain, the barrier and the second registration is left to the strategies). The twin differs from the real gate
/// only when a registrant reads Raised, so every schedule it fails on is the window; with the same seed the real
/// gate's random walk runs that very schedule (iteration seeds do not depend on earlier iterations) up to the
/// registrant's flag load, where it takes the barrier branch instead, and passes.
/// </summary>
public sealed class FirstParkWindowTests(ITestOutputHelper output)
{
    private static int Budget => ExplorationBudget.Schedules(2000);

    /// <summary>Schedules a planted-bug search may take (it stops at the first failure; measured finds: 1 to 462).</summary>
    private const int SearchBudget = 5000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(41);

    /// <summary>Two waiters and a signaller around a count of published items. The shared words are pinned.</summary>
    internal sealed class Window<TGate>
        where TGate : struct, IParkingGate
    {
        private const int Items = 2;

        /// <summary>How many times the second waiter looks for the raised flag before it registers anyway.</summary>
        private const int CuePolls = 4;

        private readonly long[] _items = GC.AllocateArray<long>(1, pinned: true);
        private readonly TGate[] _gate = GC.AllocateArray<TGate>(1, pinned: true);
        private readonly ControlledEventCount _itemEvent = new();
        private readonly object _done = new();
        private int _asked; // test-only cue: the signaller has asked the gate
        private int _taken;

        /// <summary>Items the waiters took.</summary>
        public int Taken => Volatile.Read(ref _taken);

        public void Signaller()
        {
            TestAtomics.StoreRelease(ref _items[0], Items); // the publish: buffered
            bool waiters = _gate[0].HasWaiters();
            Volatile.Write(ref _asked, 1);
            if (waiters)
            {
                _itemEvent.NotifyAll();
            }

            // The writer goes on elsewhere without a fence: blocked here (no scheduling point, so its buffer does not
            // drain on its own), its store stays buffered until a barrier drains it.
            while (Volatile.Read(ref _taken) < Items)
            {
                ControlledScheduler.Current!.Block(_done);
            }
        }

        /// <summary>The first parker: starts once the signaller has asked the gate (and read the flag clear).</summary>
        public void FirstWaiter()
        {
            WindowSteps.AwaitCue(ref _asked);
            Wait(cue: false);
        }

        /// <summary>The racing registrant: also starts once the signaller has asked, then looks for the raised flag a few times before registering.</summary>
        public void SecondWaiter()
        {
            WindowSteps.AwaitCue(ref _asked);
            Wait(cue: true);
        }

        /// <summary>Ticket, register, recheck, sleep (the order WaiterList's callers use), until an item is taken.</summary>
        private void Wait(bool cue)
        {
            while (true)
            {
                long ticket = _itemEvent.PrepareWait();
                if (cue)
                {
                    cue = false;
                    for (int i = 0; i < CuePolls && !_gate[0].EverParked; i++)
                    {
                    }
                }

                _gate[0].Register();
                if (WindowSteps.TryTake(ref _items[0])) // the recheck after registering
                {
                    _gate[0].Unregister();
                    break;
                }

                _itemEvent.CommitWait(ticket); // parked until a NotifyAll after the ticket
                _gate[0].Unregister();
            }

            Interlocked.Increment(ref _taken);
            ControlledScheduler.Current!.WakeAll(_done);
        }
    }

    [Fact]
    public void FirstParkWindow_RealGate_NoLostWakeUp()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore<ParkingGate<TestAtomics>>(make(), PlantedBug.None);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public void FirstParkWindow_TwoStateFlag_IsFoundAsDeadlock()
    {
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(Strategies, strategy => Explore<TwoStateParkingGate<TestAtomics>>(strategy, PlantedBug.None));
        output.WriteLine("two-state first-park flag: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    [Fact]
    public void FirstParkWindow_RealGateWithoutProcessWideBarrier_IsFoundAsDeadlock()
    {
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(Strategies, strategy => Explore<ParkingGate<TestAtomics>>(strategy, PlantedBug.DroppedProcessWideBarrier));
        output.WriteLine("dropped process-wide barrier: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    private static ExplorationResult Explore<TGate>(Strategy strategy, PlantedBug bugs)
        where TGate : struct, IParkingGate =>
        ControlledTest.Explore(
            strategy,
            bugs == PlantedBug.None && typeof(TGate) == typeof(ParkingGate<TestAtomics>) ? Budget : SearchBudget,
            () => new Window<TGate>(),
            [w => w.Signaller(), w => w.FirstWaiter(), w => w.SecondWaiter()],
            w => Assert.Equal(2, w.Taken),
            new ExploreOptions { StoreBuffers = true, Bugs = bugs, Name = $"first-park window ({typeof(TGate).Name}, bugs: {bugs})" });
}
