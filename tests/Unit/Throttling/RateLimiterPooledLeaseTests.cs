// These tests misuse value tasks on purpose (a blocking read before completion, a second read), as callers of a drop-in
// for the BCL's limiter may.
#pragma warning disable xUnit1031
#pragma warning disable CA2012
using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A queued <c>AcquireAsync</c> of <see cref="LockFreeTokenBucketRateLimiter"/> is a pooled operation (session 15: 0 B
/// per queued wait). Its value task is not Task-backed any more, so the misuses a Task-backed lease (the BCL's) tolerates
/// are pinned here: a read before completion blocks until the lease is decided, with the BCL's bucket beside it as the
/// reference; a second read throws for the misuser and leaves the caller who holds the recycled operation alone; a
/// cancellation reaches a blocked reader as it reaches an awaiting one.
/// </summary>
public sealed class RateLimiterPooledLeaseTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public void PrematureBlockingRead_BlocksUntilGranted_AsTheBclBucketsLeaseDoes()
    {
        // The BCL's bucket, replenished by hand (its TryReplenish adds a token once a period has passed).
        using var bcl = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = 1,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMilliseconds(1),
            AutoReplenishment = false,
            QueueLimit = 1,
        });
        Assert.True(bcl.AttemptAcquire().IsAcquired);
        (Thread bclReader, Func<RateLimitLease?> bclLease) = BlockOn(bcl.AcquireAsync(1));
        Assert.False(bclReader.Join(200), $"the read did not block: {bclLease()}"); // blocked, not thrown (and more than a period has passed)
        Assert.True(bcl.TryReplenish());
        Assert.True(bclReader.Join(Patience));
        Assert.True(bclLease()!.IsAcquired);

        var time = new ManualTimeProvider();
        using LockFreeTokenBucketRateLimiter ours = EmptyLimiters.OneTokenTaken(time);
        ValueTask<RateLimitLease> queued = ours.AcquireAsync(1);
        Assert.False(queued.IsCompleted);
        (Thread reader, Func<RateLimitLease?> lease) = BlockOn(queued);
        Assert.False(reader.Join(200), $"the read did not block: {lease()}"); // blocked, not thrown (before session 15's pooling the box was a Task: the same)
        time.Advance(TimeSpan.FromSeconds(1)); // the pump grants it
        Assert.True(reader.Join(Patience));
        Assert.True(lease()!.IsAcquired);
        Assert.Equal(0, ours.GetStatistics()!.CurrentQueuedCount);
        Assert.Equal(2, ours.GetStatistics()!.TotalSuccessfulLeases); // the drained one and the blocked reader's
    }

    [Fact]
    public async Task PrematureBlockingRead_CallersTokenCancelled_TheBlockedReaderGetsTheCancellation()
    {
        var time = new ManualTimeProvider();
        using LockFreeTokenBucketRateLimiter limiter = EmptyLimiters.OneTokenTaken(time);
        using var cts = new CancellationTokenSource();
        ValueTask<RateLimitLease> queued = limiter.AcquireAsync(1, cts.Token);
        Exception? thrown = null;
        var reader = new Thread(() => thrown = Record.Exception(() => queued.GetAwaiter().GetResult())) { IsBackground = true };
        reader.Start();
        Assert.False(reader.Join(200), $"the read did not block: {thrown}");
        cts.Cancel();
        Assert.True(reader.Join(Patience));
        OperationCanceledException e = Assert.IsAssignableFrom<OperationCanceledException>(thrown);
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.Equal(0, limiter.GetStatistics()!.CurrentQueuedCount);

        // The limiter is intact: the next queued caller is granted the next token.
        ValueTask<RateLimitLease> next = limiter.AcquireAsync(1);
        time.Advance(TimeSpan.FromSeconds(1));
        using RateLimitLease lease = await next.AsTask().WaitAsync(Patience);
        Assert.True(lease.IsAcquired);
    }

    [Fact]
    public async Task SecondRead_AfterTheOperationWentToAnotherCaller_ThrowsForTheMisuserOnly()
    {
        var time = new ManualTimeProvider();
        using LockFreeTokenBucketRateLimiter limiter = EmptyLimiters.OneTokenTaken(time);

        ValueTask<RateLimitLease> first = limiter.AcquireAsync(1);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(SpinWait.SpinUntil(() => first.IsCompleted, Patience));
        first.Result.Dispose(); // the one allowed read: the operation goes back to the limiter's pool

        ValueTask<RateLimitLease> second = limiter.AcquireAsync(1); // another caller, on the recycled operation
        Assert.False(second.IsCompleted);
        // The misuse: a second read (the BCL's lease, a Task, would answer again). On a thread of its own: a read that took
        // the recycled operation for its own would block on the other caller's wait.
        Exception? secondRead = null, thirdRead = null;
        var misuser = new Thread(() =>
        {
            secondRead = Record.Exception(() => first.Result);
            thirdRead = Record.Exception(() => first.GetAwaiter().GetResult());
        }) { IsBackground = true };
        misuser.Start();
        Assert.True(misuser.Join(Patience), "the stale read blocked on another caller's wait");
        Assert.IsType<InvalidOperationException>(secondRead);
        Assert.IsType<InvalidOperationException>(thirdRead);

        Assert.False(second.IsCompleted); // untouched by the misuse
        time.Advance(TimeSpan.FromSeconds(1));
        using RateLimitLease lease = await second.AsTask().WaitAsync(Patience);
        Assert.True(lease.IsAcquired);
        Assert.Equal(0, limiter.GetStatistics()!.CurrentQueuedCount);
        Assert.Equal(3, limiter.GetStatistics()!.TotalSuccessfulLeases);
    }

    [Fact]
    public async Task ManyQueuedCallers_EachLeaseGrantedInOrder_OnPooledOperations()
    {
        var time = new ManualTimeProvider();
        using LockFreeTokenBucketRateLimiter limiter = EmptyLimiters.OneTokenTaken(time, queueLimit: 100);
        for (int round = 0; round < 3; round++) // later rounds run on operations the first returned to the pool
        {
            var queued = new ValueTask<RateLimitLease>[70]; // past the pool's first tier (8) and its bound (64): some created, some dropped on return
            for (int i = 0; i < queued.Length; i++)
            {
                queued[i] = limiter.AcquireAsync(1);
                Assert.False(queued[i].IsCompleted);
            }

            for (int i = 0; i < queued.Length; i++)
            {
                time.Advance(TimeSpan.FromSeconds(1)); // one token: the oldest waiter's (FIFO)
                Assert.True(SpinWait.SpinUntil(() => queued[i].IsCompleted, Patience), $"round {round}, caller {i}");
                for (int j = i + 1; j < queued.Length; j++)
                {
                    Assert.False(queued[j].IsCompleted); // strictly in order
                }

                using RateLimitLease lease = await queued[i];
                Assert.True(lease.IsAcquired);
            }
        }

        Assert.Equal(0, limiter.GetStatistics()!.CurrentQueuedCount);
        Assert.Equal(1 + (3 * 70), limiter.GetStatistics()!.TotalSuccessfulLeases);
    }

    /// <summary>A thread that blocks on <paramref name="pending"/>; the lease it read, or what it threw rethrown.</summary>
    private static (Thread Reader, Func<RateLimitLease?> Lease) BlockOn(ValueTask<RateLimitLease> pending)
    {
        RateLimitLease? lease = null;
        Exception? thrown = null;
        var reader = new Thread(() => thrown = Record.Exception(() => lease = pending.GetAwaiter().GetResult())) { IsBackground = true };
        reader.Start();
        return (reader, () => thrown is null ? lease : throw new InvalidOperationException("the blocking read threw", thrown));
    }
}
