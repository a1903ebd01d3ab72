using LockFree.Internal;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The measured runs of the await-loop allocation tests: a writer and a reader loop on the thread pool, each call's bytes
/// counted on its calling thread. The claim is "a steady state allocates nothing"; what is allowed is a pool growing to a
/// new high-water mark, once: a run on a loaded machine may see more wake-ups queued at once than any run before, and the
/// waiters' pool (or a token's registration nodes) grows by one object then. Measured: one waiter, 216 B, in a run with 14
/// waits; in the CI run of session 12's stop, 216 B in the first of ten runs and 432 B in the tenth, every run with 1 to
/// 37 waits (the loops flowed): the test then demanded the tenth run be clean and failed, although runs two to nine were.
/// So the test passes when some run that waited allocated nothing (a per-wait allocation shows in every run that waits),
/// stops early once a clean run waited <see cref="EnoughWaits"/> times, and bounds the objects the pools created over all
/// runs (<see cref="PoolGrowth"/>): a pool that drops its objects and creates new ones fails there even when the bytes hide
/// among growth.
/// </summary>
internal static class AwaitLoopRuns
{
    /// <summary>Measured runs at most.</summary>
    public const int MaxRuns = 10;

    /// <summary>Waits of a clean run that end the measuring early (the loops flow without waiting when both have a core).</summary>
    public const long EnoughWaits = 1_000;

    /// <summary>
    /// Objects the pools may create over all measured runs: each waiter list keeps up to 64 waiters; the loops' high-water
    /// marks seen are one or two.
    /// </summary>
    public const long GrowthBound = 64;

    /// <summary>Runs <paramref name="run"/> (sum read, calls that waited, bytes the calls allocated) until the claim is shown; see the type.</summary>
    public static async Task AssertSteadyStateAllocatesNothingAsync(
        Func<Task<(long Sum, long Waits, long Allocated)>> run, long expectedSum, ITestOutputHelper output, string label)
    {
        bool clean = false, anyWaited = false, cleanWithoutWaits = false;
        long grown = 0;
        for (int index = 0; index < MaxRuns; index++)
        {
            long before = PoolGrowth.Created;
            (long sum, long waits, long allocated) = await run();
            long growth = PoolGrowth.Created - before;
            grown += growth;
            output.WriteLine($"{label}: {allocated} B in the calls, {waits} waits, {growth} objects created by pools{(allocated > 0 && growth == 0 ? " (not a pool of ours: a token's registration nodes?)" : string.Empty)}");
            Assert.Equal(expectedSum, sum);
            anyWaited |= waits > 0;
            clean |= allocated == 0 && waits > 0;
            cleanWithoutWaits |= allocated == 0 && waits == 0;
            if (allocated == 0 && waits >= EnoughWaits)
            {
                break;
            }
        }

        Assert.True(clean || (!anyWaited && cleanWithoutWaits), $"{label}: no run that waited allocated nothing in {MaxRuns} runs (see the output)");
        Assert.True(grown <= GrowthBound, $"{label}: the pools created {grown} objects over the runs (at most {GrowthBound} expected): objects are not going back");
    }
}
