using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A user's <see cref="TimeProvider"/> whose timer creation throws while a timed acquire queues (helper s8-clockwait,
/// 2026-11-23): the acquire throws and leaves no waiter behind, so no grant is spent on it.
/// </summary>
public sealed class TokenBucketClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AcquireAsync_TimedAndCreateTimerThrows_ThrowsAndNoTokensAreLost()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(1, 1.0, clock);
        Assert.True(bucket.TryAcquire(1));
        ValueTask<bool> first = bucket.AcquireAsync(1); // queues; the pump arms its timer for the next token
        Assert.False(first.IsCompleted);

        clock.FailTimer(1); // the timed acquire's own timeout timer
        Assert.Throws<InvalidOperationException>(() => { _ = bucket.AcquireAsync(1, TimeSpan.FromSeconds(10)); });

        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await first.AsTask().WaitAsync(Generous));

        // Before, the failed acquire's waiter stayed queued: this second's token was granted to it and lost.
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(1));
    }

    [Fact]
    public async Task AcquireAsync_TimedAndCreateTimerThrowsAlone_BucketAdmitsAgain()
    {
        // The only waiter: its link set the bucket's Waiting flag (no barging past the queue); a failed acquire clears it.
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(1, 1.0, clock);
        Assert.True(bucket.TryAcquire(1));

        clock.FailTimer(1);
        Assert.Throws<InvalidOperationException>(() => { _ = bucket.AcquireAsync(1, TimeSpan.FromSeconds(10)); });

        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(1));
        ValueTask<bool> again = bucket.AcquireAsync(1, TimeSpan.FromSeconds(10)); // the clock works again: queues and is served
        Assert.False(again.IsCompleted);
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await again.AsTask().WaitAsync(Generous));
    }
}
