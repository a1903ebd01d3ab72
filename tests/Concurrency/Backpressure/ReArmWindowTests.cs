using LockFree.Backpressure;
using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// The re-arm window of <see cref="ParkingGate{TAtomics}.TryDisarm"/> (the reason it stores Never before its clear),
/// under the controlled scheduler with store buffers: the first-park window of <see cref="FirstParkWindowTests"/>,
/// met again after every disarm. The gate starts armed after an earlier park (flag BarrierDone). The signaller finds
/// no waiter and disarms, publishes two items in one buffered store, reads the bit clear (so it neither fences nor
/// signals), then blocks until both items are taken (a blocked thread's buffer drains only through a barrier). Two
/// waiters start then: the first finds the bit clear, sets it and runs its barrier; the second, cued to register once
/// the bit is set again, must not trust a flag left over from before the disarm. With the real gate it reads Never (or
/// a later state) and runs a barrier itself, so it sees the items; with the planted gate that keeps the stale
/// BarrierDone (<see cref="StaleFlagDisarmGate{TAtomics}"/>) it skips the barrier, rechecks before the first waiter's
/// barrier flushed the signaller, and sleeps while the first takes one item and leaves: a deadlock. The cues are
/// test-only coordination outside the simulated memory, as in <see cref="FirstParkWindowTests"/>.
/// </summary>
public sealed class ReArmWindowTests(ITestOutputHelper output)
{
    private const long ArmedBit = 2;

    private static int Budget => ExplorationBudget.Schedules(1000);

    /// <summary>Schedules a planted-bug search may take (it stops at the first failure).</summary>
    private const int SearchBudget = 5000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(59);

    /// <summary>One signaller, two waiters, around a count of published items. The shared words are pinned.</summary>
    internal sealed class Window<TGate>
        where TGate : struct, IArmingGate<TestAtomics>
    {
        private const int Items = 2;

        /// <summary>How many times the second waiter looks for the re-set bit before it registers anyway.</summary>
        private const int CuePolls = 4;

        private readonly long[] _items = GC.AllocateArray<long>(1, pinned: true);
        private readonly TGate[] _gate = GC.AllocateArray<TGate>(1, pinned: true);
        private readonly StickyBits<TestAtomics>[] _bits = GC.AllocateArray<StickyBits<TestAtomics>>(1, pinned: true);
        private readonly ControlledEventCount _itemEvent = new();
        private readonly object _done = new();
        private int _asked; // test-only cue: the signaller has disarmed, published and asked
        private int _taken;

        public Window()
        {
            _gate[0].RegisterArming(ref _bits[0], ArmedBit); // an earlier park, outside any exploration: the real atomics run
            _gate[0].Unregister();
        }

        /// <summary>Items the waiters took.</summary>
        public int Taken => Volatile.Read(ref _taken);

        public void Signaller()
        {
            if (!_gate[0].HasWaiters()) // the quiet run ends: nobody waits
            {
                _gate[0].TryDisarm(ref _bits[0], ArmedBit);
            }

            TestAtomics.StoreRelease(ref _items[0], Items); // the publish: buffered
            bool ask = (_bits[0].Read() & ArmedBit) != 0; // the fast path: one load, no fence
            bool waiters = ask && _gate[0].HasWaiters();
            Volatile.Write(ref _asked, 1);
            if (waiters)
            {
                _itemEvent.NotifyAll();
            }

            // Blocked here (no scheduling point, so its buffer does not drain on its own), its store stays buffered
            // until a barrier drains it: the adversary the re-arming parker's barrier must survive.
            while (Volatile.Read(ref _taken) < Items)
            {
                ControlledScheduler.Current!.Block(_done);
            }
        }

        /// <summary>The first parker after the disarm: starts once the signaller has asked.</summary>
        public void FirstWaiter()
        {
            WindowSteps.AwaitCue(ref _asked);
            Wait(cue: false);
        }

        /// <summary>The racing registrant: also starts once the signaller has asked, then looks for the re-set bit a few times before registering.</summary>
        public void SecondWaiter()
        {
            WindowSteps.AwaitCue(ref _asked);
            Wait(cue: true);
        }

        /// <summary>Ticket, register (arming), recheck, sleep, until an item is taken.</summary>
        private void Wait(bool cue)
        {
            while (true)
            {
                long ticket = _itemEvent.PrepareWait();
                if (cue)
                {
                    cue = false;
                    for (int i = 0; i < CuePolls && (_bits[0].Read() & ArmedBit) == 0; i++)
                    {
                    }
                }

                _gate[0].RegisterArming(ref _bits[0], ArmedBit);
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
    public void ReArmWindow_RealGate_NoLostWakeUp()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore<ParkingGate<TestAtomics>>(make());
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public void ReArmWindow_DisarmKeepingTheStaleFlag_IsFoundAsDeadlock()
    {
        var found = ScenarioRunner.AssertEachFinds<DeadlockException>(Strategies, strategy => Explore<StaleFlagDisarmGate<TestAtomics>>(strategy));
        output.WriteLine("disarm keeping the stale flag: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    private static ExplorationResult Explore<TGate>(Strategy strategy)
        where TGate : struct, IArmingGate<TestAtomics> =>
        ControlledTest.Explore(
            strategy,
            typeof(TGate) == typeof(ParkingGate<TestAtomics>) ? Budget : SearchBudget,
            () => new Window<TGate>(),
            [w => w.Signaller(), w => w.FirstWaiter(), w => w.SecondWaiter()],
            w => Assert.Equal(2, w.Taken),
            new ExploreOptions { StoreBuffers = true, Name = $"re-arm window ({typeof(TGate).Name})" });
}
