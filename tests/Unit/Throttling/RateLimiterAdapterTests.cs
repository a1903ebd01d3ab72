using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Polly;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class RateLimiterAdapterTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static LockFreeTokenBucketRateLimiter Create(ManualTimeProvider time, long limit = 5, double rate = 1, int queueLimit = 0) =>
        new(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = limit, TokensPerSecond = rate, QueueLimit = queueLimit, TimeProvider = time });

    [Fact]
    public void AttemptAcquire_UntilEmpty_ThenFailedLeaseCarriesRetryAfter()
    {
        var time = new ManualTimeProvider();
        using var limiter = Create(time, limit: 5, rate: 2);
        for (int i = 0; i < 5; i++)
        {
            using RateLimitLease ok = limiter.AttemptAcquire();
            Assert.True(ok.IsAcquired);
        }

        using RateLimitLease failed = limiter.AttemptAcquire();
        Assert.False(failed.IsAcquired);
        Assert.True(failed.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromMilliseconds(500), retryAfter);
        Assert.Contains(MetadataName.RetryAfter.Name, failed.MetadataNames);

        time.Advance(retryAfter);
        Assert.True(limiter.AttemptAcquire().IsAcquired);
    }

    [Fact]
    public void AttemptAcquire_SuccessAndRefusal_AllocateNothingInSteadyState()
    {
        var time = new ManualTimeProvider();
        using var limiter = Create(time, limit: 1000, rate: 1e-3);
        int admitted = limiter.AttemptAcquire().IsAcquired ? 1 : 0;
        for (int i = 0; i < 1000; i++)
        {
            admitted += limiter.AttemptAcquire().IsAcquired ? 1 : 0; // warm: drains the bucket, caches the failure lease
        }

        Assert.Equal(1000, admitted);
        for (int i = 0; i < 100; i++)
        {
            limiter.AttemptAcquire().Dispose(); // the refusal path warm too
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            limiter.AttemptAcquire().Dispose();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void AttemptAcquire_LongRetryAfter_RoundedUpNeverDown()
    {
        var time = new ManualTimeProvider();
        using var limiter = Create(time, limit: 3, rate: 1.0 / 7);
        Assert.True(limiter.AttemptAcquire(3).IsAcquired);
        RateLimitLease failed = limiter.AttemptAcquire(2);
        Assert.True(failed.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retryAfter));
        Assert.InRange(retryAfter.TotalSeconds, 14, 14 * 1.07);
    }

    [Fact]
    public void AttemptAcquire_ZeroPermits_ProbesWithoutTaking()
    {
        var time = new ManualTimeProvider();
        using var limiter = Create(time, limit: 2);
        Assert.True(limiter.AttemptAcquire(0).IsAcquired);
        Assert.True(limiter.AttemptAcquire(2).IsAcquired);
        Assert.False(limiter.AttemptAcquire(0).IsAcquired);
    }

    [Fact]
    public void AttemptAcquire_BadPermitCount_Throws()
    {
        using var limiter = Create(new ManualTimeProvider(), limit: 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AttemptAcquire(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AttemptAcquire(3));
        Assert.True(limiter.AttemptAcquire(2).IsAcquired);
    }

    [Fact]
    public void Constructor_BadOptions_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 0, TokensPerSecond = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 1, TokensPerSecond = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 1, TokensPerSecond = 1, QueueLimit = -1 }));
        Assert.Throws<ArgumentNullException>(() => new LockFreeTokenBucketRateLimiter((LockFreeTokenBucketRateLimiterOptions)null!));
    }

    [Fact]
    public async Task AcquireAsync_WithinQueueLimit_WaitsThenSucceeds()
    {
        var time = new ManualTimeProvider();
        using var limiter = Create(time, limit: 2, rate: 1, queueLimit: 2);
        Assert.True(limiter.AttemptAcquire(2).IsAcquired);
        ValueTask<RateLimitLease> waiting = limiter.AcquireAsync(2);
        Assert.False(waiting.IsCompleted);
        Assert.Equal(2, limiter.GetStatistics()!.CurrentQueuedCount);
        RateLimitLease overLimit = await limiter.AcquireAsync(1);
        Assert.False(overLimit.IsAcquired); // the queue holds 2 permits at most

        time.Advance(TimeSpan.FromSeconds(2));
        RateLimitLease lease = await waiting.AsTask().WaitAsync(Generous);
        Assert.True(lease.IsAcquired);
        Assert.Equal(0, limiter.GetStatistics()!.CurrentQueuedCount);
    }

    [Fact]
    public async Task AcquireAsync_Dispose_EndsQueuedWaitsWithFailedLease()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(time, limit: 1, rate: 1, queueLimit: 5);
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        ValueTask<RateLimitLease> waiting = limiter.AcquireAsync(1);

        limiter.Dispose();

        Assert.False((await waiting.AsTask().WaitAsync(Generous)).IsAcquired);
        Assert.Throws<ObjectDisposedException>(() => limiter.AttemptAcquire());
    }

    [Fact]
    public async Task AcquireAsync_DisposeWhileWaitingWithACancellableCallerToken_FailedLeases()
    {
        // Session 14: the wait registers on the caller's token and on the limiter's lifetime token (no linked source). The
        // disposal's cancellation must answer a failed lease, not an OperationCanceledException, although the caller's
        // token can be cancelled; cancelling the caller's token afterwards touches nothing (its registration is gone).
        var time = new ManualTimeProvider();
        var limiter = Create(time, limit: 1, rate: 1, queueLimit: 5);
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        using var cts = new CancellationTokenSource();
        ValueTask<RateLimitLease> waiting = limiter.AcquireAsync(1, cts.Token);
        ValueTask<RateLimitLease> probe = limiter.AcquireAsync(0, cts.Token);
        Assert.False(waiting.IsCompleted);
        Assert.False(probe.IsCompleted);

        limiter.Dispose();

        Assert.False((await waiting.AsTask().WaitAsync(Generous)).IsAcquired);
        Assert.False((await probe.AsTask().WaitAsync(Generous)).IsAcquired);
        cts.Cancel(); // no registration left on it: nothing runs, nothing throws
    }

    [Fact]
    public void GetStatistics_CountsLeases()
    {
        var time = new ManualTimeProvider();
        using var limiter = Create(time, limit: 4, rate: 1);
        Assert.True(limiter.AttemptAcquire(3).IsAcquired);
        Assert.True(limiter.AttemptAcquire(1).IsAcquired);
        Assert.False(limiter.AttemptAcquire(1).IsAcquired);
        RateLimiterStatistics stats = limiter.GetStatistics()!;
        Assert.Equal(2, stats.TotalSuccessfulLeases);
        Assert.Equal(1, stats.TotalFailedLeases);
        Assert.Equal(0, stats.CurrentAvailablePermits);
        Assert.True(limiter.IsAutoReplenishing);
        Assert.False(limiter.TryReplenish());
        Assert.Equal(TimeSpan.FromSeconds(1), limiter.ReplenishmentPeriod);
    }

    [Fact]
    public void IdleDuration_NullWhileInUse_GrowsOnceFull()
    {
        var time = new ManualTimeProvider();
        using var limiter = Create(time, limit: 2, rate: 1);
        Assert.NotNull(limiter.IdleDuration);
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        Assert.Null(limiter.IdleDuration);
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(2), limiter.IdleDuration);
    }

    [Fact]
    public void KeyedLimiter_PartitionsByKey_WithRetryAfter()
    {
        var time = new ManualTimeProvider();
        var buckets = new KeyedTokenBucket<string>(2, 1, maxKeys: 100, time);
        using var limiter = new LockFreeKeyedRateLimiter<(string User, int Request), string>(buckets, r => r.User);

        Assert.True(limiter.AttemptAcquire(("ann", 1), 2).IsAcquired);
        RateLimitLease failed = limiter.AttemptAcquire(("ann", 2));
        Assert.False(failed.IsAcquired);
        Assert.True(failed.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(1), retryAfter);
        Assert.True(limiter.AttemptAcquire(("bob", 3)).IsAcquired);
        Assert.Equal(1, limiter.GetStatistics(("bob", 0))!.CurrentAvailablePermits);
    }

    [Fact]
    public void Metrics_NamedBucket_ReportsAcquiredRejectedAndLimit()
    {
        var time = new ManualTimeProvider();
        string name = "bucket-" + Guid.NewGuid().ToString("N");
        var bucket = new TokenBucket(3, 1, fastPathBatch: 1, time) { Name = name };
        Assert.True(bucket.TryAcquire(3));
        Assert.False(bucket.TryAcquire());
        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == TokenBucketMetrics.MeterName && instrument.Name.StartsWith("lockfree.limiter.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == TokenBucketMetrics.NameTag && (string?)tag.Value == name)
                {
                    seen[instrument.Name] = value;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Equal(3, seen["lockfree.limiter.acquired"]);
        Assert.Equal(1, seen["lockfree.limiter.rejected"]);
        Assert.Equal(3, seen["lockfree.limiter.limit"]);
        GC.KeepAlive(bucket);
    }
}
