using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class TokenBucketTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public void TryAcquire_FreshBucket_AdmitsCapacityThenRefuses()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 5, time);

        for (int i = 0; i < 10; i++)
        {
            Assert.True(bucket.TryAcquire());
        }

        Assert.False(bucket.TryAcquire(1, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromMilliseconds(200), retryAfter);
    }

    [Fact]
    public void TryAcquire_AfterTimePasses_RefillsLazilyAtTheRate()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 5, time);
        Assert.True(bucket.TryAcquire(10));
        Assert.False(bucket.TryAcquire());

        time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(bucket.TryAcquire(5));
        Assert.False(bucket.TryAcquire());
    }

    [Fact]
    public void TryAcquire_IdleLongerThanCapacityTakes_HoldsOnlyCapacity()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(4, 100, time);
        Assert.True(bucket.TryAcquire(4));

        time.Advance(TimeSpan.FromHours(1));

        Assert.True(bucket.TryAcquire(4));
        Assert.False(bucket.TryAcquire());
    }

    [Fact]
    public void TryAcquire_FractionalRate_OneTokenEveryTwoSeconds()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(1, 0.5, time);
        Assert.True(bucket.TryAcquire());

        time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.False(bucket.TryAcquire(1, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(0.1), retryAfter);

        time.Advance(retryAfter);
        Assert.True(bucket.TryAcquire());
    }

    [Fact]
    public void TryAcquire_MultiTokenCost_RefusedWithoutTakingAnything()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1, time);
        Assert.True(bucket.TryAcquire(7));

        Assert.False(bucket.TryAcquire(4, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(1), retryAfter);
        Assert.True(bucket.TryAcquire(3)); // the refused request took nothing
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Constructor_BadRate_Throws(double rate)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(10, rate));
        Assert.Equal("tokensPerSecond", ex.ParamName);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-5L)]
    [InlineData(1L << 40)]
    public void Constructor_BadCapacity_Throws(long capacity)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(capacity, 1));
        Assert.Equal("capacity", ex.ParamName);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    public void Constructor_BadBatch_Throws(int batch)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(10, 1, batch));
    }

    [Fact]
    public void Constructor_RateTooLowForClock_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(1L << 39, 1e-12));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(11)]
    public void TryAcquire_BadTokenCount_ThrowsAndBucketStaysUsable(int tokens)
    {
        var bucket = new TokenBucket(10, 1, new ManualTimeProvider());

        Assert.Throws<ArgumentOutOfRangeException>(() => bucket.TryAcquire(tokens));
        Assert.Throws<ArgumentOutOfRangeException>(() => bucket.TryAcquire(tokens, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => bucket.AcquireAsync(tokens));
        Assert.True(bucket.TryAcquire(10));
    }

    [Fact]
    public void AcquireAsync_NegativeTimeout_Throws()
    {
        var bucket = new TokenBucket(10, 1, new ManualTimeProvider());
        Assert.Throws<ArgumentOutOfRangeException>(() => bucket.AcquireAsync(1, TimeSpan.FromSeconds(-2)));
    }

    [Fact]
    public void TryAcquire_SuccessAndRefusal_AllocateNothing()
    {
        var bucket = new TokenBucket(1000, 1e-3, new ManualTimeProvider());
        bucket.TryAcquire(1, out _); // JIT and first refill
        bucket.TryAcquire(1000, out _); // refused by the owner (writes the refusal memo) ...
        bucket.TryAcquire(1000, out _); // ... then on the memo: its per-thread count slot is allocated once per bucket and thread
        long before = GC.GetAllocatedBytesForCurrentThread();
        int admitted = 0;
        for (int i = 0; i < 10_000; i++)
        {
            admitted += bucket.TryAcquire(1, out TimeSpan _) ? 1 : 0;
            admitted += bucket.TryAcquire() ? 1 : 0;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(999, admitted);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void TryAcquire_SystemClockRefusals_MemoisedButNeverPastTheRefill()
    {
        var bucket = new TokenBucket(1, 1); // system clock: refusals after the first use the coarse-clock memo
        Assert.True(bucket.TryAcquire());
        Assert.False(bucket.TryAcquire(1, out TimeSpan first));
        Assert.False(bucket.TryAcquire(1, out TimeSpan second));
        Assert.InRange(first, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1));
        Assert.InRange(second, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        Assert.Equal(2, bucket.RefusedCount);

        Thread.Sleep(TimeSpan.FromMilliseconds(1100)); // a token is certainly back: the memo must not hide it
        Assert.True(bucket.TryAcquire());
    }

    [Fact]
    public void TryAcquire_SystemClockLongWait_CoarseMemoRenewsAfterItExpires()
    {
        // The next token is days away; a coarse memo lasts at most a second. When it runs out, the owner must renew
        // it (one precise refusal per second) rather than leave every later refusal on the precise-clock fine memo.
        var bucket = new TokenBucket(1, 1e-6);
        Assert.True(bucket.TryAcquire());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long refusals = 0;
        while (clock.Elapsed < TimeSpan.FromMilliseconds(2300))
        {
            Assert.False(bucket.TryAcquire(1, out TimeSpan retryAfter));
            Assert.True(retryAfter > TimeSpan.Zero);
            refusals++;
            Thread.Sleep(1);
        }

        Assert.Equal(refusals, bucket.RefusedCount);
        Assert.InRange(bucket.OwnerRefusedCount, 3, 1 + (refusals / 2)); // the first, then about one renewal per second
    }

    [Fact]
    public void TryAcquire_SystemClockMemoRefusalOfMoreTokens_HintCountsEveryMissingToken()
    {
        // The first refusal (1 token, 100 ms away) leaves a coarse memo for 1 token; a request for 5 answered on that
        // memo must wait for all 5 (about 500 ms), not for the memo's 1.
        var bucket = new TokenBucket(10, 10, fastPathBatch: 1);
        Assert.True(bucket.TryAcquire(10));
        Assert.False(bucket.TryAcquire(1, out TimeSpan one));
        var between = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(bucket.TryAcquire(5, out TimeSpan five));
        double late = between.Elapsed.TotalMilliseconds; // a preemption here shortens the true wait by as much
        Assert.InRange(one.TotalMilliseconds, 50, 101);
        Assert.InRange(five.TotalMilliseconds, one.TotalMilliseconds + 400 - late - 2, 560);
        Assert.Equal(2, bucket.RefusedCount);
    }

    [Fact]
    public void TryAcquire_LiveMemo_RequestAboveCapacityStillThrowsAndIsNotCounted()
    {
        // The memo refusal is checked before the success path; the memo knows no capacity, so a request above it
        // must still reach the slow path's check, throw, leave no count, and leave the bucket usable.
        var bucket = new TokenBucket(4, 1e-6);
        Assert.True(bucket.TryAcquire(4));
        Assert.False(bucket.TryAcquire(1, out _)); // the owner refuses and leaves a memo
        Assert.False(bucket.TryAcquire(1, out TimeSpan onMemo)); // answered on the memo
        Assert.True(onMemo > TimeSpan.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => bucket.TryAcquire(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => bucket.TryAcquire(5, out _));
        Assert.Equal(2, bucket.RefusedCount);
        Assert.False(bucket.TryAcquire(4));
        Assert.Equal(3, bucket.RefusedCount);
    }

    [Fact]
    public void TryAcquire_ExactBatch_ReportsAvailableAfterEachCall()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(100, 10, fastPathBatch: 1, time);
        Assert.True(bucket.TryAcquire(40));
        Assert.Equal(60, bucket.AvailableTokens);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(80, bucket.AvailableTokens);
        Assert.Equal(40, bucket.AdmittedTokens);
    }

    [Fact]
    public void DefaultBatch_ScalesWithCapacity()
    {
        Assert.Equal(1, TokenBucket.DefaultBatch(10));
        Assert.Equal(6, TokenBucket.DefaultBatch(100));
        Assert.Equal(TokenBucket.MaxDefaultBatch, TokenBucket.DefaultBatch(1L << 30));
        Assert.Equal(6, new TokenBucket(100, 1).FastPathBatch);
    }

    [Fact]
    public void EffectiveRate_IsNeverAboveConfigured()
    {
        // Above about frequency / 4096 tokens per second the clock's resolution makes the rounding coarser (documented).
        foreach (double rate in new[] { 3.0, 0.7, 12345.678, 1e6 })
        {
            var bucket = new TokenBucket(100, rate);
            Assert.True(bucket.EffectiveTokensPerSecond <= rate);
            Assert.True(bucket.EffectiveTokensPerSecond > rate * 0.99, $"{rate}: {bucket.EffectiveTokensPerSecond}");
        }
    }

    [Fact]
    public async Task AcquireAsync_TokensAvailable_CompletesSynchronously()
    {
        var bucket = new TokenBucket(10, 1, new ManualTimeProvider());
        ValueTask<bool> wait = bucket.AcquireAsync(3);
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.True(await wait);
    }

    [Fact]
    public async Task AcquireAsync_Empty_CompletesInArrivalOrderAsTimePasses()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1, time);
        Assert.True(bucket.TryAcquire(10));
        var order = new List<int>();
        var first = Track(bucket.AcquireAsync(3), 1, order);
        var second = Track(bucket.AcquireAsync(1), 2, order);
        Assert.Equal(2, bucket.QueuedWaiters);

        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted); // needs 1 token, but must not overtake the first waiter

        time.Advance(TimeSpan.FromSeconds(1));
        await first.WaitAsync(Generous);
        Assert.False(second.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await second.WaitAsync(Generous);
        Assert.Equal([1, 2], order);
        Assert.Equal(0, bucket.QueuedWaiters);
    }

    [Fact]
    public async Task TryAcquire_WhileSomeoneWaits_RefusesThenWorksAgainAfterQueueDrains()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1, time);
        Assert.True(bucket.TryAcquire(10));
        ValueTask<bool> waiter = bucket.AcquireAsync(5);
        time.Advance(TimeSpan.FromSeconds(4), fireTimers: false);

        Assert.False(bucket.TryAcquire(1)); // 4 tokens in the bucket, but the waiter came first

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await waiter.AsTask().WaitAsync(Generous));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(1));
    }

    [Fact]
    public async Task AcquireAsync_Cancelled_LeavesNoTraceAndLosesNoTokens()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1, time);
        Assert.True(bucket.TryAcquire(10));
        using var cts = new CancellationTokenSource();
        ValueTask<bool> cancelled = bucket.AcquireAsync(5, cts.Token);

        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.AsTask().WaitAsync(Generous));
        Assert.Equal(0, bucket.QueuedWaiters);

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(bucket.TryAcquire(10)); // nothing was taken for the cancelled waiter, and the barrier is gone
    }

    [Fact]
    public async Task AcquireAsync_Timeout_ReturnsFalseAndTakesNothing()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(10, 1, time);
        Assert.True(bucket.TryAcquire(10));
        ValueTask<bool> wait = bucket.AcquireAsync(10, TimeSpan.FromSeconds(2));

        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(await wait.AsTask().WaitAsync(Generous));
        Assert.Equal(0, bucket.QueuedWaiters);
        time.Advance(TimeSpan.FromSeconds(8));
        Assert.True(bucket.TryAcquire(10));
    }

    [Fact]
    public async Task AcquireAsync_SteadyState_ReusesWaiters()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(1, 1000, time);
        Assert.True(bucket.TryAcquire());
        for (int i = 0; i < 50; i++)
        {
            ValueTask<bool> wait = bucket.AcquireAsync();
            Assert.False(wait.IsCompleted);
            time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.True(await wait.AsTask().WaitAsync(Generous));
        }

        Assert.Equal(1, time.ActiveTimers); // one reusable pacing timer
    }

    [Fact]
    public async Task AcquireAsync_ManyConcurrentWaiters_EachServedOnce()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(5, 10, time);
        Assert.True(bucket.TryAcquire(5));
        var waits = new List<Task<bool>>();
        for (int i = 0; i < 40; i++)
        {
            waits.Add(bucket.AcquireAsync(1 + (i % 3)).AsTask());
        }

        for (int i = 0; i < 100 && waits.Any(w => !w.IsCompleted); i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(1);
        }

        bool[] results = await Task.WhenAll(waits).WaitAsync(Generous);
        Assert.All(results, Assert.True);
        Assert.Equal(5 + waits.Select((_, i) => 1 + (i % 3)).Sum(), bucket.AdmittedTokens);
    }

    private static async Task Track(ValueTask<bool> wait, int id, List<int> order)
    {
        Assert.True(await wait);
        lock (order)
        {
            order.Add(id);
        }
    }
}
