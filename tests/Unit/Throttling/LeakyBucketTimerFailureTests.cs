using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A user's <see cref="TimeProvider"/> whose pacing timer cannot be armed several times in a row, on the timer's own
/// thread (helper s10-thr, 2026-11-23). Before, the release tried twice (its own arming and the retry's) and gave up: the
/// queued requests sat until the next <see cref="LeakyBucket.EnterAsync"/> armed the timer again. Now the retry goes on a
/// system timer with the same bounded back-off and keeps going by itself.
/// </summary>
public sealed class LeakyBucketTimerFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Release_PacingTimerArmingFailsThreeTimes_RetriesByItselfAndReleasesTheRest()
    {
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual);
        using var bucket = new LeakyBucket(3, 1.0, OverflowPolicy.Reject, clock);
        Assert.True(bucket.TryEnter()); // the output's first slot
        ValueTask<bool> second = bucket.EnterAsync(); // due at 1 s
        ValueTask<bool> third = bucket.EnterAsync();  // due at 2 s
        Assert.Equal(2, bucket.QueuedCount);
        int armed = clock.Armings;

        clock.ArmingFailures = 3; // the re-arm after the release at 1 s, the retry's arming, and the first system-timer retry's
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await second.AsTask().WaitAsync(Generous)); // released before the arming failed

        // Nobody enters again. Before: two failures, then no timer armed at all (this wait timed out, and the third
        // request was never released).
        await WaitUntil(() => clock.Armings > armed, "the pacing timer was never armed again: the retry stopped");
        Assert.Equal(3, bucket.ClockFailureCount);
        Assert.False(third.IsCompleted); // its slot (2 s) has not come on the manual clock

        manual.Advance(TimeSpan.FromSeconds(1));
        await WaitUntil(() => bucket.QueuedCount == 0, "the third request was not released at its slot");
        Assert.True(await third.AsTask().WaitAsync(Generous));
        Assert.Equal(3, bucket.Released);
    }

    [Fact]
    public async Task Release_ArmingNeverWorks_BacksOffAndDisposeEndsTheWaitAndTheRetries()
    {
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual);
        var bucket = new LeakyBucket(3, 1.0, OverflowPolicy.Reject, clock);
        Assert.True(bucket.TryEnter());
        ValueTask<bool> second = bucket.EnterAsync();
        ValueTask<bool> third = bucket.EnterAsync();

        var sinceFirstFailure = System.Diagnostics.Stopwatch.StartNew();
        clock.ArmingFailures = int.MaxValue;
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await second.AsTask().WaitAsync(Generous));
        await WaitUntil(() => bucket.ClockFailureCount >= 4, "the retry stopped after the second failure"); // keeps retrying by itself
        await Task.Delay(300);
        AssertBackedOff(bucket.ClockFailureCount, sinceFirstFailure.Elapsed);

        bucket.Dispose();
        Assert.False(await third.AsTask().WaitAsync(Generous)); // a disposed bucket answers false
        long failures = bucket.ClockFailureCount;
        await Task.Delay(50);
        Assert.InRange(bucket.ClockFailureCount, failures, failures + 1); // at most one retry was already running: no more after Dispose
    }

    /// <summary>
    /// Each retry costs at most two failures (the try's and the re-arm's) and waits twice as long as the one before
    /// (1 ms, doubling to 1 s; a system timer never fires early), so in E ms there are at most 2 x (log2(E + 1) + 2) of
    /// them. A retry that did not back off (1 ms each) would make hundreds in the 300 ms this test waits.
    /// </summary>
    private static void AssertBackedOff(long failures, TimeSpan elapsed) =>
        Assert.True(failures <= 2 * (Math.Log2(elapsed.TotalMilliseconds + 1) + 2), $"{failures} failures in {elapsed.TotalMilliseconds:F0} ms: the retry does not back off");

    private static async Task WaitUntil(Func<bool> condition, string failure)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); // real time: the retries back off on a system timer
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(1);
        }
    }
}
