using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A refund into a bucket with queued waiters serves them at once (helper s10-thr, 2026-11-23). Before, a refusal that
/// gave an earlier level its tokens back (<see cref="TokenBucket.TryAcquireAll"/>, <see cref="HierarchicalTokenBucket{TKey, TOperation}"/>)
/// left them in the bucket while its waiter slept until the pump's timer fired, at the time the waiter would have waited
/// without them. The manual clock does not move before the waiter is served: it completes from the refund alone. (A
/// waiter's completion runs on the thread pool, so the synchronous evidence is that the refund's pump unlinked it.)
/// </summary>
public sealed class TokenBucketRefundWakeTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TryAcquireAll_LaterLevelRefuses_RefundServesTheEarlierLevelsWaiterAtOnce()
    {
        var manual = new ManualTimeProvider();
        var hooked = new HookedReadingClock(manual);
        var first = new TokenBucket(1, 0.1, fastPathBatch: 1, manual); // one token per 10 s
        var second = new TokenBucket(1, 0.1, fastPathBatch: 1, hooked);
        Assert.True(second.TryAcquire(1)); // empty: it refuses the request below

        ValueTask<bool> waiter = default;
        hooked.OnNextReading(() =>
        {
            // Between the first level's take and its refund: the first level is empty, so this waiter queues (its pump
            // arms the timer for 10 s from now).
            waiter = first.AcquireAsync(1);
            Assert.False(waiter.IsCompleted);
        });

        Assert.False(TokenBucket.TryAcquireAll([first, second], 1, out _));
        Assert.Equal(0, first.QueuedWaiters); // granted and unlinked by the refund's pump; before: still queued, the refunded token unused until the timer's tick 10 s later
        Assert.True(await waiter.AsTask().WaitAsync(Generous)); // completes (on the thread pool) with the clock still where it was

        // The waiter took the refunded token, nothing more: the next one comes 10 s later.
        Assert.False(first.TryAcquire(1));
        manual.Advance(TimeSpan.FromSeconds(10));
        Assert.True(first.TryAcquire(1));
        Assert.False(first.TryAcquire(1));
    }

    [Fact]
    public async Task HierarchicalTryAcquire_GlobalClockThrows_RefundServesTheKeyLevelsWaiterAtOnce()
    {
        var manual = new ManualTimeProvider();
        var hooked = new HookedReadingClock(manual) { ThrowAfterHook = true };
        var global = new TokenBucket(4, 0.1, fastPathBatch: 1, hooked); // exact: the owner reads the clock on every call
        var perKey = new KeyedTokenBucket<string>(1, 0.1, maxKeys: 4, manual);
        var hierarchy = new HierarchicalTokenBucket<string, string>(global, perKey);

        ValueTask<bool> waiter = default;
        hooked.OnNextReading(() =>
        {
            Assert.True(perKey.TryGetBucket("a", out TokenBucket? keyBucket));
            waiter = keyBucket.AcquireAsync(1); // the key level is empty now: queues
            Assert.False(waiter.IsCompleted);
        });

        Assert.Throws<InvalidOperationException>(() => hierarchy.TryAcquire("a", "op", 1, out _));
        Assert.True(perKey.TryGetBucket("a", out TokenBucket? bucket));
        Assert.Equal(0, bucket.QueuedWaiters); // before: queued until the key bucket's timer fired, 10 s later
        Assert.True(await waiter.AsTask().WaitAsync(Generous));
        Assert.False(perKey.TryAcquire("a", 1)); // the waiter has the token
    }

    [Fact]
    public async Task TryAcquireAll_RefundWithTwoWaiters_ServesInArrivalOrderOnly()
    {
        var manual = new ManualTimeProvider();
        var hooked = new HookedReadingClock(manual);
        var first = new TokenBucket(2, 0.1, fastPathBatch: 1, manual);
        var second = new TokenBucket(1, 0.1, fastPathBatch: 1, hooked);
        Assert.True(second.TryAcquire(1));
        Assert.True(first.TryAcquire(1)); // one token left for the request

        ValueTask<bool> big = default;
        ValueTask<bool> small = default;
        hooked.OnNextReading(() =>
        {
            big = first.AcquireAsync(2);   // needs two: one refunded token is not enough
            small = first.AcquireAsync(1); // behind it: must not barge past with the refunded token
        });

        Assert.False(TokenBucket.TryAcquireAll([first, second], 1, out _));
        Assert.False(big.IsCompleted);
        Assert.False(small.IsCompleted); // FIFO: the refund does not let the later, smaller waiter pass the head
        Assert.Equal(2, first.QueuedWaiters);

        manual.Advance(TimeSpan.FromSeconds(10)); // the second token: the head takes both, then the small one waits its turn
        Assert.True(await big.AsTask().WaitAsync(Generous));
        Assert.False(small.IsCompleted);
        manual.Advance(TimeSpan.FromSeconds(10));
        Assert.True(await small.AsTask().WaitAsync(Generous));
    }
}
