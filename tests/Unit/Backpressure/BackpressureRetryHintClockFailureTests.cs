using System.Threading.Channels;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The retry hint of a rejected write (<see cref="WriteResult.RetryAfter"/>, Little's law) reads the user's
/// <see cref="TimeProvider"/>. When that reading throws, the write's outcome is already decided (rejected: the item stays
/// with the caller), so it answers <see cref="WriteOutcome.Rejected"/> with no estimate (<see cref="Timeout.InfiniteTimeSpan"/>),
/// and the failure is counted (<see cref="BackpressureBuffer{T}.ClockFailureCount"/>) and reported
/// (<see cref="BackpressureBuffer{T}.ClockFailed"/>). Before (session 10), the write threw the clock's exception: its caller
/// could not tell the rejection from a failure, and the channel's <c>TryWrite</c> (which never throws for a full channel)
/// threw. A waiting writer's attempts compute no hint at all (they discard it): before, every spin and recheck read the
/// clock for nothing, and a clock that threw there faulted the waiting write.
/// </summary>
public sealed class BackpressureRetryHintClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TryWrite_FullUnderRejectAndTheHintsClockThrows_AnswersRejectedWithNoHintAndReportsIt(bool singleWriter)
    {
        var clock = new HintFailingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Reject,
            SingleWriter = singleWriter,
            TimeProvider = clock,
        });
        var reported = new List<(Exception Error, int Thread)>();
        buffer.ClockFailed += (sender, error) =>
        {
            Assert.Same(buffer, sender);
            reported.Add((error, Environment.CurrentManagedThreadId));
        };
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));

        clock.Fail = true;
        WriteResult result = buffer.TryWrite(2); // before: threw InvalidOperationException("clock failed")

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.Full, result.Reason);
        Assert.Equal(Timeout.InfiniteTimeSpan, result.RetryAfter); // no estimate
        Assert.Equal(1, buffer.ClockFailureCount);
        (Exception error, int thread) = Assert.Single(reported);
        Assert.Equal("clock failed", error.Message);
        Assert.Equal(Environment.CurrentManagedThreadId, thread); // on the writer's thread, before its write returned
        Assert.Equal(1, buffer.GetStatistics().Rejected);
        Assert.Equal(0, buffer.CallbackFailures);

        // Still usable, the item stayed with the caller, and a working clock gives hints again.
        clock.Fail = false;
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(2));
        Assert.Equal(WriteOutcome.Rejected, buffer.TryWrite(3).Outcome);
        Assert.Equal(1, buffer.ClockFailureCount);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(2, item);
        Assert.False(buffer.TryRead(out _));
    }

    [Fact]
    public void TryWrite_ClockFailedHandlerThrows_TheWriteStillAnswersRejected()
    {
        var clock = new HintFailingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Reject, TimeProvider = clock });
        buffer.ClockFailed += (_, _) => throw new InvalidOperationException("handler failed");
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));

        clock.Fail = true;
        Assert.Equal(WriteOutcome.Rejected, buffer.TryWrite(2, OverflowPolicy.Reject).Outcome);
        Assert.Equal(1, buffer.ClockFailureCount); // counted once; the handler's own exception is dropped
        Assert.Equal(0, buffer.CallbackFailures);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task WriteAsync_TimedOutAndTheHintsClockThrows_AnswersRejectedTimedOutWithNoHint(bool singleWriter)
    {
        var manual = new ManualTimeProvider();
        var clock = new HintFailingClock(manual);
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = singleWriter,
            TimeProvider = clock,
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        ValueTask<WriteResult> timed = buffer.WriteAsync(2, OverflowPolicy.Wait, TimeSpan.FromSeconds(1));
        Assert.False(timed.IsCompleted);
        clock.Fail = true; // after it parked: only the timed-out answer's hint meets the failure

        manual.Advance(TimeSpan.FromSeconds(2)); // the deadline passes: the write answers TimedOut, whose hint reads the clock
        WriteResult result = await timed.AsTask().WaitAsync(Generous); // before: faulted with InvalidOperationException("clock failed")

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.TimedOut, result.Reason);
        Assert.Equal(Timeout.InfiniteTimeSpan, result.RetryAfter);
        Assert.Equal(1, buffer.ClockFailureCount);
        Assert.Equal(1, buffer.GetStatistics().Rejected);
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.False(buffer.TryRead(out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Write_WaitingWriterWhoseClockWouldFailTheHint_ReadsNoHintAndLands(bool blocking)
    {
        // A waiting writer's attempts (the first one, its spins, its recheck after linking) discard a rejection and wait on:
        // no hint is computed, so the clock is not read for one. Before, every such attempt computed it (on any provider but
        // the system one), and a clock that threw there faulted the waiting write at once.
        var clock = new HintFailingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait, TimeProvider = clock });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        clock.Fail = true;

        Task<WriteResult> write = blocking
            ? Task.Factory.StartNew(() => buffer.Write(2, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning)
            : buffer.WriteAsync(2).AsTask();
        Assert.True(SpinWait.SpinUntil(() => buffer.ReadsAskWriters || write.IsCompleted, Generous), "the writer never parked");
        Assert.False(write.IsCompleted, write.IsFaulted ? write.Exception!.InnerException!.Message : "completed");

        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Generous));
        Assert.Equal(0, buffer.ClockFailureCount); // no hint was ever computed
        Assert.Equal(0, buffer.GetStatistics().Rejected);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(2, item);
    }

    [Fact]
    public async Task Channel_FullUnderRejectAndTheHintsClockThrows_TryWriteFalseAndWriteAsyncFullError()
    {
        // The channel adapter: TryWrite answers false for a full channel (never throws), and WriteAsync fails with the
        // channel's "full under Reject" error. Before, both threw the clock's exception.
        var clock = new HintFailingClock(new ManualTimeProvider());
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, FullMode = OverflowPolicy.Reject, TimeProvider = clock });
        Assert.True(channel.Writer.TryWrite(1));
        clock.Fail = true;

        Assert.False(channel.Writer.TryWrite(2));
        var full = await Assert.ThrowsAsync<InvalidOperationException>(() => channel.Writer.WriteAsync(3).AsTask().WaitAsync(Generous));
        Assert.Contains("FullMode is Reject", full.Message);

        Assert.True(channel.Reader.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.False(channel.Reader.TryRead(out _));
    }
}
