using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// ForkJoin's owner/thief handshake as a model over the real Chase-Lev engine (<see cref="ForkJoinHandshake{TAtomics}"/>)
/// under the controlled scheduler: every fork runs exactly once, the owner reads the thief's result, nobody hangs, with
/// a pooled job reused across forks; each planted variant is found.
/// </summary>
/// <remarks>
/// No store-buffer run: the handshake's ordering rests only on read-modify-writes (full fences on every platform), and
/// the Chase-Lev engine reads its own bottom index with plain field reads, which the simulation cannot forward from the
/// owner's buffered stores, so an owner that pushes and pops again before a drain would see a stale bottom there (a
/// deadlock that real hardware, which forwards, never produces).
/// </remarks>
public sealed class ForkJoinHandshakeTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies = [.. CiStrategies.Standard(13), () => Strategy.Pct(13, depth: 4)];

    // The losing schedules need the steal to land between the owner's push and pop and then two more switches inside
    // the handshake: PCT with two or three priority changes found only some of them within 3,000 schedules, and
    // bounded preemption (2) not all; a random walk and PCT(4) find each within a few hundred (seed 13).
    private static readonly Func<Strategy>[] Finders = [() => Strategy.RandomWalk(13), () => Strategy.Pct(13, depth: 4)];

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 3)]
    [InlineData(3, 4)]
    public void Handshake_EveryForkOnce_RightResult_NoLostWakeup(int forks, int stealAttempts)
    {
        int stolen = 0, takenBack = 0;
        foreach (Func<Strategy> make in Strategies)
        {
            Strategy strategy = make();
            ExplorationResult result = Explore(strategy, forks, stealAttempts, ForkJoinBug.None, h =>
            {
                stolen += h.Stolen;
                takenBack += h.TakenBack;
            });
            output.WriteLine($"{strategy.Name}: {result.Iterations} schedules, {result.TotalSteps} steps");
        }

        // The exploration reached both paths (otherwise it proved nothing about the handshake).
        Assert.True(stolen > 0 && takenBack > 0, $"stolen {stolen}, taken back {takenBack}");
    }

    [Fact]
    public void PlantedThiefChecksWaitingBeforeDone_IsFoundAsDeadlock() =>
        AllStrategiesFind<DeadlockException>(ForkJoinBug.ThiefChecksWaitingBeforeDone);

    [Fact]
    public void PlantedOwnerChecksDoneBeforeWaiting_IsFoundAsDeadlock() =>
        AllStrategiesFind<DeadlockException>(ForkJoinBug.OwnerChecksDoneBeforeWaiting);

    [Fact]
    public void PlantedResultAfterDone_IsFoundAsARace() =>
        // The race detector sees the owner's read of the result and the thief's late write unordered (the wrong result
        // the owner would then read is checked too, but the race is reported first).
        AllStrategiesFind<DataRaceException>(ForkJoinBug.ResultAfterDone);

    [Fact]
    public void PlantedThiefClearsJobAfterDone_IsFoundAsARace() =>
        // The thief's late write meets the owner's refill of the reused job with no happens-before edge between them.
        AllStrategiesFind<DataRaceException>(ForkJoinBug.ThiefClearsJobAfterDone, forks: 2);

    private static ExplorationResult Explore(
        Strategy strategy, int forks, int stealAttempts, ForkJoinBug bug, Action<ForkJoinHandshake<TestAtomics>>? observe = null) =>
        ControlledTest.Explore(
            strategy,
            Budget,
            () => new ForkJoinHandshake<TestAtomics>(forks, stealAttempts, bug),
            new List<Action<ForkJoinHandshake<TestAtomics>>> { h => h.Owner(), h => h.Thief() },
            h =>
            {
                h.Check();
                observe?.Invoke(h);
            },
            new ExploreOptions { Name = $"fork-join handshake {forks} forks {bug}" });

    private void AllStrategiesFind<TCause>(ForkJoinBug bug, int forks = 1)
        where TCause : Exception
    {
        var found = ScenarioRunner.AssertEachFinds<TCause>(Finders, strategy => Explore(strategy, forks, 3, bug));
        output.WriteLine(found[0].Failure.Message);
        output.WriteLine($"{bug}: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }
}
