using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Delays at the documented maximum (<see cref="DelayQueue{T}.MaxDelay"/>, the longest a <see cref="TimeProvider"/>
/// timer takes) on a clock whose frequency is no divisor of a tick's (review, 2026-11-23): the due time is rounded up
/// to whole timestamps and the wake-up's remaining time is rounded up again on the way back, so it can pass the
/// timer's limit by under one timestamp. Checked sound: the system timer takes whole milliseconds (truncating), so
/// an accepted delay parks the reader and arms the visibility timeout instead of throwing into them.
/// </summary>
public sealed class WakeupRangeTests
{
    [Fact]
    public async Task DequeueAsync_ItemAtMaxDelayOnAnOddFrequencyClock_ParksInsteadOfThrowing()
    {
        var clock = new OddFrequencyClock();
        using var queue = new DelayQueue<int>(2, new DelayQueueOptions<int> { TimeProvider = clock });
        Assert.True(queue.TryEnqueue(1, DelayQueue<int>.MaxDelay).IsAccepted);

        using var cts = new CancellationTokenSource();
        ValueTask<int> read = queue.DequeueAsync(cts.Token); // parks, its wake-up a real timer of the provider (~49.7 days)
        Assert.False(read.IsCompleted);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void TryReceive_VisibilityTimeoutAtMaxDelayOnAnOddFrequencyClock_DeliversAndArms()
    {
        var clock = new OddFrequencyClock();
        using var queue = new AckQueue<int>(new AckQueueOptions<int> { Capacity = 2, VisibilityTimeout = DelayQueue<int>.MaxDelay, TimeProvider = clock });
        Assert.True(queue.TryEnqueue(1).IsAccepted);
        Assert.True(queue.TryEnqueue(2).IsAccepted);
        Assert.True(queue.TryReceive(out Delivery<int> first));
        Assert.True(queue.Ack(first)); // the armed time stays the first deadline; the next receive's head is later

        clock.Now += 1; // a later receive: the head's remaining time is computed from timestamps, not taken as given
        Assert.True(queue.TryReceive(out Delivery<int> second));
        Assert.Equal(0, queue.FailedCallbackCount); // a timer that refused the time would be counted and reported here
        Assert.True(queue.Ack(second));
    }

    /// <summary>A clock of 32,768 Hz (no divisor of 10^7) that moves only by hand; its timers are the system's (which check their range).</summary>
    private sealed class OddFrequencyClock : TimeProvider
    {
        public long Now { get; set; } = 1_000_000;

        public override long TimestampFrequency => 32_768;

        public override long GetTimestamp() => Now;
    }
}
