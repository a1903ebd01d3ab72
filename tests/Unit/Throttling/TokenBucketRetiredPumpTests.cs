using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A bucket whose timers were stopped for good (evicted by its <see cref="KeyedTokenBucket{TKey}"/>, or its owning
/// <see cref="LockFreeTokenBucketRateLimiter"/> disposed) never creates a timer again when a refund reaches it while the
/// clock fails. Before (s12) the pump's failure path created the pump's timer on the clock (or, when the clock's timer
/// failed too, a <see cref="TimeProvider.System"/> fallback) after the stop: a timer that kept the bucket alive and
/// fired after the eviction or the Dispose, again and again while the clock kept failing.
/// </summary>
public sealed class TokenBucketRetiredPumpTests
{
    [Fact]
    public void RefundOrOwe_EvictedBucketWhileTheClockFails_CreatesNoTimer()
    {
        // The refund of a rollback (TryAcquireAll, a hierarchical acquire) whose level was evicted between its take and
        // the refund: the level had refilled (its clock moved on) and the table's sweep retired it.
        var manual = new ManualTimeProvider();
        var clock = new SwitchableClock(manual);
        var keyed = new KeyedTokenBucket<string>(1, 1.0, maxKeys: 4, clock);
        Assert.True(keyed.TryAcquire("a"));
        Assert.True(keyed.TryGetBucket("a", out TokenBucket? bucket));
        manual.Advance(TimeSpan.FromSeconds(1)); // full again, nobody waiting
        Assert.Equal(1, keyed.EvictIdle());
        int failuresBefore = (int)bucket.ClockFailureCount;

        clock.FailReadings = true;
        bucket.RefundOrOwe(1);

        Assert.Equal(0, manual.ActiveTimers); // before: 1, the pump's retry timer on the clock
        Assert.Null(bucket.FallbackTimer);
        Assert.Equal(failuresBefore + 1, bucket.ClockFailureCount); // the refund's own failure is still reported
        clock.FailReadings = false;
        manual.Advance(TimeSpan.FromSeconds(5)); // nothing fires, nothing is armed later
        Assert.Equal(0, manual.ActiveTimers);
        Assert.Throws<InvalidOperationException>(() => bucket.TryAcquire()); // still retired
    }

    [Fact]
    public void HierarchicalTryAcquire_KeyLevelEvictedBeforeItsRollbackWhileTheClockFails_CreatesNoTimer()
    {
        // The same through the public path: the key and operation levels take their token, the global level's reading
        // (a hook) lets the levels refill, sweeps both tables and breaks their clock, then the global level refuses: the
        // rollback refunds two evicted buckets whose clock throws.
        var manual = new ManualTimeProvider();
        var clock = new SwitchableClock(manual);
        var perKey = new KeyedTokenBucket<string>(1, 1.0, maxKeys: 4, clock);
        var perOperation = new KeyedTokenBucket<(string, string)>(1, 1.0, maxKeys: 4, clock);
        var globalClock = new HookedReadingClock(new ManualTimeProvider());
        var global = new TokenBucket(1, 1.0, fastPathBatch: 1, globalClock);
        Assert.True(global.TryAcquire()); // empty: the next request is refused there, after the lower levels took theirs
        var hierarchy = new HierarchicalTokenBucket<string, string>(global, perKey, perOperation);
        TokenBucket? keyBucket = null;
        TokenBucket? operationBucket = null;
        globalClock.OnNextReading(() =>
        {
            Assert.True(perKey.TryGetBucket("user", out keyBucket));
            Assert.True(perOperation.TryGetBucket(("user", "op"), out operationBucket));
            manual.Advance(TimeSpan.FromSeconds(2)); // both levels full again, nobody waiting
            Assert.Equal(1, perKey.EvictIdle());
            Assert.Equal(1, perOperation.EvictIdle());
            clock.FailReadings = true;
        });

        Assert.False(hierarchy.TryAcquire("user", "op", 1, out _));

        Assert.Equal(0, manual.ActiveTimers); // before: 2, one pump timer per evicted level, created after the eviction
        Assert.NotNull(keyBucket);
        Assert.Null(keyBucket.FallbackTimer);
        Assert.Null(operationBucket!.FallbackTimer);
        Assert.Equal(1, keyBucket.ClockFailureCount); // the rollback's refund failed, reported (before: 2, its pump failed too)
        Assert.Equal(1, operationBucket.ClockFailureCount);
    }

    [Fact]
    public void RefundOrOwe_EvictedBucketWhileTheClockAndItsTimersFail_CreatesNoFallback()
    {
        var manual = new ManualTimeProvider();
        var clock = new SwitchableClock(manual);
        var keyed = new KeyedTokenBucket<string>(1, 1.0, maxKeys: 4, clock);
        Assert.True(keyed.TryAcquire("a"));
        Assert.True(keyed.TryGetBucket("a", out TokenBucket? bucket));
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, keyed.EvictIdle());

        clock.FailReadings = true;
        clock.FailTimers = true;
        bucket.RefundOrOwe(1);

        Assert.Null(bucket.FallbackTimer); // before: a TimeProvider.System timer, re-armed while the refund stayed owed
        Assert.Equal(0, manual.ActiveTimers);
    }

    [Fact]
    public void ReturnGrant_AfterTheOwningLimiterWasDisposed_WhileTheClockFails_CreatesNoTimer()
    {
        // A zero-permit wait granted as its limiter is disposed gives the token back (ReturnGrant) after the Dispose.
        var manual = new ManualTimeProvider();
        var clock = new SwitchableClock(manual);
        var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 1, TokensPerSecond = 1, QueueLimit = 1, FastPathBatch = 1, TimeProvider = clock,
        });
        limiter.Dispose();

        clock.FailReadings = true;
        limiter.Bucket.ReturnGrant(1);

        Assert.Equal(0, manual.ActiveTimers); // before: 1, created after the Dispose had disposed the pump's timer
        Assert.Null(limiter.Bucket.FallbackTimer);
    }

    [Fact]
    public async Task AcquireAsync_OnTheBucketOfADisposedLimiter_StillArmsItsWait()
    {
        // A guard on what stays: a wait queued later on the bucket itself (through Bucket) is a new use, which needs the
        // pump's timer, as documented (StopTimers); only a failure retry with nobody waiting is refused after the stop.
        var manual = new ManualTimeProvider();
        var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 1, TokensPerSecond = 1, QueueLimit = 1, FastPathBatch = 1, TimeProvider = manual,
        });
        limiter.Dispose();
        Assert.True(limiter.Bucket.TryAcquire());

        ValueTask<bool> waiting = limiter.Bucket.AcquireAsync(1);
        Assert.Equal(1, manual.ActiveTimers);
        manual.Advance(TimeSpan.FromSeconds(1));

        Assert.True(await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void RefundOrOwe_LiveBucketWhileTheClockFails_StillRetriesTheRefund()
    {
        // A guard on what stays: on a live bucket an owed refund is retried by the pump's timer until the clock works.
        var manual = new ManualTimeProvider();
        var clock = new SwitchableClock(manual);
        var bucket = new TokenBucket(2, 1.0, fastPathBatch: 1, clock);
        Assert.True(bucket.TryAcquire(2));

        clock.FailReadings = true;
        bucket.RefundOrOwe(1);
        Assert.Equal(1, manual.ActiveTimers); // the retry
        clock.FailReadings = false;
        manual.Advance(TimeSpan.FromMilliseconds(1)); // the retry pays the refund

        Assert.True(bucket.TryAcquire(1)); // the refunded token, no refill yet (1 ms of 1 s)
    }

    /// <summary>A clock whose readings, and whose timer creations, fail while told to (its timers are the inner clock's).</summary>
    private sealed class SwitchableClock(ManualTimeProvider inner) : TimeProvider
    {
        private bool _failReadings;
        private bool _failTimers;

        public bool FailReadings { get => Volatile.Read(ref _failReadings); set => Volatile.Write(ref _failReadings, value); }

        public bool FailTimers { get => Volatile.Read(ref _failTimers); set => Volatile.Write(ref _failTimers, value); }

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => FailReadings ? throw new InvalidOperationException("clock failed") : inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            FailTimers ? throw new InvalidOperationException("timer failed") : inner.CreateTimer(callback, state, dueTime, period);
    }
}
