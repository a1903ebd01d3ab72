using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// <see cref="AckQueue{T}"/>'s retry hint with all its room in flight, when the in-flight set changes while a rejection
/// computes it: each test runs the change from inside a clock reading, between two steps of the call. Before (s12) an
/// ack during the hint's clock reading left it answering the acked message's deadline (room already free), and a
/// rejection while a message was on its way out of the table (to the dead letters, or back due at once) answered "no
/// estimate" though its room, or the message, came back right after.
/// </summary>
public sealed class AckQueueHintRaceTests
{
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(10);

    private static AckQueue<string> Create(TimeProvider time, int capacity, int maxDeliveries, DeadLetterQueue<string>? deadLetters) =>
        new(new AckQueueOptions<string>
        {
            Capacity = capacity, VisibilityTimeout = Visibility, TimeProvider = time, MaxDeliveries = maxDeliveries, DeadLetters = deadLetters,
        });

    private static DeadLetterQueue<string> Dlq(TimeProvider time) => new(new DeadLetterQueueOptions<string> { Capacity = 4, TimeProvider = time });

    [Fact]
    public void TryEnqueue_AckedWhileTheHintReadsTheClock_RetryNowNotTheAckedDeadline()
    {
        var manual = new ManualTimeProvider();
        var clock = new HookedReadingClock(manual);
        using DeadLetterQueue<string> deadLetters = Dlq(manual);
        using AckQueue<string> queue = Create(clock, capacity: 1, maxDeliveries: 1, deadLetters);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery)); // its last delivery: the hint is its deadline, 10 s
        Assert.Equal(Visibility, queue.TryEnqueue("b").RetryAfter);

        clock.OnNextReading(() => Assert.True(queue.Ack(delivery))); // the hint has read the deadline; its clock reading acks
        WriteResult result = queue.TryEnqueue("b");

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(TimeSpan.Zero, result.RetryAfter); // before: 10 s, the deadline of a message no longer in flight
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue("b")); // and "retry now" is right
    }

    [Fact]
    public void TryEnqueue_WhileAnExpiryMovesTheLastDeliveryToTheDeadLetters_RetryNow()
    {
        var manual = new ManualTimeProvider();
        var dlqClock = new HookedReadingClock(manual);
        using DeadLetterQueue<string> deadLetters = Dlq(dlqClock);
        using AckQueue<string> queue = Create(manual, capacity: 1, maxDeliveries: 1, deadLetters);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));
        WriteResult during = default;
        dlqClock.OnNextReading(() => during = queue.TryEnqueue("b")); // out of the table, not yet in the dead letters, room not yet back

        manual.Advance(Visibility); // the expiry pass dead-letters "a"

        Assert.Equal((WriteOutcome.Rejected, TimeSpan.Zero), (during.Outcome, during.RetryAfter)); // before: InfiniteTimeSpan (no estimate)
        Assert.Equal(1, deadLetters.Count);
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue("b"));
    }

    [Fact]
    public void TryEnqueue_WhileTheConsumerDeadLettersTheOnlyMessage_RetryNow()
    {
        var manual = new ManualTimeProvider();
        var dlqClock = new HookedReadingClock(manual);
        using DeadLetterQueue<string> deadLetters = Dlq(dlqClock);
        using AckQueue<string> queue = Create(manual, capacity: 1, maxDeliveries: 0, deadLetters);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.Equal(Timeout.InfiniteTimeSpan, queue.TryEnqueue("b").RetryAfter); // only an ack frees room: no estimate
        WriteResult during = default;
        dlqClock.OnNextReading(() => during = queue.TryEnqueue("b"));

        Assert.True(queue.DeadLetter(delivery, "poison"));

        Assert.Equal((WriteOutcome.Rejected, TimeSpan.Zero), (during.Outcome, during.RetryAfter)); // before: InfiniteTimeSpan
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue("b"));
    }

    [Fact]
    public void TryEnqueue_WhileAnExpiryMovesAMessageBackDueAtOnce_RetryNow()
    {
        // Without MaxDeliveries an expired message returns to the ready queue, visible at once; a rejection during that
        // move answers "retry now". A guard (it passed before too: the move's clock reading comes after the message is in
        // the ready queue, whose own hint answers zero); the window before that reading is covered by the same count.
        var manual = new ManualTimeProvider();
        var clock = new HookedReadingClock(manual);
        using AckQueue<string> queue = Create(clock, capacity: 1, maxDeliveries: 0, deadLetters: null);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));
        WriteResult during = default;
        clock.OnNextReading(() => clock.OnNextReading(() => during = queue.TryEnqueue("b"))); // the pass's reading, then the move's

        manual.Advance(Visibility);

        Assert.Equal((WriteOutcome.Rejected, TimeSpan.Zero), (during.Outcome, during.RetryAfter));
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(2, again.DeliveryCount);
    }

    [Fact]
    public void TryEnqueue_AfterEveryMoveEnded_HintIsNoLongerRetryNow()
    {
        // "Retry now" lasts only while a move is under way: once it ended (here: the message is back in flight, no room
        // free), the hint is the plain one again, never a "retry now" left behind.
        var manual = new ManualTimeProvider();
        using DeadLetterQueue<string> deadLetters = Dlq(manual);
        using AckQueue<string> queue = Create(manual, capacity: 1, maxDeliveries: 2, deadLetters);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> first));
        Assert.True(queue.Nack(first)); // back due at once (a move counted while under way)
        Assert.True(queue.TryReceive(out _)); // its last delivery now
        manual.Advance(TimeSpan.FromSeconds(3));

        Assert.Equal(TimeSpan.FromSeconds(7), queue.TryEnqueue("b").RetryAfter);
        manual.Advance(TimeSpan.FromSeconds(7)); // its timeout dead-letters it: the expiry's move ended too
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue("b"));
        Assert.True(queue.TryReceive(out _));
        Assert.Equal(Timeout.InfiniteTimeSpan, queue.TryEnqueue("c").RetryAfter); // first delivery of 2: no estimate, not zero
    }
}
