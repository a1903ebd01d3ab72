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
}
