using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// The delay queue's wake-up handshake (armed time vs. producer publish) under the controlled scheduler, with and
/// without store buffers: the real protocol never loses a wake-up; each planted variant is found.
/// </summary>
public sealed class DelayWakeupScheduleTests(ITestOutputHelper output)
{
    private const int Budget = 1000;

    private static readonly Func<Strategy>[] Strategies =
    [
        () => Strategy.RandomWalk(11),
        () => Strategy.Pct(11, depth: 2),
        () => Strategy.BoundedPreemption(2),
    ];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Correct_NeverLosesTheWakeup(bool storeBuffers)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            ExplorationResult result = Explore(make(), DelayWakeupVariant.Correct, storeBuffers);
            output.WriteLine(result.ToString());
        }
    }

    [Fact]
    public void NoRecheck_IsFound() => AllFind(DelayWakeupVariant.NoRecheck, storeBuffers: false);

    [Fact]
    public void NoFence_IsFoundWithStoreBuffers() => AllFind(DelayWakeupVariant.NoFence, storeBuffers: true);

    [Fact]
    public void NoFence_IsInvisibleWithoutStoreBuffers()
    {
        // The blind spot of sequentially consistent exploration, documented: only the store-buffer simulation sees it.
        foreach (Func<Strategy> make in Strategies)
        {
            Explore(make(), DelayWakeupVariant.NoFence, storeBuffers: false);
        }
    }

    private static ExplorationResult Explore(Strategy strategy, DelayWakeupVariant variant, bool storeBuffers) =>
        ControlledTest.Explore(
            strategy,
            Budget,
            () =>
            {
                var protocol = new DelayWakeupProtocol<TestAtomics>(variant);
                protocol.Setup();
                return protocol;
            },
            [p => p.Producer(), p => p.Reader()],
            p => p.Check(),
            new ExploreOptions { StoreBuffers = storeBuffers, Name = $"delay wake-up ({variant})" });

    private void AllFind(DelayWakeupVariant variant, bool storeBuffers)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(strategy, variant, storeBuffers));
            Assert.IsType<InvalidOperationException>(failure.InnerException);
            output.WriteLine($"{variant}: {strategy.Name} found it at schedule {failure.Iteration + 1}");
        }
    }
}
