using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="DelayQueue{T}"/>'s owner-side put-back (<c>Restore</c>, used by <see cref="AckQueue{T}"/> to move a message
/// back) puts a message due at once in even when the clock throws. Before (session 11) that clock failure was swallowed
/// without a trace; now it is counted in <see cref="DelayQueue{T}.ClockFailureCount"/> and raised through
/// <see cref="DelayQueue{T}.ClockFailed"/> (an ack queue's <see cref="AckQueue{T}.FailedCallbackCount"/> and
/// <see cref="AckQueue{T}.CallbackFailed"/>), and the message is never lost.
/// </summary>
public sealed class DelayQueueRestoreClockFailureTests
{
    [Fact]
    public void Restore_DueAtOnceAndTheClockThrows_ItemPutInAndTheFailureCountedAndRaised()
    {
        var clock = new CountdownClock(new ManualTimeProvider());
        using var queue = new DelayQueue<int>(2, new DelayQueueOptions<int> { TimeProvider = clock });
        var reported = new List<Exception>();
        queue.ClockFailed += (sender, error) =>
        {
            Assert.Same(queue, sender);
            reported.Add(error);
        };

        clock.FailNext(1);
        queue.Restore(7, TimeSpan.Zero);

        Assert.Equal(1, queue.ClockFailureCount); // before: 0, and no event
        Assert.Equal("clock failed", Assert.Single(reported).Message);
        Assert.True(queue.TryDequeue(out int item)); // nothing lost: due at once
        Assert.Equal(7, item);
    }

    [Fact]
    public void Restore_WithADelayAndTheClockThrows_ThrowsAndTakesNothing()
    {
        // The owner decides (an AckQueue puts the message back due at once): the exception is its report, not a count.
        var clock = new CountdownClock(new ManualTimeProvider());
        using var queue = new DelayQueue<int>(2, new DelayQueueOptions<int> { TimeProvider = clock });

        clock.FailNext(1);
        Assert.Throws<InvalidOperationException>(() => queue.Restore(7, TimeSpan.FromSeconds(1)));

        Assert.Equal((0, 0L), (queue.Count, queue.ClockFailureCount));
        queue.Restore(8, TimeSpan.FromSeconds(1)); // the unit came back: the queue holds its full capacity still
        queue.Restore(9, TimeSpan.FromSeconds(1));
        Assert.Equal(2, queue.Count);
    }

    [Fact]
    public void AckQueueTryEnqueue_ClockThrowsOnTheMoveIn_AcceptedAndTheFailureCounted()
    {
        var clock = new CountdownClock(new ManualTimeProvider());
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 2, TimeProvider = clock });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, error) => reported.Add(error);

        clock.FailNext(1);
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue("a"));

        Assert.Equal(1, queue.FailedCallbackCount); // before: 0
        Assert.Single(reported);
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.Equal("a", delivery.Message);
    }

    [Fact]
    public void AckQueueReceive_ClockThrowsOnTheReceiveAndOnThePutBack_MessageKeptFailureCountedOutsideTheLock()
    {
        // The receive's reading throws (that exception reaches the receiver); the put-back's reading throws too: counted,
        // and raised outside the queue's lock (the handler acks from another thread, which needs that lock).
        var clock = new CountdownClock(new ManualTimeProvider());
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 2, TimeProvider = clock });
        Assert.True(queue.TryEnqueue("a").IsAccepted);
        bool lockFree = false;
        queue.CallbackFailed += (_, _) => lockFree = Task.Run(() => queue.Ack(default)).Wait(TimeSpan.FromSeconds(10));

        clock.FailNext(2); // the take sees "a" due without a reading (the enqueue's was carried); then Register, then Restore
        Assert.Throws<InvalidOperationException>(() => queue.TryReceive(out _));

        Assert.Equal(1, queue.FailedCallbackCount); // before: 0
        Assert.True(lockFree);
        Assert.Equal((1, 0), (queue.Count, queue.InFlightCount));
        Assert.True(queue.TryReceive(out Delivery<string> delivery)); // nothing lost, its delivery count unchanged
        Assert.Equal(("a", 1), (delivery.Message, delivery.DeliveryCount));
    }

    /// <summary>A manual clock whose next <c>n</c> readings throw.</summary>
    private sealed class CountdownClock(ManualTimeProvider inner) : TimeProvider
    {
        private int _failures;

        public override long TimestampFrequency => inner.TimestampFrequency;

        public void FailNext(int readings) => Volatile.Write(ref _failures, readings);

        public override long GetTimestamp() =>
            Volatile.Read(ref _failures) > 0 && Interlocked.Decrement(ref _failures) >= 0 ? throw new InvalidOperationException("clock failed") : inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }
}
