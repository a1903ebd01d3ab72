using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A user's <see cref="TimeProvider"/> that cannot create, or arm, the pump's timer several times in a row (helper
/// s10-thr, 2026-11-23). Before, the pump tried twice (its own attempt and the retry's) and gave up: a queued waiter
/// sat until another caller's acquire, cancellation or refund ran the pump. Now the retry goes on a system timer with
/// the same bounded back-off (1 ms doubling to 1 s) and keeps going by itself until the clock's timer works.
/// </summary>
public sealed class TokenBucketPumpTimerFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AcquireAsync_PumpTimerCreationFailsFiveTimes_RetriesByItselfAndServesTheWaiter()
    {
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual) { CreationFailures = 5 };
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        Assert.True(bucket.TryAcquire(1));

        ValueTask<bool> waiting = bucket.AcquireAsync(1); // infinite: the waiter arms no timer of its own
        Assert.Equal(1, bucket.QueuedWaiters);

        // Nobody else calls the bucket. Before: two failed creations, then nothing until another caller came (this wait
        // timed out). Now the system-timer retries (1, 2, 4 ms of real time) reach the sixth creation, which works.
        await RealTimeRetry.WaitUntil(() => clock.TimersCreated == 1, "the pump's timer was never created: the retry stopped");
        Assert.Equal(5, bucket.ClockFailureCount);
        Assert.Equal(1, bucket.QueuedWaiters); // the token comes at 1 s on the manual clock

        manual.Advance(TimeSpan.FromSeconds(1)); // the clock's own timer (armed by the last retry) fires
        Assert.True(await waiting.AsTask().WaitAsync(Generous));
        Assert.Equal(0, bucket.QueuedWaiters);
        Assert.False(bucket.TryAcquire(1)); // exactly one token a second: nothing lost or minted by the retries
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(1));
        Assert.False(bucket.TryAcquire(1));
    }

    [Fact]
    public async Task AcquireAsync_PumpTimerArmingFailsFourTimes_RetriesByItselfAndServesTheWaiter()
    {
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual) { ArmingFailures = 4 };
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        Assert.True(bucket.TryAcquire(1));

        ValueTask<bool> waiting = bucket.AcquireAsync(1);
        await RealTimeRetry.WaitUntil(() => clock.Armings == 1, "the pump's timer was never armed: the retry stopped");
        Assert.Equal(4, bucket.ClockFailureCount);

        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await waiting.AsTask().WaitAsync(Generous));
        Assert.False(bucket.TryAcquire(1));
    }

    [Fact]
    public async Task AcquireAsync_PumpTimerNeverWorks_BacksOffAndCancellationEndsTheWaitAndTheBucketAdmits()
    {
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual) { CreationFailures = int.MaxValue };
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        Assert.True(bucket.TryAcquire(1));
        using var cancel = new CancellationTokenSource();

        var sinceFirstFailure = System.Diagnostics.Stopwatch.StartNew();
        ValueTask<bool> waiting = bucket.AcquireAsync(1, cancel.Token);
        await RealTimeRetry.WaitUntil(() => bucket.ClockFailureCount >= 4, "the retry stopped after the second failure"); // keeps retrying by itself
        await Task.Delay(300);
        RealTimeRetry.AssertBackedOff(bucket.ClockFailureCount, sinceFirstFailure.Elapsed);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.AsTask().WaitAsync(Generous));
        Assert.Equal(0, bucket.QueuedWaiters);

        // With the queue empty the pump needs no timer: the Waiting flag is down and the bucket admits again.
        manual.Advance(TimeSpan.FromSeconds(1), fireTimers: false);
        Assert.True(bucket.TryAcquire(1));
    }
}
