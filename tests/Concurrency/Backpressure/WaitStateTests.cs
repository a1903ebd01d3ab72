using LockFree.Backpressure;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// The pooled waiter's end-exactly-once state machine (<see cref="WaitState{TAtomics}"/>, the code
/// <see cref="Waiter"/> runs) under the controlled scheduler. One wait (generation 1) is raced by its four possible
/// enders: a signaller and a completer (which read the generation under the list's lock when they pop the waiter,
/// modelled as given generation 1), a timer callback (stamped with generation 1 when armed) and a cancellation
/// callback (which reads the current generation: the owner's Detach waits for a running cancellation callback before
/// the waiter is reused, modelled by the owner waiting for it). The owner waits for the wait to end, reuses the
/// waiter for a second wait (generation 2), and ends that one itself after a successful recheck
/// (<see cref="WaitState{TAtomics}.TryFinish(WaitStatus)"/>, as <see cref="Waiter.TryFinishQuietly"/>). Checked:
/// exactly one ender won the first wait, the owner saw that ender's status, and nothing stale ended the second wait
/// (the timer, whose disposal does not wait for a running callback, may fire at any point). Proof of power: a
/// compare-and-swap split into a load and a store (a plain store deciding the race) is found as two winners; a timer
/// that is not stamped with its generation, and a reuse that does not wait for a running cancellation callback (which
/// reads the current generation), are found ending the later wait.
/// </summary>
public sealed class WaitStateTests(ITestOutputHelper output)
{
    private static int Budget => ExplorationBudget.Schedules(2000);

    /// <summary>
    /// Schedules a planted-bug search may take (it stops at the first failure). Bounded-preemption search needs the
    /// most: it varies the deepest choices first, and the split CAS must be split early (measured: schedule 8,585, well under a second).
    /// </summary>
    private const int SearchBudget = 20_000;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(43);

    private static readonly WaitStatus[] EnderStatus = [WaitStatus.Signaled, WaitStatus.Completed, WaitStatus.TimedOut, WaitStatus.Canceled];

    /// <summary>One waiter's state and what each party saw.</summary>
    internal sealed class Race(bool unstampedTimer, bool detachSkipsCancellation = false)
    {
        private readonly WaitState<TestAtomics>[] _state = new WaitState<TestAtomics>[1];
        private readonly bool[] _won = new bool[EnderStatus.Length];
        private readonly object _wake = new();
        private int _cancelDone;
        private int _first;

        public WaitStatus OwnerSaw { get; private set; }

        public bool SecondEndedByOwner { get; private set; }

        public int SecondGeneration { get; private set; }

        public bool[] Won => _won;

        /// <summary>Outside the run: the first wait begins (the waiter is rented and linked).</summary>
        public void Begin() => _first = _state[0].Begin();

        public void Owner()
        {
            while (_state[0].Status == WaitStatus.Pending) // the parked waiter, until its ender wakes it (read and block: one step)
            {
                ControlledScheduler.Current!.Block(_wake);
            }

            OwnerSaw = _state[0].Status;
            while (!detachSkipsCancellation && Volatile.Read(ref _cancelDone) == 0) // Detach: disposing the registration waits for a running cancellation callback
            {
                ControlledScheduler.Current!.Block(_wake);
            }

            SecondGeneration = _state[0].Begin(); // returned to the pool, rented again: the second wait
            SecondEndedByOwner = _state[0].TryFinish(WaitStatus.Signaled); // its recheck succeeded (TryFinishQuietly)
        }

        /// <summary>Ender <paramref name="index"/> of <see cref="EnderStatus"/>.</summary>
        public void Ender(int index)
        {
            WaitStatus status = EnderStatus[index];
            bool won = status switch
            {
                WaitStatus.Canceled => _state[0].TryFinish(status), // the cancellation callback: the current generation
                WaitStatus.TimedOut when unstampedTimer => _state[0].TryFinish(status), // planted: the timer reads the generation when it fires
                _ => _state[0].TryFinish(status, _first), // popped under the lock / stamped when armed
            };
            _won[index] = won;
            if (status == WaitStatus.Canceled)
            {
                Volatile.Write(ref _cancelDone, 1);
            }

            ControlledScheduler.Current!.WakeAll(_wake); // the winner wakes the owner (the event, or the queued continuation)
        }

        public void Check()
        {
            Assert.True(SecondEndedByOwner, $"a stale ender ended the second wait (status {_state[0].Status})");
            int winners = _won.Count(w => w);
            Assert.True(winners == 1, $"the first wait was ended {winners} times ({string.Join(", ", EnderStatus.Where((_, i) => _won[i]))})");
            Assert.Equal(EnderStatus[Array.IndexOf(_won, true)], OwnerSaw);
            Assert.Equal(_first + 1, SecondGeneration);
        }
    }

    [Fact]
    public void WaitState_EndersRaceAndReuse_EndsExactlyOnce()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), Budget, PlantedBug.None, unstampedTimer: false);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public void WaitState_SplitCompareExchange_IsFoundAsTwoWinners()
    {
        var found = ScenarioRunner.AssertEachFinds<Xunit.Sdk.TrueException>(Strategies, s => Explore(s, SearchBudget, PlantedBug.SplitCompareExchange, unstampedTimer: false));
        output.WriteLine("split compare-and-swap: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1} ({f.Failure.InnerException!.Message})")));
    }

    [Fact]
    public void WaitState_TimerWithoutGeneration_IsFoundEndingTheLaterWait()
    {
        var found = ScenarioRunner.AssertEachFinds<Xunit.Sdk.TrueException>(Strategies, s => Explore(s, SearchBudget, PlantedBug.None, unstampedTimer: true));
        Assert.All(found, f => Assert.Contains("stale ender", f.Failure.InnerException!.Message));
        output.WriteLine("timer without its generation: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    [Fact]
    public void WaitState_ReuseWithoutAwaitingCancellationCallback_IsFoundEndingTheLaterWait()
    {
        var found = ScenarioRunner.AssertEachFinds<Xunit.Sdk.TrueException>(Strategies, s => Explore(s, SearchBudget, PlantedBug.None, unstampedTimer: false, detachSkipsCancellation: true));
        Assert.All(found, f => Assert.Contains("stale ender", f.Failure.InnerException!.Message));
        output.WriteLine("reuse before the cancellation callback finished: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    private static ExplorationResult Explore(Strategy strategy, int budget, PlantedBug bugs, bool unstampedTimer, bool detachSkipsCancellation = false)
    {
        var threads = new List<Action<Race>> { r => r.Owner() };
        for (int i = 0; i < EnderStatus.Length; i++)
        {
            int index = i;
            threads.Add(r => r.Ender(index));
        }

        return ControlledTest.Explore(
            strategy,
            budget,
            () =>
            {
                var race = new Race(unstampedTimer, detachSkipsCancellation);
                race.Begin();
                return race;
            },
            threads,
            r => r.Check(),
            new ExploreOptions { Bugs = bugs, Name = $"wait state (bugs: {bugs}, unstamped timer: {unstampedTimer}, detach skips cancellation: {detachSkipsCancellation})" });
    }
}
