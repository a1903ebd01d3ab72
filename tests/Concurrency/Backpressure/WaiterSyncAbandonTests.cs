using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;
using TWaiter = LockFree.Backpressure.Waiter<LockFree.Tests.Concurrency.Scheduling.TestAtomics>;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// Abandoned synchronous waits of the REAL <see cref="Waiter{TAtomics}"/> (session 13) under the controlled scheduler: a
/// synchronous reader links its waiter, rechecks, and either takes an item and abandons the wait
/// (<see cref="WaiterList{TAtomics}.Abandon"/>) or blocks in <see cref="Waiter{TAtomics}.WaitSynchronously"/>, whose event
/// waits and sets go through the seam (<see cref="TestAtomics.WaitEvent"/>, <see cref="TestAtomics.SetEvent"/>). A writer
/// publishes items, each followed by SignalOne, and may then complete (FinishAll). The race explored: the writer's signal
/// (or the completion) wins the wait's CAS and is preempted before it sets the event, while the reader's recheck took an
/// item (or saw the completion) and abandons the wait it lost. Checked on every schedule: no wait wakes with nothing ended
/// (Pending: a spurious wake-up by the late set of an earlier wait on the recycled waiter), every wait the reader blocked
/// in ends Signaled or Completed, every item is taken, the list is empty, the reader's waits all ran on one waiter (each
/// went back to the pool before the next was rented: before session 13 an abandoned synchronous waiter was left to the
/// GC, and the next wait created one), and the pool never holds a waiter twice. The planted fault (Abandon recycles
/// without waiting for the set) is found as that spurious wake-up.
/// </summary>
public sealed class WaiterSyncAbandonTests(ITestOutputHelper output)
{
    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(137);

    private static int Budget => ExplorationBudget.Schedules(400);

    private const int SearchBudget = 5000;

    /// <summary>What the writer ends the run with.</summary>
    public enum Ending
    {
        /// <summary>Two items, each signalled; no completion.</summary>
        Signals,

        /// <summary>One item, signalled, then the completion (FinishAll(Completed)).</summary>
        SignalThenCompletion,
    }

    internal sealed class SyncRun(Ending ending, bool steered) : WaiterListTests.Run
    {
        private const long ArmedBit = 1;

        private readonly HashSet<TWaiter> _used = new(ReferenceEqualityComparer.Instance);

        public int Items => ending == Ending.Signals ? 2 : 1;

        public int Taken;

        public void Writer()
        {
            if (steered)
            {
                WindowSteps.AwaitCue(ref Cue); // the reader's first wait is registered
            }

            for (int i = 0; i < Items; i++)
            {
                TestAtomics.Add(ref Words[1], 1); // the publish (a read-modify-write: its own fence)
                Volatile.Write(ref Cue2, 1); // test-only: the reader's first recheck may go
                if (List.HasWaiters)
                {
                    List.SignalOne();
                }
            }

            if (ending == Ending.SignalThenCompletion)
            {
                TestAtomics.Add(ref Words[0], 1); // the completion's publish
                List.FinishAll(WaitStatus.Completed);
            }
        }

        public void Reader()
        {
            while (true)
            {
                TWaiter waiter = List.RentAndLink(synchronous: true, ref Bits, ArmedBit);
                _used.Add(waiter);
                if (steered && _used.Count == 1 && Volatile.Read(ref Cue) == 0)
                {
                    Volatile.Write(ref Cue, 1); // test-only: registered; the writer may publish
                    WindowSteps.AwaitCue(ref Cue2); // the first recheck follows the first publish
                }

                bool completed = TestAtomics.LoadAcquire(ref Words[0]) != 0; // before the take: the items were published before the completion
                if (WindowSteps.TryTake(ref Words[1]))
                {
                    List.Abandon(waiter, forwardSignal: true); // a signal that reached it goes on; recycled once its ender set the event
                    if (++Taken == Items)
                    {
                        return;
                    }

                    continue;
                }

                if (completed)
                {
                    List.Abandon(waiter, forwardSignal: false); // completed and drained
                    return;
                }

                WaitStatus status = waiter.WaitSynchronously(Timeout.InfiniteTimeSpan);
                Assert.True(status is WaitStatus.Signaled or WaitStatus.Completed, $"a synchronous wait woke with {status}: the late set of an earlier wait on the recycled waiter");
            }
        }

        public void Check()
        {
            Assert.Equal(Items, Taken);
            Assert.Equal(0, Words[1]);
            Assert.True(_used.Count == 1, $"the reader's waits used {_used.Count} waiters: one was not returned to the pool before the next wait");
            CheckList();
        }
    }

    private static ExplorationResult Explore(Strategy strategy, Ending ending, bool steered, int iterations, PlantedFault faults = PlantedFault.None) =>
        ControlledTest.Explore(
            strategy,
            iterations,
            () => new SyncRun(ending, steered),
            new List<Action<SyncRun>> { r => r.Writer(), r => r.Reader() },
            r => r.Check(),
            new ExploreOptions { Faults = faults, Name = $"real waiter: abandoned synchronous waits ({ending}, steered {steered}, faults {faults})" });

    /// <summary>
    /// Free, or steered: the writer's first publish waits for the reader's first registration and the reader's first
    /// recheck for that publish, so the race (the signal's CAS and set around the reader's abandon and next wait) needs
    /// one preemption, not three.
    /// </summary>
    [Theory]
    [InlineData(Ending.Signals, false)]
    [InlineData(Ending.Signals, true)]
    [InlineData(Ending.SignalThenCompletion, false)]
    [InlineData(Ending.SignalThenCompletion, true)]
    public void Abandon_SynchronousWaitEndedFirst_RecycledOnceWithoutSpuriousWakeUp(Ending ending, bool steered)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), ending, steered, Budget);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, max {result.MaxSteps} steps, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    /// <summary>
    /// Abandon recycles the synchronous waiter at once: the writer's set, preempted after its CAS, lands on the reader's
    /// next wait on the same waiter, which wakes with nothing ended. Steered (see above), and asked of PCT at depth 3 and
    /// the bounded-preemption search only: the window needs the writer preempted right after its CAS and the reader then
    /// run some twenty steps to its next wait while the writer stays runnable. Measured (5,000 schedules each): steered,
    /// PCT 3 found it at schedule 93 and bounded preemption at 103, random walk and PCT 2 not at all; free, only PCT 3
    /// (schedule 315).
    /// </summary>
    [Fact]
    public void Abandon_RecyclesBeforeTheEndersSet_IsFoundAsSpuriousWakeUp()
    {
        var found = ScenarioRunner.AssertEachFinds<Xunit.Sdk.TrueException>(Strategies.Skip(2), s => Explore(s, Ending.Signals, steered: true, SearchBudget, PlantedFault.AbandonSyncRecyclesBeforeSet));
        output.WriteLine("abandon recycles before the set: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }
}
