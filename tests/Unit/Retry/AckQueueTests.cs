using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary><see cref="AckQueue{T}"/>: ack, nack, visibility-timeout redelivery, stale acks, dead-lettering, bounds.</summary>
public sealed class AckQueueTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(10);

    internal static AckQueue<string> Create(ManualTimeProvider time, int capacity = 8, int maxDeliveries = 0, DeadLetterQueue<string>? deadLetters = null, OverflowPolicy mode = OverflowPolicy.Reject) =>
        new(new AckQueueOptions<string>
        {
            Capacity = capacity,
            VisibilityTimeout = Visibility,
            TimeProvider = time,
            MaxDeliveries = maxDeliveries,
            DeadLetters = deadLetters,
            FullMode = mode,
            Name = "orders",
        });

    private static DeadLetterQueue<string> Dlq(ManualTimeProvider time) => new(new DeadLetterQueueOptions<string> { Capacity = 8, TimeProvider = time });

    [Fact]
    public void Ack_RemovesTheMessage()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        queue.TryEnqueue("a");

        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.Equal(("a", 1), (delivery.Message, delivery.DeliveryCount));
        Assert.Equal(1, queue.InFlightCount);
        Assert.True(queue.Ack(delivery));

        Assert.Equal((0, 0), (queue.Count, queue.InFlightCount));
        time.Advance(Visibility * 2);
        Assert.False(queue.TryReceive(out _));
    }

    [Fact]
    public void Receive_InFlight_IsInvisibleToOthers()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out _));

        time.Advance(Visibility - TimeSpan.FromTicks(1));

        Assert.False(queue.TryReceive(out _));
    }

    [Fact]
    public void VisibilityTimeout_Unacked_IsRedeliveredWithCountRaised()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> first));

        time.Advance(Visibility);

        Assert.True(queue.TryReceive(out Delivery<string> second));
        Assert.Equal(("a", 2), (second.Message, second.DeliveryCount));
        Assert.Equal(1, queue.GetStatistics().Expired);
        Assert.False(queue.Ack(first)); // stale: the message was redelivered
        Assert.True(queue.Ack(second));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void VisibilityTimeout_SeveralInFlight_EachExpiresAtItsOwnDeadline()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b");
        Assert.True(queue.TryReceive(out Delivery<string> a));
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.True(queue.TryReceive(out Delivery<string> b));
        Assert.True(queue.Ack(a)); // the head of the in-flight FIFO goes early

        time.Advance(TimeSpan.FromSeconds(6)); // a's old deadline: nothing to redeliver
        Assert.False(queue.TryReceive(out _));
        time.Advance(TimeSpan.FromSeconds(4)); // b's deadline

        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(("b", 2), (again.Message, again.DeliveryCount));
        Assert.False(queue.Ack(b));
    }

    [Fact]
    public void Nack_WithDelay_ReappearsOnlyAfterIt()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        queue.TryEnqueue("a");
        queue.TryReceive(out Delivery<string> delivery);

        Assert.True(queue.Nack(delivery, TimeSpan.FromSeconds(2)));
        Assert.False(queue.Nack(delivery)); // already ended

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(queue.TryReceive(out _));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryReceive(out Delivery<string> again));
        Assert.Equal(2, again.DeliveryCount);
    }

    [Fact]
    public void Ack_DefaultOrForeignDelivery_IsStale()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        queue.TryEnqueue("a");
        queue.TryReceive(out Delivery<string> delivery);

        Assert.False(queue.Ack(default));
        Assert.True(queue.Ack(delivery));
        Assert.False(queue.Ack(delivery));
    }

    [Fact]
    public void MaxDeliveries_NackedOrExpiredPastIt_GoesToDeadLettersWithMetadata()
    {
        var time = new ManualTimeProvider();
        using DeadLetterQueue<string> dlq = Dlq(time);
        using AckQueue<string> queue = Create(time, maxDeliveries: 2, deadLetters: dlq);
        queue.TryEnqueue("a");
        DateTimeOffset start = time.GetUtcNow();

        queue.TryReceive(out Delivery<string> first);
        queue.Nack(first, TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        queue.TryReceive(out Delivery<string> second);
        var failure = new TimeoutException("slow");
        Assert.True(queue.Nack(second, exception: failure));

        Assert.False(queue.TryReceive(out _));
        DeadLetter<string> letter = Assert.Single(dlq.Snapshot());
        Assert.Equal(("a", "orders", "MaxDeliveries", 2), (letter.Message, letter.SourceName, letter.Reason, letter.AttemptCount));
        Assert.Same(failure, letter.Exception);
        Assert.Equal(start, letter.FirstAttempt);
        Assert.Equal(start.AddSeconds(1), letter.LastAttempt);
        Assert.Equal(0, queue.Count);

        queue.TryEnqueue("b");
        queue.TryReceive(out _);
        time.Advance(Visibility);
        queue.TryReceive(out _);
        time.Advance(Visibility);
        Assert.Equal(2, dlq.Count);
        Assert.Equal("VisibilityTimeout after MaxDeliveries", dlq.Snapshot()[1].Reason);
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal(stats.Enqueued, stats.Acked + stats.DeadLettered + stats.Count);
    }

    [Fact]
    public async Task ReceiveAsync_MessageArrives_Completes()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        ValueTask<Delivery<string>> pending = queue.ReceiveAsync();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);

        queue.TryEnqueue("a", TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));

        Delivery<string> delivery = await pending.AsTask().WaitAsync(Generous);
        Assert.Equal("a", delivery.Message);
        Assert.True(queue.Ack(delivery));
    }

    [Fact]
    public async Task ReceiveAsync_RedeliveryAfterTimeout_WakesAWaitingReceiver()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        queue.TryEnqueue("a");
        queue.TryReceive(out _);
        ValueTask<Delivery<string>> pending = queue.ReceiveAsync();
        await Task.Delay(50);

        time.Advance(Visibility);

        Delivery<string> again = await pending.AsTask().WaitAsync(Generous);
        Assert.Equal(2, again.DeliveryCount);
    }

    [Fact]
    public async Task ReceiveAsync_Cancelled_LeavesNoTrace()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time);
        using var cts = new CancellationTokenSource();
        ValueTask<Delivery<string>> pending = queue.ReceiveAsync(cts.Token);
        await Task.Delay(50);

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().WaitAsync(Generous));
        queue.TryEnqueue("a");
        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.Equal(("a", 1), (delivery.Message, delivery.DeliveryCount));
        Assert.Equal(1, queue.InFlightCount);
    }

    [Fact]
    public void TryEnqueue_Full_RejectsOrDropsAndCountsInFlight()
    {
        var time = new ManualTimeProvider();
        using AckQueue<string> queue = Create(time, capacity: 2);
        queue.TryEnqueue("a");
        queue.TryEnqueue("b");
        queue.TryReceive(out Delivery<string> a); // in flight still counts

        Assert.Equal(WriteOutcome.Rejected, queue.TryEnqueue("c").Outcome);
        queue.Ack(a);
        Assert.Equal(WriteResult.Accepted, queue.TryEnqueue("c"));

        using AckQueue<string> dropping = Create(time, capacity: 1, mode: OverflowPolicy.DropIncoming);
        dropping.TryEnqueue("x");
        Assert.Equal(WriteResult.DroppedIncoming, dropping.TryEnqueue("y"));
        Assert.Equal(1, dropping.GetStatistics().DroppedIncoming);
    }

    [Fact]
    public async Task Dispose_EmptyQueueWithWaitingReceiver_ReceiverSeesObjectDisposed()
    {
        // Before: the inner delay queue's "completed and empty" InvalidOperationException, for a queue that has no
        // Complete at all.
        var time = new ManualTimeProvider();
        var queue = Create(time);
        ValueTask<Delivery<string>> pending = queue.ReceiveAsync();
        await Task.Delay(50);

        queue.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.ReceiveAsync().AsTask().WaitAsync(Generous));
    }

    [Fact]
    public void Dispose_QueuedMessages_StayReceivableAndAckable()
    {
        var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 2 });
        queue.TryEnqueue("a");
        queue.Dispose();

        Assert.True(queue.TryReceive(out Delivery<string> delivery));
        Assert.True(queue.Ack(delivery));
    }

    [Fact]
    public void Constructor_And_Calls_BadArguments_Throw()
    {
        var time = new ManualTimeProvider();
        Assert.Throws<ArgumentNullException>(() => new AckQueue<string>(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AckQueue<string>(new AckQueueOptions<string> { Capacity = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, VisibilityTimeout = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, FullMode = OverflowPolicy.DropOldest }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, MaxDeliveries = -1 }));
        Assert.Throws<ArgumentException>(() => new AckQueue<string>(new AckQueueOptions<string> { Capacity = 1, MaxDeliveries = 3 }));
        using AckQueue<string> queue = Create(time);
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.TryEnqueue("a", TimeSpan.FromTicks(-1)));
        queue.TryEnqueue("a");
        queue.TryReceive(out Delivery<string> delivery);
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Nack(delivery, TimeSpan.FromTicks(-1)));
        Assert.Throws<InvalidOperationException>(() => queue.DeadLetter(delivery, "no dlq"));
        Assert.True(queue.Ack(delivery)); // still usable, the delivery still valid
    }
}
