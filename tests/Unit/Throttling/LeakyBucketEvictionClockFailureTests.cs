using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="LeakyBucket"/> under <see cref="OverflowPolicy.DropOldest"/> with a pacing timer that throws when armed
/// (helper s9-room, 2026-11-23): a request that cannot be queued (its arming threw) must not have evicted a queued one.
/// </summary>
public sealed class LeakyBucketEvictionClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task EnterAsync_DropOldestAndTheArmingThrows_ThrowsWithoutEvictingTheQueuedRequest()
    {
        // Before, the full queue's oldest request was evicted (answered false, counted) and then the newcomer's arming
        // threw: the newcomer never entered, so the queued request was dropped for nothing and the queue stood empty.
        var manual = new ManualTimeProvider();
        var clock = new ChangeFailingClock(manual);
        using var bucket = new LeakyBucket(1, 1.0, OverflowPolicy.DropOldest, clock);
        Assert.True(bucket.TryEnter());
        ValueTask<bool> queued = bucket.EnterAsync();
        Assert.False(queued.IsCompleted);

        clock.FailNextChange();
        Assert.Throws<InvalidOperationException>(() => { _ = bucket.EnterAsync(); });
        Assert.Equal(0, bucket.Evicted); // before: 1 (the queued request answered false)
        Assert.Equal(1, bucket.QueuedCount);

        manual.Advance(TimeSpan.FromSeconds(1)); // its slot: the timer was armed before the failure
        Assert.True(await queued.AsTask().WaitAsync(Generous)); // before: false (evicted)
        Assert.Equal(0, bucket.QueuedCount);
        Assert.Equal(2, bucket.Released);
    }

    /// <summary>A clock whose timers' next <see cref="ITimer.Change"/> throws once, on demand.</summary>
    private sealed class ChangeFailingClock(ManualTimeProvider inner) : TimeProvider
    {
        private int _failChange;

        public override long TimestampFrequency => inner.TimestampFrequency;

        public void FailNextChange() => Volatile.Write(ref _failChange, 1);

        public override long GetTimestamp() => inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            new FailingTimer(this, inner.CreateTimer(callback, state, dueTime, period));

        private sealed class FailingTimer(ChangeFailingClock owner, ITimer timer) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                if (Interlocked.Exchange(ref owner._failChange, 0) != 0)
                {
                    throw new InvalidOperationException("timer failed");
                }

                return timer.Change(dueTime, period);
            }

            public void Dispose() => timer.Dispose();

            public ValueTask DisposeAsync() => timer.DisposeAsync();
        }
    }
}
