using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// <see cref="AckQueue{T}"/>'s retry hint when every unit of room is in flight (received, not yet acked). Before
/// (session 11) it was the inner delay queue's hint for an empty queue: <see cref="TimeSpan.Zero"/>, "retry now",
/// though nothing frees room until an ack or a timeout that dead-letters.
/// </summary>
public sealed class AckQueueInFlightHintTests
{
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(10);

    private static AckQueue<string> Create(ManualTimeProvider time, int capacity, int maxDeliveries = 0, DeadLetterQueue<string>? deadLetters = null) =>
        AckQueueTests.Create(time, capacity, maxDeliveries, deadLetters); // the same options (10 s visibility, Reject)

    [Fact]
    public void TryEnqueue_AllRoomInFlightWithoutMaxDeliveries_HintIsNoEstimate()
    {
        // Only an ack gives room back (a timed-out message returns to the ready queue and keeps its unit): no clock
        // foresees that, so the hint is "no estimate", not "retry now".
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time, capacity: 2);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b");
        Assert.True(queue.TryReceive(out _));
        Assert.True(queue.TryReceive(out _));

        WriteResult result = queue.TryEnqueue("c");

        Assert.Equal((WriteOutcome.Rejected, RejectReason.Full), (result.Outcome, result.Reason));
        Assert.Equal(Timeout.InfiniteTimeSpan, result.RetryAfter); // before: TimeSpan.Zero
    }

    [Fact]
    public void TryEnqueue_AllRoomInFlightOneOnItsLastDelivery_HintIsUntilItsTimeoutDeadLetters()
    {
        var time = new ManualTimeProvider();
        using var deadLetters = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = time });
        using AckQueue<string> queue = Create(time, capacity: 2, maxDeliveries: 1, deadLetters: deadLetters);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _)); // deadline: now + 10 s; its timeout dead-letters it (MaxDeliveries 1)
        time.Advance(TimeSpan.FromSeconds(4));
        queue.TryEnqueue("b");
        Assert.True(queue.TryReceive(out _)); // deadline: now + 10 s

        WriteResult result = queue.TryEnqueue("c");

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(6), result.RetryAfter); // before: TimeSpan.Zero

        // The hint is honest: room comes back then, without an ack.
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(1, deadLetters.Count);
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue("c"));
    }

    [Fact]
    public void TryEnqueue_AllRoomInFlightNoneOnItsLastDelivery_HintIsNoEstimate()
    {
        var time = new ManualTimeProvider();
        using var deadLetters = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = time });
        using AckQueue<string> queue = Create(time, capacity: 1, maxDeliveries: 3, deadLetters: deadLetters);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _)); // delivery 1 of 3: its timeout brings it back, keeping its unit

        Assert.Equal(Timeout.InfiniteTimeSpan, queue.TryEnqueue("b").RetryAfter); // before: TimeSpan.Zero
    }

    [Fact]
    public void TryEnqueue_AllRoomInFlightAndTheClockThrows_NoEstimateAndCounted()
    {
        var manual = new ManualTimeProvider();
        var time = new ThrowingClock(manual);
        using var deadLetters = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = manual });
        using var queue = new AckQueue<string>(new AckQueueOptions<string>
        {
            Capacity = 1, VisibilityTimeout = Visibility, TimeProvider = time, MaxDeliveries = 1, DeadLetters = deadLetters,
        });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, error) => reported.Add(error);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));

        time.Throw = true;
        WriteResult result = queue.TryEnqueue("b");

        Assert.Equal((WriteOutcome.Rejected, Timeout.InfiniteTimeSpan), (result.Outcome, result.RetryAfter));
        Assert.Equal(1, queue.FailedCallbackCount);
        Assert.IsType<InvalidOperationException>(Assert.Single(reported));
    }

    [Fact]
    public void TryEnqueue_ReadyMessagesWaiting_HintStaysTheDelayQueues()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time, capacity: 2);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b", TimeSpan.FromSeconds(3));
        Assert.True(queue.TryReceive(out _));

        Assert.Equal(TimeSpan.FromSeconds(3), queue.TryEnqueue("c").RetryAfter);
    }

    /// <summary>A clock that throws on demand (the timers are the inner clock's).</summary>
    private sealed class ThrowingClock(ManualTimeProvider inner) : TimeProvider
    {
        public bool Throw { get; set; }

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => Throw ? throw new InvalidOperationException("clock down") : inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }
}
