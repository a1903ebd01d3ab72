using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A bucket a <see cref="KeyedTokenBucket{TKey}"/> evicts disposes its pump's timer (created by a wait queued on the
/// bucket through <see cref="KeyedTokenBucket{TKey}.TryGetBucket"/>). Before (s11-rev) an evicted bucket kept it for
/// good, so a clock that tracks its timers accumulated one per evicted key that ever had a waiter.
/// </summary>
public sealed class KeyedTokenBucketTimerDisposalTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task EvictIdle_BucketWhoseWaitArmedItsPumpTimer_TimerDisposed()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<string>(1, 1.0, maxKeys: 4, time);
        Assert.True(keyed.TryAcquire("a"));
        Assert.True(keyed.TryGetBucket("a", out TokenBucket? bucket));
        ValueTask<bool> waiting = bucket.AcquireAsync(1); // the pump arms its timer on the clock for the next token
        Assert.Equal(1, time.ActiveTimers);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await waiting.AsTask().WaitAsync(Generous));
        time.Advance(TimeSpan.FromSeconds(1)); // full again, nobody waiting: idle

        Assert.Equal(1, keyed.EvictIdle());

        Assert.Equal(0, time.ActiveTimers); // before: 1, for good
        Assert.Throws<InvalidOperationException>(() => bucket.TryAcquire()); // retired, as before
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await bucket.AcquireAsync(1)); // a wait on it fails at once
        Assert.Equal(0, time.ActiveTimers); // and arms nothing
        Assert.True(keyed.TryAcquire("a")); // the key again: a fresh bucket
    }

    [Fact]
    public async Task TryAcquire_NewKeyEvictsABucketWithAPumpTimer_TimerDisposed()
    {
        // The automatic sweep of a full table (a new key's insert), not only EvictIdle.
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<string>(1, 1.0, maxKeys: 1, time);
        Assert.True(keyed.TryAcquire("a"));
        Assert.True(keyed.TryGetBucket("a", out TokenBucket? bucket));
        ValueTask<bool> waiting = bucket.AcquireAsync(1);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await waiting.AsTask().WaitAsync(Generous));
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(keyed.TryAcquire("b")); // the table is full: the sweep evicts "a"

        Assert.Equal(0, time.ActiveTimers); // before: 1
    }

    [Fact]
    public async Task Dispose_KeyedLimiter_CreatesNoPumpTimerAndLeavesNone()
    {
        // The keyed limiter never queues (AcquireAsync answers at once), so it never arms a bucket's pump timer: a timer on
        // one of its table's buckets is a wait the table's owner queued, and stays the owner's (a guard: passed before).
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<string>(1, 1.0, maxKeys: 4, time);
        var limiter = new LockFreeKeyedRateLimiter<string, string>(keyed, resource => resource);
        using (RateLimitLease first = limiter.AttemptAcquire("a"))
        {
            Assert.True(first.IsAcquired);
        }

        using (RateLimitLease second = await limiter.AcquireAsync("a"))
        {
            Assert.False(second.IsAcquired);
        }

        limiter.Dispose();
        Assert.Equal(0, time.ActiveTimers);
    }
}
