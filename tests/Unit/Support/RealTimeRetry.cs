using Xunit;

namespace LockFree.Tests.Unit.Support;

/// <summary>
/// Checks for a retry that runs on a system timer after a clock's own timer failed (TokenBucket's pump, LeakyBucket's
/// pacing): it keeps going by itself, on real time, and backs off.
/// </summary>
internal static class RealTimeRetry
{
    /// <summary>
    /// Each retry costs at most two failures (the try's and the re-arm's) and waits twice as long as the one before
    /// (1 ms, doubling to 1 s; a system timer never fires early), so in E ms there are at most 2 x (log2(E + 1) + 2) of
    /// them. A retry that did not back off (1 ms each) would make hundreds in the 300 ms these tests wait.
    /// </summary>
    public static void AssertBackedOff(long failures, TimeSpan elapsed) =>
        Assert.True(failures <= 2 * (Math.Log2(elapsed.TotalMilliseconds + 1) + 2), $"{failures} failures in {elapsed.TotalMilliseconds:F0} ms: the retry does not back off");

    /// <summary>Polls <paramref name="condition"/> on real time (the retries back off on a system timer), failing after 10 s.</summary>
    public static async Task WaitUntil(Func<bool> condition, string failure)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(1);
        }
    }
}
