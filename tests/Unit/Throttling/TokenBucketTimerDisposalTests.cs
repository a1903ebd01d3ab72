using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// Disposing a <see cref="LockFreeTokenBucketRateLimiter"/> that owns its bucket disposes the bucket's timers: the pump's
/// timer on the user's clock, and the <see cref="TimeProvider.System"/> fallback that runs the pump while the clock's timer
/// cannot be created or armed. Before (session 11) neither was ever disposed: the fallback could fire after the Dispose,
/// and the pump's timer stayed registered with a clock that tracks its timers.
/// </summary>
public sealed class TokenBucketTimerDisposalTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static LockFreeTokenBucketRateLimiter Create(TimeProvider time) => new(new LockFreeTokenBucketRateLimiterOptions
    {
        TokenLimit = 1, TokensPerSecond = 1, QueueLimit = 1, FastPathBatch = 1, TimeProvider = time,
    });

    [Fact]
    public async Task Dispose_PumpOnTheSystemFallback_FallbackTimerDisposed()
    {
        var clock = new TimerFailingClock(new ManualTimeProvider()) { CreationFailures = int.MaxValue }; // the clock's timer never works
        LockFreeTokenBucketRateLimiter limiter = Create(clock);
        Assert.True(limiter.AttemptAcquire(1).IsAcquired);
        ValueTask<RateLimitLease> waiting = limiter.AcquireAsync(1); // the pump cannot create its timer: the retry goes on the fallback
        ITimer fallback = limiter.Bucket.FallbackTimer ?? throw new InvalidOperationException("no fallback armed");

        limiter.Dispose();

        using RateLimitLease lease = await waiting.AsTask().WaitAsync(Generous);
        Assert.False(lease.IsAcquired);
        Assert.Null(limiter.Bucket.FallbackTimer);
        Assert.False(TryRearm(fallback)); // disposed: it never fires again (before: re-armed, so alive)
    }

    [Fact]
    public async Task Dispose_PumpTimerOnTheUsersClock_TimerDisposed()
    {
        var time = new ManualTimeProvider();
        LockFreeTokenBucketRateLimiter limiter = Create(time);
        Assert.True(limiter.AttemptAcquire(1).IsAcquired);
        ValueTask<RateLimitLease> waiting = limiter.AcquireAsync(1); // the pump arms its timer on the clock for the next token
        Assert.Equal(1, time.ActiveTimers);

        limiter.Dispose();

        using RateLimitLease lease = await waiting.AsTask().WaitAsync(Generous);
        Assert.False(lease.IsAcquired);
        Assert.Equal(0, time.ActiveTimers); // before: 1, for good
    }

    [Fact]
    public async Task Dispose_WrappedBucket_ItsTimersStayTheOwners()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, time);
        Assert.True(bucket.TryAcquire(1));
        ValueTask<bool> owned = bucket.AcquireAsync(1); // the owner's own wait: its timer must survive the wrapper's Dispose
        var limiter = new LockFreeTokenBucketRateLimiter(bucket, queueLimit: 1);

        limiter.Dispose();

        Assert.Equal(1, time.ActiveTimers);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await owned.AsTask().WaitAsync(Generous));
    }

    private static bool TryRearm(ITimer timer)
    {
        try
        {
            bool armed = timer.Change(TimeSpan.FromHours(1), Timeout.InfiniteTimeSpan);
            if (armed)
            {
                timer.Dispose(); // alive (the old code): stop it again, the test has its answer
            }

            return armed;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }
}
