using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class LeakyBucketTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task EnterAsync_Burst_LeavesOnePerInterval()
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(10, 10, OverflowPolicy.Reject, time); // one per 100 ms
        ValueTask<bool> first = leaky.EnterAsync();
        Assert.True(first.IsCompletedSuccessfully); // idle output: passes at once
        var waits = Enumerable.Range(0, 5).Select(_ => leaky.EnterAsync().AsTask()).ToArray();
        Assert.Equal(5, leaky.QueuedCount);

        for (int i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(99));
            await Task.Delay(5);
            Assert.Equal(i, waits.Count(w => w.IsCompleted)); // not before its slot
            time.Advance(TimeSpan.FromMilliseconds(1));
            await waits[i].WaitAsync(Generous);
            Assert.True(await waits[i]);
        }

        Assert.Equal(6, leaky.Released);
    }

    [Fact]
    public void TryEnter_PassesOncePerInterval()
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(4, 2, timeProvider: time);
        Assert.True(leaky.TryEnter());
        Assert.False(leaky.TryEnter());
        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.True(leaky.TryEnter());
    }

    [Fact]
    public async Task EnterAsync_FullUnderReject_RefusesNewcomer()
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(2, 1, OverflowPolicy.Reject, time);
        Assert.True(await leaky.EnterAsync());
        Task<bool> a = leaky.EnterAsync().AsTask();
        Task<bool> b = leaky.EnterAsync().AsTask();
        Assert.False(await leaky.EnterAsync());
        Assert.Equal(1, leaky.Rejected);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await a.WaitAsync(Generous));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await b.WaitAsync(Generous));
    }

    [Fact]
    public async Task EnterAsync_FullUnderDropIncoming_CountsDrop()
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(1, 1, OverflowPolicy.DropIncoming, time);
        Assert.True(await leaky.EnterAsync());
        _ = leaky.EnterAsync();
        Assert.False(await leaky.EnterAsync());
        Assert.Equal(1, leaky.DroppedIncoming);
    }

    [Fact]
    public async Task EnterAsync_FullUnderDropOldest_EvictsLongestWaiter()
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(2, 1, OverflowPolicy.DropOldest, time);
        Assert.True(await leaky.EnterAsync());
        Task<bool> oldest = leaky.EnterAsync().AsTask();
        Task<bool> middle = leaky.EnterAsync().AsTask();
        Task<bool> newest = leaky.EnterAsync().AsTask();

        Assert.False(await oldest.WaitAsync(Generous));
        Assert.Equal(1, leaky.Evicted);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await middle.WaitAsync(Generous));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await newest.WaitAsync(Generous));
    }

    [Fact]
    public async Task EnterAsync_Cancelled_LeavesQueueAndNextOneKeepsItsSlot()
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(4, 1, OverflowPolicy.Reject, time);
        Assert.True(await leaky.EnterAsync());
        using var cts = new CancellationTokenSource();
        Task<bool> cancelled = leaky.EnterAsync(cts.Token).AsTask();
        Task<bool> next = leaky.EnterAsync().AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Generous));
        Assert.Equal(1, leaky.QueuedCount);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await next.WaitAsync(Generous));
    }

    [Fact]
    public async Task EnterAsync_TimerLate_NoCatchUpBurst()
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(10, 10, OverflowPolicy.Reject, time);
        Assert.True(await leaky.EnterAsync());
        Task<bool>[] waits = Enumerable.Range(0, 3).Select(_ => leaky.EnterAsync().AsTask()).ToArray();

        time.Advance(TimeSpan.FromSeconds(5)); // the timer fires once, very late
        await waits[0].WaitAsync(Generous);
        await Task.Delay(5);
        Assert.False(waits[1].IsCompleted); // one slot per interval from now on, not a burst of missed slots
        time.Advance(TimeSpan.FromMilliseconds(100));
        await waits[1].WaitAsync(Generous);
    }

    [Fact]
    public async Task Dispose_EndsQueuedWaitsWithFalse()
    {
        var time = new ManualTimeProvider();
        var leaky = new LeakyBucket(4, 1, OverflowPolicy.Reject, time);
        Assert.True(await leaky.EnterAsync());
        Task<bool> waiting = leaky.EnterAsync().AsTask();
        leaky.Dispose();
        Assert.False(await waiting.WaitAsync(Generous));
        Assert.Throws<ObjectDisposedException>(() => leaky.TryEnter());
    }

    [Fact]
    public void Constructor_BadInput_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeakyBucket(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeakyBucket(1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeakyBucket(1, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeakyBucket(1, 1, OverflowPolicy.Wait));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeakyBucket(1, 1, (OverflowPolicy)42));
    }

    [Fact]
    public async Task TokenBucketFeedingLeakyBucket_BurstAdmittedThenSmoothed()
    {
        // Admission: bursts of up to 5 per second; output: one every 200 ms, whatever the burst.
        var time = new ManualTimeProvider();
        var admission = new TokenBucket(5, 5, time);
        using var shaper = new LeakyBucket(10, 5, OverflowPolicy.Reject, time);
        var passed = new List<Task<bool>>();
        int refused = 0;
        for (int i = 0; i < 8; i++)
        {
            if (admission.TryAcquire())
            {
                passed.Add(shaper.EnterAsync().AsTask());
            }
            else
            {
                refused++;
            }
        }

        Assert.Equal(3, refused); // the token bucket caps the burst
        Assert.Equal(1, passed.Count(t => t.IsCompleted)); // the leaky bucket smooths it
        for (int i = 1; i < passed.Count; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(200));
            Assert.True(await passed[i].WaitAsync(Generous));
            Assert.Equal(i + 1, passed.Count(t => t.IsCompleted));
        }
    }
    [Theory]
    [InlineData(3.0)]        // 10^7 / 3 ticks: not a whole number of clock ticks
    [InlineData(7.0)]
    [InlineData(0.7)]
    [InlineData(1000.0 / 3)]
    [InlineData(12_345.678)]
    public void TryEnter_RateNotAWholeNumberOfTicks_KeepsTheExactRate(double rate)
    {
        // Departure k is due at creation + k / rate seconds. Before the fix the interval was rounded up to whole ticks
        // (10^7 / 3 -> 3 333 334), so the grid drifted a tick per departure and the k-th slot came late: the rate was
        // silently lowered. Fixed-point accounting keeps the exact instants (each rounded up to the tick it falls in).
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(4, rate, timeProvider: time);
        Assert.True(leaky.TryEnter());
        long elapsed = 0;
        for (int k = 1; k <= 300; k++)
        {
            long due = ExactDue(k, time.TimestampFrequency, rate);
            if (due - 1 > elapsed)
            {
                time.Advance(TimeSpan.FromTicks(due - 1 - elapsed));
                elapsed = due - 1;
                Assert.False(leaky.TryEnter()); // one tick before the slot: never early
            }

            time.Advance(TimeSpan.FromTicks(due - elapsed));
            elapsed = due;
            Assert.True(leaky.TryEnter(), $"departure {k} at its exact slot"); // never late
        }

        Assert.Equal(301, leaky.Released);
        Assert.Equal(rate, leaky.RequestsPerSecond);
    }

    [Theory]
    [InlineData(3.0)]
    [InlineData(0.7)]
    [InlineData(12_345.678)]
    public async Task EnterAsync_RateNotAWholeNumberOfTicks_QueuedRequestsLeaveAtExactSlots(double rate)
    {
        var time = new ManualTimeProvider();
        using var leaky = new LeakyBucket(64, rate, timeProvider: time);
        Assert.True(leaky.TryEnter());
        var waits = Enumerable.Range(0, 40).Select(_ => leaky.EnterAsync().AsTask()).ToArray();
        long elapsed = 0;
        for (int k = 1; k <= waits.Length; k++)
        {
            long due = ExactDue(k, time.TimestampFrequency, rate);
            time.Advance(TimeSpan.FromTicks(due - elapsed)); // the pacing timer fires here (never later than the slot's tick)
            elapsed = due;
            Assert.True(await waits[k - 1].WaitAsync(Generous), $"departure {k} at its exact slot");
        }

        Assert.Equal(41, leaky.Released);
    }

    /// <summary>ceil(k × frequency / rate) in clock ticks, with the double rate taken exactly (mantissa × 2^exponent).</summary>
    private static long ExactDue(int k, long frequency, double rate)
    {
        long bits = BitConverter.DoubleToInt64Bits(rate);
        int exponent = (int)((bits >> 52) & 0x7FF) - 1075;
        var mantissa = new System.Numerics.BigInteger((bits & ((1L << 52) - 1)) | (1L << 52));
        System.Numerics.BigInteger numerator = k * (System.Numerics.BigInteger)frequency, denominator = mantissa;
        if (exponent < 0)
        {
            numerator <<= -exponent;
        }
        else
        {
            denominator <<= exponent;
        }

        System.Numerics.BigInteger quotient = System.Numerics.BigInteger.DivRem(numerator, denominator, out System.Numerics.BigInteger remainder);
        return (long)(remainder.IsZero ? quotient : quotient + 1);
    }

    [Fact]
    public void Constructor_RateAboveTheClockFrequency_Throws()
    {
        // Departures closer than one clock tick cannot be spaced: before, the interval was clamped to one tick (the rate
        // silently lowered to the clock's frequency). Now refused, naming the limit.
        var time = new ManualTimeProvider();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new LeakyBucket(4, time.TimestampFrequency * 2.0, timeProvider: time));
        Assert.Equal("requestsPerSecond", error.ParamName);
        using var atLimit = new LeakyBucket(4, time.TimestampFrequency, timeProvider: time); // one per tick: exact
        Assert.True(atLimit.TryEnter());
        Assert.False(atLimit.TryEnter());
        time.Advance(TimeSpan.FromTicks(1));
        Assert.True(atLimit.TryEnter());
    }

    [Theory]
    [InlineData(3.0)]
    [InlineData(0.7)]
    [InlineData(12_345.678)]
    public async Task EnterAsync_QueuedRequests_ThePacingTimerFiresOncePerDepartureAtItsExactTick(double rate)
    {
        // The pacing timer is armed for the first tick at or after each departure's exact instant: never earlier (a timer
        // that fires early finds nothing due and re-arms: a wasted wake-up per departure) and never later. Session 16's
        // mutation run found the due-time computation untested on the early side (the late side fails the exact-slot
        // tests): one tick early or one tick late changed no departure. Counted here: callbacks per departure.
        var time = new CountingClock(new ManualTimeProvider());
        using var leaky = new LeakyBucket(64, rate, timeProvider: time);
        Assert.True(leaky.TryEnter());
        var waits = Enumerable.Range(0, 20).Select(_ => leaky.EnterAsync().AsTask()).ToArray();
        long elapsed = 0;
        for (int k = 1; k <= waits.Length; k++)
        {
            long due = ExactDue(k, time.TimestampFrequency, rate);
            if (due - 1 > elapsed)
            {
                time.Inner.Advance(TimeSpan.FromTicks(due - 1 - elapsed)); // one tick before the slot: no callback yet
                elapsed = due - 1;
                Assert.Equal(k - 1, time.Callbacks);
                Assert.False(waits[k - 1].IsCompleted, $"departure {k} a tick early");
            }

            time.Inner.Advance(TimeSpan.FromTicks(due - elapsed));
            elapsed = due;
            Assert.True(await waits[k - 1].WaitAsync(Generous), $"departure {k} at its exact slot");
            Assert.Equal(k, time.Callbacks); // exactly one wake-up for this departure
        }
    }
}
