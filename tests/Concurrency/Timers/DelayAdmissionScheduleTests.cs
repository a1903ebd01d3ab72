using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// The delay queue's admission argument under the controlled scheduler: with the bounded count reserved before the
/// inbox enqueue and returned after the inbox dequeue, the inbox is never full after a reservation (two producers,
/// one consumer, capacity 2). The planted early release is found.
/// </summary>
public sealed class DelayAdmissionScheduleTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies =
    [
        () => Strategy.RandomWalk(5),
        () => Strategy.Pct(5, depth: 3),
        () => Strategy.BoundedPreemption(2),
    ];

    [Fact]
    public void ReserveThenPublish_ReleaseAfterTake_InboxNeverFull()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            output.WriteLine(Explore(make(), planted: false).ToString());
        }
    }

    [Fact]
    public void PlantedEarlyRelease_IsFound()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(strategy, planted: true));
            Assert.IsType<InvalidOperationException>(failure.InnerException);
            output.WriteLine($"{strategy.Name}: found at schedule {failure.Iteration + 1}: {failure.InnerException!.Message}");
        }
    }

    private static ExplorationResult Explore(Strategy strategy, bool planted) =>
        ControlledTest.Explore(
            strategy,
            Budget,
            () => new DelayAdmissionProtocol(planted, producers: 2, itemsPerProducer: 3),
            [p => p.Producer(0), p => p.Producer(1), p => p.Consumer()],
            p => p.Check(),
            new ExploreOptions { Name = planted ? "delay admission (planted early release)" : "delay admission" });
}
