using LockFree.Internal;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>The await-loop allocation checker (<see cref="AwaitLoopRuns"/>) finds planted allocations and passes pool growth.</summary>
public sealed class AwaitLoopRunsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task PlantedAllocationPerWait_FailsInEveryRegime()
    {
        // Loops that wait a few times per run (as on the CI machine) or thousands of times: 32 B per wait in every run.
        foreach (long waits in new long[] { 1, 6, 37, 5_000 })
        {
            await Assert.ThrowsAsync<TrueException>(() => AwaitLoopRuns.AssertSteadyStateAllocatesNothingAsync(
                () => Task.FromResult((10L, waits, 32 * waits)), 10, output, "planted"));
        }
    }

    [Fact]
    public async Task PlantedPoolThatDropsItsObjects_FailsOnTheGrowthBound()
    {
        // Every run is clean in bytes (the objects were created outside the measured calls) but the pools keep creating.
        int runs = 0;
        await Assert.ThrowsAsync<TrueException>(() => AwaitLoopRuns.AssertSteadyStateAllocatesNothingAsync(
            () =>
            {
                runs++;
                for (int i = 0; i < 20; i++)
                {
                    PoolGrowth.Count();
                }

                return Task.FromResult((10L, 5L, 0L));
            },
            10,
            output,
            "planted"));
        Assert.Equal(AwaitLoopRuns.MaxRuns, runs); // a clean run with few waits does not stop the measuring
    }

    [Fact]
    public async Task GrowthInSomeRuns_AsInSessionTwelvesCiRun_Passes()
    {
        // The ten runs of the CI failure: 216 B in the first, 432 B in the last, the runs between clean, 1 to 37 waits each.
        (long Waits, long Bytes)[] seen = [(14, 216), (6, 0), (8, 0), (4, 0), (35, 0), (2, 0), (6, 0), (1, 0), (25, 0), (37, 432)];
        int index = 0;
        await AwaitLoopRuns.AssertSteadyStateAllocatesNothingAsync(
            () =>
            {
                (long waits, long bytes) = seen[index++];
                return Task.FromResult((10L, waits, bytes));
            },
            10,
            output,
            "replayed");
        Assert.Equal(seen.Length, index);
    }

    [Fact]
    public async Task CleanRunWithEnoughWaits_StopsTheMeasuring()
    {
        int runs = 0;
        await AwaitLoopRuns.AssertSteadyStateAllocatesNothingAsync(
            () => Task.FromResult((10L, 3_000L, runs++ == 0 ? 216L : 0L)), 10, output, "stops");
        Assert.Equal(2, runs);
    }

    [Fact]
    public async Task WrongSum_Fails() =>
        await Assert.ThrowsAsync<EqualException>(() => AwaitLoopRuns.AssertSteadyStateAllocatesNothingAsync(
            () => Task.FromResult((9L, 5_000L, 0L)), 10, output, "sum"));
}
