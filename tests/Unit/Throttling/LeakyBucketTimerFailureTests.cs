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
        await RealTimeRetry.WaitUntil(() => clock.Armings > armed, "the pacing timer was never armed again: the retry stopped");
        Assert.Equal(3, bucket.ClockFailureCount);
        Assert.False(third.IsCompleted); // its slot (2 s) has not come on the manual clock

        manual.Advance(TimeSpan.FromSeconds(1));
        await RealTimeRetry.WaitUntil(() => bucket.QueuedCount == 0, "the third request was not released at its slot");
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
        await RealTimeRetry.WaitUntil(() => bucket.ClockFailureCount >= 4, "the retry stopped after the second failure"); // keeps retrying by itself
        await Task.Delay(300);
        RealTimeRetry.AssertBackedOff(bucket.ClockFailureCount, sinceFirstFailure.Elapsed);

        bucket.Dispose();
        Assert.False(await third.AsTask().WaitAsync(Generous)); // a disposed bucket answers false
        long failures = bucket.ClockFailureCount;
        await Task.Delay(50);
        Assert.InRange(bucket.ClockFailureCount, failures, failures + 1); // at most one retry was already running: no more after Dispose
    }
}
