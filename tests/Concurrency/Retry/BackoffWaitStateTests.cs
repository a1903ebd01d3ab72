using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Retry;

/// <summary>
/// A retry's backoff wait on a wheel (<see cref="BackoffWaitState{TAtomics}"/>, the code <see cref="RetryPolicy"/>'s pooled
/// operation runs) under the controlled scheduler. One wait, armed (its wheel timer and its token registration) before the
/// run, raced by three logical threads: the operation's own thread, which parks (TryPark) and, once resumed (or at once,
/// when the wait ended first), releases the wait as the operation does: it waits for a running cancellation callback
/// (the registration's Dispose), and, when the token won, cancels the wheel timer (a CAS on a modelled wheel node:
/// Queued to Cancelled, racing the wheel's Queued to Firing) and drops its reference when that failed, returning the
/// operation to the pool on the last one; the wheel's driver, which claims the node and runs the callback (TryEnd with
/// the operation's current generation; the loser drops the timer's reference and returns the operation on the last
/// one); and the token's cancellation callback. A returned operation is rented again at once and begins its next wait;
/// so does the operation after the timer won. Checked: exactly one of timer and token ended the wait, the owner saw that
/// one, the operation was resumed once when parked and never when it went on inline, it went back to the pool at most
/// once (exactly once when the token won), and nothing ended the next wait. Proof of power: a release that ignores the
/// timer's reference (<see cref="PlantedFault.BackoffReleaseIgnoresTimerRef"/>) is found, the losing callback ending the
/// recycled operation's next wait.
/// </summary>
public sealed class BackoffWaitStateTests(ITestOutputHelper output)
{
    private static int Budget => ExplorationBudget.Schedules(2000);

    /// <summary>Schedules a planted-fault search may take (it stops at the first failure).</summary>
    private const int SearchBudget = 20_000;

    private const long Queued = 0;
    private const long Firing = 1;
    private const long Cancelled = 2;

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(47);

    /// <summary>One operation's wait, its modelled wheel node, and what each party saw.</summary>
    internal sealed class Race
    {
        private readonly BackoffWaitState<TestAtomics>[] _wait = new BackoffWaitState<TestAtomics>[1];
        private readonly long[] _node = new long[1]; // the wheel timer's status: Queued, Firing or Cancelled
        private readonly object _wake = new();
        private int _generation;
        private int _resumes;
        private int _cancelDone;
        private int _returns;
        private int _nextGeneration;

        public bool Parked { get; private set; }

        public BackoffWaitStatus OwnerSaw { get; private set; }

        public bool TimerWon { get; private set; }

        /// <summary>The timer's callback ended a later wait of the recycled operation.</summary>
        public bool StaleEnd { get; private set; }

        public bool TokenWon { get; private set; }

        /// <summary>Outside the run: the wait begins, its wheel timer and registration armed.</summary>
        public void Begin() => _generation = _wait[0].Begin(wheelTimer: true);

        /// <summary>The operation: parks, is resumed (or goes on inline), releases the wait.</summary>
        public void Owner()
        {
            Parked = _wait[0].TryPark(_generation);
            while (Parked && Volatile.Read(ref _resumes) == 0) // parked until the winner resumes it (read and block: one step)
            {
                ControlledScheduler.Current!.Block(_wake);
            }

            OwnerSaw = _wait[0].Status;
            while (Volatile.Read(ref _cancelDone) == 0) // the registration's Dispose waits for a running cancellation callback
            {
                ControlledScheduler.Current!.Block(_wake);
            }

            if (OwnerSaw == BackoffWaitStatus.Fired)
            {
                NextWait(); // the timer fired: the operation goes on to its next attempt and wait
                return;
            }

            // The token won (the call completes canceled): cancel the wheel timer; when it is firing, its callback holds a
            // reference, and the operation's release leaves the return to whichever drops the last one.
            bool cancelled = TestAtomics.CompareExchange(ref _node[0], Cancelled, Queued) == Queued; // the wheel's Cancel
            if (cancelled || _wait[0].ReleaseByWait())
            {
                Return();
            }
        }

        /// <summary>The wheel's driver: claims the timer, then runs its callback (the operation's OnWheelEnded).</summary>
        public void Timer()
        {
            if (TestAtomics.CompareExchange(ref _node[0], Firing, Queued) != Queued) // the driver claims the node for its batch
            {
                return; // cancelled first: the callback never runs
            }

            int generation = _wait[0].Generation; // the operation's current wait: this one while the timer's reference holds it
            if (_wait[0].TryEnd(BackoffWaitStatus.Fired, generation, out bool resume))
            {
                StaleEnd |= generation != _generation;
                TimerWon |= generation == _generation;
                Resume(resume);
                return; // the winner touches nothing more
            }

            if (_wait[0].ReleaseByTimer())
            {
                Return();
            }
        }

        /// <summary>The token's cancellation callback (the operation's OnCanceled).</summary>
        public void Token()
        {
            if (_wait[0].TryEnd(BackoffWaitStatus.Canceled, _wait[0].Generation, out bool resume))
            {
                TokenWon = true;
                Resume(resume);
            }

            Volatile.Write(ref _cancelDone, 1);
            ControlledScheduler.Current!.WakeAll(_wake);
        }

        public void Check()
        {
            Assert.True(!StaleEnd, "a stale ender ended the next wait (the timer's callback, after the operation was recycled)");
            Assert.True(TimerWon ^ TokenWon, $"timer won: {TimerWon}, token won: {TokenWon}: exactly one must end the wait");
            Assert.True(OwnerSaw == (TimerWon ? BackoffWaitStatus.Fired : BackoffWaitStatus.Canceled), $"the operation saw {OwnerSaw}");
            Assert.True(_resumes == (Parked ? 1 : 0), $"resumed {_resumes} times (parked: {Parked})");
            Assert.True(_returns == (TokenWon ? 1 : 0), $"returned to the pool {_returns} times (token won: {TokenWon})");
            Assert.True(_nextGeneration == _generation + 1, $"the next wait began at generation {_nextGeneration}, not {_generation + 1}");
            Assert.True(_wait[0].Status == BackoffWaitStatus.Pending, $"a stale ender ended the next wait ({_wait[0].Status})");
        }

        private void Resume(bool resume)
        {
            if (resume)
            {
                Interlocked.Increment(ref _resumes);
                ControlledScheduler.Current!.WakeAll(_wake);
            }
        }

        /// <summary>Back to the pool, and rented again at once: the next wait begins on the same state.</summary>
        private void Return()
        {
            Interlocked.Increment(ref _returns);
            NextWait();
        }

        private void NextWait() => _nextGeneration = _wait[0].Begin(wheelTimer: true);
    }

    [Fact]
    public void BackoffWait_TimerAndTokenRace_EndsOnceAndReturnsOnce()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), Budget, PlantedFault.None);
            output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, {result.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public void BackoffWait_ReleaseIgnoringTheTimerRef_IsFoundEndingTheNextWait()
    {
        var found = ScenarioRunner.AssertEachFinds<Xunit.Sdk.TrueException>(Strategies, s => Explore(s, SearchBudget, PlantedFault.BackoffReleaseIgnoresTimerRef));
        Assert.All(found, f => Assert.Contains("stale ender", f.Failure.InnerException!.Message));
        output.WriteLine("release ignoring the timer's reference: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1} ({f.Failure.InnerException!.Message})")));
    }

    private static ExplorationResult Explore(Strategy strategy, int budget, PlantedFault faults) =>
        ControlledTest.Explore(
            strategy,
            budget,
            () =>
            {
                var race = new Race();
                race.Begin();
                return race;
            },
            [r => r.Owner(), r => r.Timer(), r => r.Token()],
            r => r.Check(),
            new ExploreOptions { Faults = faults, Name = $"backoff wait (faults: {faults})" });
}
