// The queued value task is read only once it completed (polled): no blocking wait, and no await that would allocate here.
#pragma warning disable xUnit1031
using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A queued <c>AcquireAsync</c> of <see cref="LockFreeTokenBucketRateLimiter"/> allocates nothing in steady state, whatever
/// the caller's token. Session 14: each such wait with a cancellable token created a linked token source (the caller's
/// token and the limiter's lifetime token) and its registrations, 360 B per queued request on the calling thread (the
/// rate-limiting middleware always passes a cancellable token), against 136 B without one; the waiter now registers on
/// both tokens. Session 15: what was left, the async method's box (a Task, 128 B), is gone: the wait is a pooled
/// operation of the limiter, taken back when its result is read (the BCL's bucket: 137 B per queued request). The bytes
/// are counted on the calling thread around the call and around the result read; the wake-up runs on a pool thread.
/// </summary>
public sealed class RateLimiterQueuedWaitAllocationTests
{
    private const int Warmup = 200;
    private const int Measured = 500;

    [Theory]
    [InlineData(1)]
    [InlineData(0)] // AcquireAsync(0) on an empty bucket: waits for a permit, takes none
    public void QueuedAcquire_SteadyState_AllocatesNothingWithOrWithoutAToken(int permits)
    {
        Assert.Equal(0, BytesPerQueuedWait(permits, cancellableToken: true));
        Assert.Equal(0, BytesPerQueuedWait(permits, cancellableToken: false));
    }

    private static long BytesPerQueuedWait(int permits, bool cancellableToken)
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 1,
            TokensPerSecond = 1000, // one token per millisecond of the manual clock
            QueueLimit = 1,
            TimeProvider = time,
        });
        using var cts = new CancellationTokenSource();
        CancellationToken token = cancellableToken ? cts.Token : CancellationToken.None;
        long allocated = 0;
        for (int round = 0; round < Warmup + Measured; round++)
        {
            time.Advance(TimeSpan.FromMilliseconds(1)); // a token (the bucket holds one at most)
            using (RateLimitLease drained = limiter.AttemptAcquire())
            {
                Assert.True(drained.IsAcquired); // empty the bucket
            }

            long before = GC.GetAllocatedBytesForCurrentThread();
            ValueTask<RateLimitLease> queued = limiter.AcquireAsync(permits, token);
            long afterCall = GC.GetAllocatedBytesForCurrentThread();
            Assert.False(queued.IsCompleted); // it waits

            time.Advance(TimeSpan.FromMilliseconds(1)); // the pump's timer grants it; the wake-up runs on a pool thread
            Assert.True(SpinWait.SpinUntil(() => queued.IsCompleted, TimeSpan.FromSeconds(10)));
            long beforeResult = GC.GetAllocatedBytesForCurrentThread();
            RateLimitLease lease = queued.Result;
            long afterResult = GC.GetAllocatedBytesForCurrentThread();
            Assert.True(lease.IsAcquired);
            lease.Dispose();
            if (round >= Warmup)
            {
                allocated += (afterCall - before) + (afterResult - beforeResult);
            }
        }

        Assert.Equal(0, allocated % Measured); // the same bytes every wait: nothing grows
        return allocated / Measured;
    }
}

/// <summary>The waiter's second token (the adapter's lifetime token, registered beside the caller's instead of a linked source).</summary>
public sealed class TokenBucketTwoTokenWaitTests
{
    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task QueuedWait_EitherTokenCancels_ReportsTheCallersTokenWhenItIsCancelled(bool cancelCaller, bool cancelSecond)
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(1, 1, fastPathBatch: 1, time);
        Assert.True(bucket.TryAcquire());
        using var caller = new CancellationTokenSource();
        using var second = new CancellationTokenSource();
        ValueTask<bool> wait = bucket.AcquireAfterRefusalAsync(1, caller.Token, second.Token);
        Assert.False(wait.IsCompleted);
        if (cancelSecond)
        {
            second.Cancel();
        }

        if (cancelCaller)
        {
            caller.Cancel();
        }

        OperationCanceledException e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(cancelCaller ? caller.Token : second.Token, e.CancellationToken);
        Assert.Equal(0, bucket.QueuedWaiters);

        // The waiter went back to the pool with both registrations released: a later wait on the same bucket is served.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire());
        ValueTask<bool> next = bucket.AcquireAfterRefusalAsync(1, CancellationToken.None, second.IsCancellationRequested ? default : second.Token);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
