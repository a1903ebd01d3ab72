using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// Review of session 14's two-token waits (the waiter registers on the caller's token and on the rate limiter's lifetime
/// token instead of on a linked source): no registration of a finished wait outlives it on a long-lived token, none
/// ends a later wait on the recycled waiter, and a queued wait ended by the limiter's disposal never hands its caller an
/// <see cref="OperationCanceledException"/> that carries the limiter's private token.
/// </summary>
public sealed class RateLimiterTwoTokenReviewTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A granted and consumed two-token wait leaves no registration on either token: after its waiter went back to the
    /// pool and serves a later wait (no tokens of its own), cancelling both earlier tokens leaves that wait pending.
    /// </summary>
    [Fact]
    public async Task ConsumedTwoTokenWait_LaterWaitOnTheRecycledWaiter_IsNotCancelledByTheEarlierTokens()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(1, 1, fastPathBatch: 1, time);
        using var caller = new CancellationTokenSource();
        using var lifetime = new CancellationTokenSource();
        for (int i = 0; i < 3; i++)
        {
            time.Advance(i == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(1)); // a token to drain
            Assert.True(bucket.TryAcquire());
            ValueTask<bool> granted = bucket.AcquireAfterRefusalAsync(1, caller.Token, lifetime.Token);
            time.Advance(TimeSpan.FromSeconds(1)); // the pump grants it
            Assert.True(await granted.AsTask().WaitAsync(Patience));
        }

        ValueTask<bool> later = bucket.AcquireAsync(1); // reuses the pooled waiter
        Assert.False(later.IsCompleted);
        lifetime.Cancel();
        caller.Cancel();
        await Task.Delay(50); // a stale callback would end it through the thread pool
        Assert.False(later.IsCompleted);
        Assert.Equal(1, bucket.QueuedWaiters);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await later.AsTask().WaitAsync(Patience));
    }

    /// <summary>
    /// A limiter wrapping a shared bucket: its queued leases, granted (with a cancellable caller token), leave nothing on
    /// its lifetime token or the caller's, so disposing the limiter and cancelling that token do not touch another
    /// user's wait queued on the same bucket (served by the recycled waiters).
    /// </summary>
    [Fact]
    public async Task SharedBucket_DisposingTheLimiterAfterItsWaitsWereGranted_LeavesAnotherUsersWaitQueued()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(1, 1, fastPathBatch: 1, time);
        var limiter = new LockFreeTokenBucketRateLimiter(bucket, queueLimit: 4);
        using var caller = new CancellationTokenSource();
        for (int i = 0; i < 4; i++)
        {
            time.Advance(i == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(1)); // a token to drain
            using (RateLimitLease drained = limiter.AttemptAcquire())
            {
                Assert.True(drained.IsAcquired);
            }

            ValueTask<RateLimitLease> queued = limiter.AcquireAsync(1, caller.Token);
            Assert.False(queued.IsCompleted);
            time.Advance(TimeSpan.FromSeconds(1));
            using RateLimitLease lease = await queued.AsTask().WaitAsync(Patience);
            Assert.True(lease.IsAcquired);
        }

        ValueTask<bool> other = bucket.AcquireAsync(1); // the bucket is empty: queued on a recycled waiter
        Assert.False(other.IsCompleted);
        limiter.Dispose();
        caller.Cancel();
        await Task.Delay(50);
        Assert.False(other.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await other.AsTask().WaitAsync(Patience));
    }

    /// <summary>
    /// A wait whose value task is never awaited unregisters from a long-lived token when it ends, granted or cancelled by
    /// its other token (the wake-up's early unregistration covers the second token too): the token keeps nothing of the
    /// bucket alive.
    /// </summary>
    [Theory]
    [InlineData(false)] // granted
    [InlineData(true)]  // cancelled by the caller's token: the long-lived second token must let go as well
    public void WaitNeverAwaited_LongLivedSecondToken_KeepsNothingAlive(bool cancelCaller)
    {
        using var alsoLongLived = new CancellationTokenSource();
        WeakReference bucket = EndOneNeverAwaited(cancelCaller, alsoLongLived.Token);
        AssertCollected(bucket); // a registration left on the token would hold the waiter, its list and the bucket
        GC.KeepAlive(alsoLongLived);
    }

    /// <summary>
    /// The same through the limiter: a queued lease never awaited, with a long-lived caller token (an application's
    /// stopping token, say), leaves nothing registered on it once granted; the limiter's bucket can be collected. (The
    /// limiter's own await consumes the bucket's wait, so its release of both registrations is what is checked here; the
    /// wake-up's early unregistration is checked by the test above.)
    /// </summary>
    [Fact]
    public void LimiterLeaseNeverAwaited_LongLivedCallerToken_KeepsNothingAlive()
    {
        using var longLived = new CancellationTokenSource();
        WeakReference bucket = GrantOneLeaseNeverAwaited(longLived.Token);
        AssertCollected(bucket);
        GC.KeepAlive(longLived);
    }

    private static void AssertCollected(WeakReference reference)
    {
        // Retried for a while: the wake-up completes the value task before its frame on a pool thread returns, and that
        // frame holds the waiter (so the bucket) until it does; on a loaded machine the thread may be descheduled there.
        for (int i = 0; i < 200 && reference.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            if (reference.IsAlive)
            {
                Thread.Sleep(10);
            }
        }

        Assert.False(reference.IsAlive);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference EndOneNeverAwaited(bool cancelCaller, CancellationToken lifetime)
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(1, 1, fastPathBatch: 1, time);
        Assert.True(bucket.TryAcquire());
        var caller = new CancellationTokenSource();
        ValueTask<bool> wait = bucket.AcquireAfterRefusalAsync(1, caller.Token, lifetime);
        if (cancelCaller)
        {
            caller.Cancel();
        }
        else
        {
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.True(SpinWait.SpinUntil(() => wait.IsCompleted, Patience)); // the wake-up ran (it unregisters first); never consumed
        return new WeakReference(bucket);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference GrantOneLeaseNeverAwaited(CancellationToken caller)
    {
        var time = new ManualTimeProvider();
        LockFreeTokenBucketRateLimiter limiter = EmptyLimiters.OneTokenTaken(time);

        ValueTask<RateLimitLease> queued = limiter.AcquireAsync(1, caller);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(SpinWait.SpinUntil(() => queued.IsCompleted, Patience)); // granted, never consumed
        return new WeakReference(limiter.Bucket); // what a registration left on the caller's token would hold (the waiter's list's owner)
    }

    /// <summary>
    /// One caller's misuse of a queued lease's <see cref="ValueTask{TResult}"/> (blocking on it before it completed, with
    /// <c>GetAwaiter().GetResult()</c>: not allowed for a ValueTask, but it worked here before session 14 and works with
    /// the BCL bucket, whose value task is Task-backed) must hurt that caller at most, never another caller's lease or
    /// the limiter's counts. Fixed by dropping the pooling builder again (the queued wait allocates its box, a Task, as
    /// before session 14). While the queued wait's async method used <c>PoolingAsyncValueTaskMethodBuilder</c>, the
    /// premature read threw InvalidOperationException and returns the state-machine box to the runtime's pool while the
    /// wait is still pending; the next queued caller rents that box, and when the first wait is granted its continuation
    /// drives the second caller's state machine: the second, correct caller's lease faults with InvalidOperationException,
    /// the granted token reaches nobody, and <c>CurrentQueuedCount</c> stays 1 for good (observed: queued 1, no waiters,
    /// successful leases 3 for one lease handed out), so a limiter whose drift reaches its QueueLimit queues nobody again.
    /// A second read of a completed lease returns the same box twice (two later callers share it). The library's own
    /// pooled operations (PooledOperation: RetryPolicy.ExecuteAsync) check the token and the completion before recycling,
    /// so a misuse throws for the misuser only. Since session 15 the queued wait is such an operation, one whose read
    /// before completion blocks until the lease is decided, as the BCL's Task-backed lease does
    /// (RateLimiterPooledLeaseTests); this test keeps guarding the other caller's lease and the counts.
    /// </summary>
    [Fact]
    public async Task PrematureBlockingRead_OfOneQueuedLease_DoesNotBreakAnotherCallersLease()
    {
        var time = new ManualTimeProvider();
        using LockFreeTokenBucketRateLimiter limiter = EmptyLimiters.OneTokenTaken(time, queueLimit: 2);

        ValueTask<RateLimitLease> misused = limiter.AcquireAsync(1);
        Assert.False(misused.IsCompleted);
        var misuser = new Thread(() => _ = Record.Exception(() => misused.GetAwaiter().GetResult()?.Dispose())) { IsBackground = true }; // the misuse: blocks until granted, as with the BCL's bucket (threw at once during session 14)
        misuser.Start();
        SpinWait.SpinUntil(() => !misuser.IsAlive, TimeSpan.FromMilliseconds(500)); // thrown, or blocked
        ValueTask<RateLimitLease> correct = limiter.AcquireAsync(1); // a well-behaved caller queued behind it
        time.Advance(TimeSpan.FromSeconds(1)); // one token: the misused wait's
        time.Advance(TimeSpan.FromSeconds(1)); // one more: the correct caller's
        using RateLimitLease lease = await correct.AsTask().WaitAsync(Patience);
        Assert.True(lease.IsAcquired);
        Assert.True(misuser.Join(Patience));
        Assert.True(SpinWait.SpinUntil(() => limiter.GetStatistics()!.CurrentQueuedCount == 0, Patience)); // no drift
    }

    /// <summary>
    /// A queued lease ended by the limiter's disposal while the caller's token is cancelled at the same time (here
    /// exactly between the waiter's choice of token and the limiter's filter, forced from a first-chance exception
    /// handler): the caller gets a failed lease (disposal won, as the BCL's limiters answer) or an
    /// <see cref="OperationCanceledException"/> carrying its own token, never one carrying the limiter's private lifetime
    /// token (which `when (e.CancellationToken == ct)` filters miss). Before the review the filter asked whether the
    /// caller's token was cancelled now, not which token the wait reported.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(0)] // AcquireAsync(0): the permit wait
    public async Task DisposalEndsTheWait_CallerCancelsBeforeTheFilter_NeverReportsTheLimitersToken(int permits)
    {
        var time = new ManualTimeProvider();
        LockFreeTokenBucketRateLimiter limiter = EmptyLimiters.OneTokenTaken(time);

        using var caller = new CancellationTokenSource();
        ValueTask<RateLimitLease> queued = limiter.AcquireAsync(permits, caller.Token);
        Assert.False(queued.IsCompleted);
        int armed = 1;
        void CancelCallerOnDisposalThrow(object? sender, System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs args)
        {
            // The waiter's GetResult throws the disposal's cancellation (a token other than the caller's): cancel the
            // caller's token now, after the waiter chose the token and before the limiter's catch filter runs.
            if (args.Exception is OperationCanceledException e && e.CancellationToken.CanBeCanceled && e.CancellationToken != caller.Token
                && e.CancellationToken.IsCancellationRequested && Interlocked.Exchange(ref armed, 0) == 1)
            {
                caller.Cancel();
            }
        }

        AppDomain.CurrentDomain.FirstChanceException += CancelCallerOnDisposalThrow;
        try
        {
            limiter.Dispose();
            try
            {
                using RateLimitLease lease = await queued.AsTask().WaitAsync(Patience);
                Assert.False(lease.IsAcquired); // disposal won: a failed lease
            }
            catch (OperationCanceledException e)
            {
                Assert.Equal(caller.Token, e.CancellationToken); // the caller's own token, never the limiter's
            }
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= CancelCallerOnDisposalThrow;
        }
    }
}
