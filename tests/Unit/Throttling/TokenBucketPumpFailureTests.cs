using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// A user's <see cref="TimeProvider"/> whose clock reading throws inside the bucket (helper s8-pump, 2026-11-23).
/// Before: the reading was taken with the engine's word Closed, so the exception left it Closed and every later acquire
/// spun forever; thrown from the pump's timer callback it would end the process (ManualTimeProvider's Advance rethrows
/// it); thrown from the pump inside AcquireAsync it stranded the linked waiter. Now the word reopens, the pump counts
/// and reports the failure and retries after a back-off, and no token is lost or minted.
/// </summary>
public sealed class TokenBucketPumpFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TryAcquire_ClockThrowsWhileOwning_ThrowsAndBucketStaysUsable()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(2, 1.0, fastPathBatch: 1, clock); // exact: the owner reads the clock on every call

        clock.FailReading(1);
        Assert.Throws<InvalidOperationException>(() => bucket.TryAcquire(1));

        // Before, the word stayed Closed: this acquire spun forever (bounded here by a timeout that fails the test).
        (bool, bool, bool) after = await Task.Run(() => (bucket.TryAcquire(1), bucket.TryAcquire(1), bucket.TryAcquire(1))).WaitAsync(Generous);
        Assert.Equal((true, true, false), after); // the failed call took nothing; nothing extra was minted
    }

    [Fact]
    public async Task Pump_ClockThrowsOnTimerCallback_ReportedRetriedAndWaiterServed()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        var reported = new List<Exception>();
        bucket.ClockFailed += (sender, ex) =>
        {
            Assert.Same(bucket, sender);
            reported.Add(ex);
        };
        Assert.True(bucket.TryAcquire(1));
        ValueTask<bool> first = bucket.AcquireAsync(1); // queues; the pump arms its timer for the next token
        Assert.False(first.IsCompleted);

        clock.FailReading(1); // the pump's reading when its timer fires
        manual.Advance(TimeSpan.FromSeconds(1)); // before: the exception escaped the timer callback (a crash on a real timer thread)
        Assert.Equal(1, bucket.ClockFailureCount);
        Assert.Equal("clock failed", Assert.Single(reported).Message);
        Assert.Equal(1, bucket.QueuedWaiters); // not served yet (the pump's grant unlinks synchronously)

        manual.Advance(TimeSpan.FromMilliseconds(1)); // the retry
        Assert.True(await first.AsTask().WaitAsync(Generous));
        Assert.Equal(0, bucket.QueuedWaiters);

        // Exactly one token per second still: none lost to the failure, none minted by the retry.
        Assert.False(bucket.TryAcquire(1));
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(1));
        Assert.False(bucket.TryAcquire(1));
        Assert.Equal(3, bucket.AdmittedTokens); // the first take, the waiter, the take after
    }

    [Fact]
    public async Task AcquireAsync_ClockThrowsInPump_WaiterStaysQueuedAndIsServed()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        Assert.True(bucket.TryAcquire(1));

        clock.FailReading(2); // 1: AcquireAsync's own try (refused); 2: the pump's try for the new waiter
        ValueTask<bool> waiting = bucket.AcquireAsync(1); // before: threw, leaving the waiter linked and the word Closed
        Assert.Equal(1, bucket.QueuedWaiters);
        Assert.Equal(1, bucket.ClockFailureCount);

        manual.Advance(TimeSpan.FromSeconds(1)); // the retry timer (1 ms) fires; the token is there by now
        Assert.True(await waiting.AsTask().WaitAsync(Generous));
        Assert.False(bucket.TryAcquire(1));
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(1));
        Assert.False(bucket.TryAcquire(1));
    }

    [Fact]
    public async Task AcquireAsync_PumpTimerCreationThrows_WaiterStaysQueuedAndIsServed()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        Assert.True(bucket.TryAcquire(1));

        clock.FailTimer(1); // the pump's own timer, created by the first waiter that has to wait
        ValueTask<bool> waiting = bucket.AcquireAsync(1); // before: threw with the waiter linked (a later grant went to nobody)
        Assert.Equal(1, bucket.QueuedWaiters);
        Assert.Equal(1, bucket.ClockFailureCount); // the retry created the timer (the clock failed once)

        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await waiting.AsTask().WaitAsync(Generous));
        Assert.False(bucket.TryAcquire(1));
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryAcquire(1));
    }

    [Fact]
    public async Task Pump_ClockKeepsFailing_BacksOffAndServesOnceItRecovers()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        Assert.True(bucket.TryAcquire(1));
        ValueTask<bool> first = bucket.AcquireAsync(1);

        clock.FailReading(1);
        manual.Advance(TimeSpan.FromSeconds(1)); // fails; retry in 1 ms
        clock.FailReading(1);
        manual.Advance(TimeSpan.FromMilliseconds(1)); // fails again; retry in 2 ms
        Assert.Equal(2, bucket.ClockFailureCount);
        manual.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, bucket.QueuedWaiters); // backing off: not retried after 1 ms this time
        manual.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(await first.AsTask().WaitAsync(Generous));
        Assert.Equal(2, bucket.ClockFailureCount);
    }

    [Fact]
    public async Task ClockFailed_HandlerThrows_SwallowedAndRetried()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var bucket = new TokenBucket(1, 1.0, fastPathBatch: 1, clock);
        bucket.ClockFailed += (_, _) => throw new InvalidOperationException("handler failed");
        Assert.True(bucket.TryAcquire(1));
        ValueTask<bool> first = bucket.AcquireAsync(1);

        clock.FailReading(1);
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, bucket.ClockFailureCount);
        manual.Advance(TimeSpan.FromMilliseconds(1)); // the retry was still armed after the handler threw
        Assert.True(await first.AsTask().WaitAsync(Generous));
    }
}
