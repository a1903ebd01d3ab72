using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A user's <see cref="TimeProvider"/> that throws inside <see cref="LeakyBucket"/> (helper s8-pump, 2026-11-23).
/// Before: a failed reading in the pacing timer's callback escaped it (ending the process on a real timer thread;
/// ManualTimeProvider's Advance rethrows it) and left the queue with no timer armed; a pacing timer that could not be
/// created left the failed request queued, unawaited, to spend a departure slot.
/// </summary>
public sealed class LeakyBucketClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Release_ClockThrowsOnTimerCallback_ReportedRetriedAndWaiterReleased()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var bucket = new LeakyBucket(4, 1.0, timeProvider: clock);
        var reported = new List<Exception>();
        bucket.ClockFailed += (sender, ex) =>
        {
            Assert.Same(bucket, sender);
            reported.Add(ex);
        };
        Assert.True(bucket.TryEnter());
        ValueTask<bool> queued = bucket.EnterAsync();
        Assert.Equal(1, bucket.QueuedCount);

        clock.FailReading(1); // the pacing timer's reading
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, bucket.ClockFailureCount);
        Assert.Equal("clock failed", Assert.Single(reported).Message);
        Assert.Equal(1, bucket.QueuedCount);

        clock.FailReading(1);
        manual.Advance(TimeSpan.FromMilliseconds(1)); // the first retry fails too; the next comes 2 ms later
        Assert.Equal(2, bucket.ClockFailureCount);
        manual.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, bucket.QueuedCount); // backing off

        manual.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(await queued.AsTask().WaitAsync(Generous));
        Assert.Equal(0, bucket.QueuedCount);
        Assert.Equal(2, bucket.Released);
        Assert.False(bucket.TryEnter()); // the grid moved on by one interval, no more
    }

    [Fact]
    public async Task EnterAsync_PacingTimerCreationThrows_ThrowsAndNothingStaysQueued()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        using var bucket = new LeakyBucket(4, 1.0, timeProvider: clock);
        Assert.True(bucket.TryEnter());

        clock.FailTimer(1); // the pacing timer, created by the first request that queues
        Assert.Throws<InvalidOperationException>(() => { _ = bucket.EnterAsync(); });
        Assert.Equal(0, bucket.QueuedCount); // before: 1, a request nobody awaits

        ValueTask<bool> next = bucket.EnterAsync(); // the clock works again: queues and leaves at its slot
        Assert.Equal(1, bucket.QueuedCount);
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await next.AsTask().WaitAsync(Generous));
        Assert.Equal(2, bucket.Released);
    }
}
