using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>Regression tests from the adversarial review of the throttling area (each failed before its fix).</summary>
public sealed class ThrottlingReviewTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    public void Constructor_FastPathBatchOutOfRange_NamesTheParameter(int fastPathBatch)
    {
        // Before, the exception named the internal core's parameter, "batch".
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(10, 1, fastPathBatch));
        Assert.Equal("fastPathBatch", error.ParamName);
    }

    [Fact]
    public void TryAcquireAll_RefundToBatchedBucket_GivesTheTokenBack()
    {
        var time = new ManualTimeProvider();
        var a = new TokenBucket(100, 1, fastPathBatch: 10, time);
        var b = new TokenBucket(1, 1, fastPathBatch: 1, time);
        Assert.True(TokenBucket.TryAcquireAll([a, b], 1, out _));
        Assert.False(TokenBucket.TryAcquireAll([a, b], 1, out _)); // b refuses: a's token goes back

        Assert.Equal(99, a.AvailableTokens);
    }

    [Fact]
    public void Hierarchy_RefusalAbove_RefundsBatchedKeyBucket()
    {
        var time = new ManualTimeProvider();
        var global = new TokenBucket(1, 1, fastPathBatch: 1, time);
        var perUser = new KeyedTokenBucket<string>(64, 1, 100, time); // default batch 4
        var limits = new HierarchicalTokenBucket<string, string>(global, perUser);

        Assert.True(limits.TryAcquire("ann", "x"));
        for (int i = 0; i < 10; i++)
        {
            Assert.False(limits.TryAcquire("ann", "x")); // the global level refuses; ann's token goes back each time
        }

        Assert.True(perUser.TryAcquire("ann", 63)); // everything but the one admitted token is still there
    }

    [Fact]
    public void AcquireAsync_TimeoutBeyondTheLongestTimer_ThrowsBeforeQueueing()
    {
        var bucket = new TokenBucket(1, 0.001, fastPathBatch: 1); // system clock: its timers take at most ~49.7 days
        Assert.True(bucket.TryAcquire());

        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = bucket.AcquireAsync(1, TimeSpan.FromDays(60)); });
        Assert.Equal(0, bucket.QueuedWaiters); // nothing left behind: later attempts are not blocked by a dead waiter
    }

    [Fact]
    public async Task AcquireAsync_WaitLongerThanTheLongestTimer_QueuesAndCancels()
    {
        var bucket = new TokenBucket(1, 1e-7, fastPathBatch: 1); // one token per ~115 days, on the system clock
        Assert.True(bucket.TryAcquire());
        using var cts = new CancellationTokenSource();

        ValueTask<bool> wait = bucket.AcquireAsync(1, cts.Token); // the refill timer is due beyond a Timer's maximum
        Assert.False(wait.IsCompleted);
        Assert.Equal(1, bucket.QueuedWaiters);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, bucket.QueuedWaiters);
    }

    [Fact]
    public async Task LeakyBucket_EnterAsync_NextSlotBeyondTheLongestTimer_QueuesAndCancels()
    {
        using var leaky = new LeakyBucket(4, 1e-7); // one request per ~115 days, on the system clock
        Assert.True(leaky.TryEnter());
        using var cts = new CancellationTokenSource();

        ValueTask<bool> wait = leaky.EnterAsync(cts.Token); // the pacing timer is due beyond a Timer's maximum
        Assert.False(wait.IsCompleted);
        Assert.Equal(1, leaky.QueuedCount);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, leaky.QueuedCount);
    }

    [Fact]
    public void ServerQuotaHint_ResetFurtherThanTheClockReaches_StillRefuses()
    {
        var time = new ManualTimeProvider();
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = time });
        hint.Update(remaining: 0, resetAfter: TimeSpan.MaxValue); // "used up, no reset in sight"

        Assert.False(hint.TryAdmit());
        Assert.Equal(0, hint.Remaining);
        Assert.True(hint.RetryAfter > TimeSpan.FromDays(365 * 1000));
    }

    [Fact]
    public void AdaptiveLimiter_LongBusyWindow_LatencySumDoesNotOverflow()
    {
        // Limit 1000, every request 6 s, a 10-minute window: ~6e11 us of summed latency, past the packed word's 39 bits.
        var time = new ManualTimeProvider();
        var algorithm = new RecordingFixedLimit(1000);
        var limiter = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = algorithm, TimeProvider = time, MinWindow = TimeSpan.FromMinutes(10), MinSamples = 1,
        });
        var leases = new AdaptiveLease[1000];
        for (int round = 0; round < 100 && algorithm.Windows.Count == 0; round++)
        {
            for (int i = 0; i < leases.Length; i++)
            {
                Assert.True(limiter.TryAcquire(out leases[i]));
            }

            time.Advance(TimeSpan.FromSeconds(6));
            foreach (AdaptiveLease lease in leases)
            {
                lease.Complete();
            }
        }

        AdaptiveWindow window = Assert.Single(algorithm.Windows);
        Assert.True(window.SampleCount >= 99_001, $"samples {window.SampleCount}");
        Assert.Equal(TimeSpan.FromSeconds(6), window.AverageLatency);
    }

    /// <summary>Records every window and keeps the limit fixed.</summary>
    private sealed class RecordingFixedLimit(int limit) : AdaptiveLimit(new AimdLimitOptions { InitialLimit = limit, MaxLimit = limit })
    {
        public List<AdaptiveWindow> Windows { get; } = new();

        public override int Update(in AdaptiveWindow window)
        {
            Windows.Add(window);
            return window.Limit;
        }
    }

    [Fact]
    public void IdleDuration_PartSpentBatchThenSilence_BecomesIdle()
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 100, TokensPerSecond = 10, TimeProvider = time, // default batch 6: one acquire opens a batch
        });
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        time.Advance(TimeSpan.FromHours(1)); // silence: the bucket refilled long ago

        // A partitioned limiter (ASP.NET Core) polls IdleDuration on a heartbeat and evicts partitions idle long enough.
        TimeSpan? idle = null;
        for (int poll = 0; poll < 5 && idle is null; poll++)
        {
            idle = limiter.IdleDuration;
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.NotNull(idle);
        Assert.True(limiter.IdleDuration > TimeSpan.Zero);
        Assert.Equal(100, limiter.GetStatistics()!.CurrentAvailablePermits);
    }

    [Fact]
    public async Task GetStatistics_QueuedAcquireThatSucceeds_IsNotAFailedLease()
    {
        var time = new ManualTimeProvider();
        using var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 1, TokensPerSecond = 1, QueueLimit = 1, TimeProvider = time,
        });
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        ValueTask<RateLimitLease> queued = limiter.AcquireAsync(1);
        Assert.False(queued.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1)); // the pump's timer grants the waiter
        using RateLimitLease lease = await queued.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(lease.IsAcquired);

        RateLimiterStatistics stats = limiter.GetStatistics()!;
        Assert.Equal(0, stats.TotalFailedLeases);
        Assert.Equal(2, stats.TotalSuccessfulLeases);
        Assert.Equal(1, limiter.Bucket.RefusedCount); // the adapter's one attempt; the pump's tries for the waiter are not refusals
    }

    [Fact]
    public async Task AcquireAsync_DisposedWhileQueued_FailedLeaseCarriesNoRetryAfter()
    {
        var time = new ManualTimeProvider();
        var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 1, TokensPerSecond = 1, QueueLimit = 1, TimeProvider = time,
        });
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        ValueTask<RateLimitLease> queued = limiter.AcquireAsync(1);

        await limiter.DisposeAsync();

        using RateLimitLease lease = await queued.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(lease.IsAcquired);
        Assert.False(lease.TryGetMetadata(MetadataName.RetryAfter, out _)); // "retry now" would be a lie: the limiter is gone
    }

    [Fact]
    public void KeyedBucket_EvictedWhileHeld_AcquiresFailLoudlyInsteadOfHanging()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<string>(2, 1, maxKeys: 10, time);
        Assert.True(keyed.TryAcquire("ann"));
        Assert.True(keyed.TryGetBucket("ann", out TokenBucket? bucket)); // the per-key wait: await bucket.AcquireAsync()
        time.Advance(TimeSpan.FromSeconds(1)); // refilled: idle
        Assert.Equal(1, keyed.EvictIdle());

        Assert.Throws<InvalidOperationException>(() => bucket.TryAcquire());
        Assert.Throws<InvalidOperationException>(() => { _ = bucket.AcquireAsync(1); });
        Assert.Equal(0, bucket.QueuedWaiters);
        Assert.True(keyed.TryAcquire("ann", 2)); // the key itself is fine: a fresh bucket
    }

    [Fact]
    public async Task KeyedBucket_EvictedWithAWaiterQueuedBehindIt_WaiterFailsInsteadOfHanging()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<string>(2, 1, maxKeys: 10, time);
        Assert.True(keyed.TryAcquire("ann"));
        Assert.True(keyed.TryGetBucket("ann", out TokenBucket? bucket));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryRetireIfFull()); // the eviction's retire, landing between a caller's refused try and its enqueue

        ValueTask<bool> wait = bucket.AcquireAfterRefusalAsync(1, CancellationToken.None);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, bucket.QueuedWaiters);
    }

    [Fact]
    public async Task TryAcquire_RefusedBehindAQueuedWaiter_RetryAfterIsNotZero()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1, fastPathBatch: 1, time);
        Assert.True(bucket.TryAcquire(10));
        ValueTask<bool> head = bucket.AcquireAsync(5); // served when the bucket holds 5, in 5 s
        time.Advance(TimeSpan.FromSeconds(2)); // the bucket alone holds 2 now

        Assert.False(bucket.TryAcquire(1, out TimeSpan retryAfter)); // no barging past the waiter
        Assert.True(retryAfter >= TimeSpan.FromSeconds(3), $"retryAfter {retryAfter}"); // not before the head is served (a retry at 0 is refused for sure)

        using var limiter = new LockFreeTokenBucketRateLimiter(bucket);
        using RateLimitLease failed = limiter.AttemptAcquire();
        Assert.False(failed.IsAcquired);
        Assert.True(failed.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan leaseHint));
        Assert.True(leaseHint >= TimeSpan.FromSeconds(3), $"lease hint {leaseHint}");

        time.Advance(TimeSpan.FromSeconds(3));
        Assert.True(await head.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Adapter_WaitBeyondTimeSpanRange_FailedLeaseAndPeriodSaturateInsteadOfThrowing()
    {
        var clock = new SecondsClock(); // a provider whose timestamps are whole seconds
        var bucket = new TokenBucket(1, 1e-12, fastPathBatch: 1, clock); // one token per ~31,700 years
        using var limiter = new LockFreeTokenBucketRateLimiter(bucket);
        Assert.True(limiter.AttemptAcquire().IsAcquired);

        using RateLimitLease failed = limiter.AttemptAcquire(); // the wait is longer than a TimeSpan holds
        Assert.False(failed.IsAcquired);
        Assert.True(failed.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retryAfter));
        Assert.True(retryAfter > TimeSpan.FromDays(365 * 20_000));
        Assert.True(limiter.ReplenishmentPeriod > TimeSpan.FromDays(365 * 20_000));
    }

    private sealed class SecondsClock : TimeProvider
    {
        public override long TimestampFrequency => 1;

        public override long GetTimestamp() => 1_000;
    }
}
