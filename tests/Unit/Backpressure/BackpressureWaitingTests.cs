using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Waiting writes and reads of <see cref="BackpressureBuffer{T}"/>, synchronous and asynchronous. Every wait
/// that must end is bounded by a generous timeout; nothing asserts that anything is fast.
/// </summary>
public sealed class BackpressureWaitingTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static BackpressureBuffer<int> Create(int capacity, TimeProvider? time = null, bool singleWriter = false) =>
        new(new BackpressureBufferOptions<int>
        {
            Capacity = capacity,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = singleWriter,
            TimeProvider = time ?? TimeProvider.System,
        });

    private static BackpressureBuffer<int> Full(int capacity, TimeProvider? time = null)
    {
        BackpressureBuffer<int> buffer = Create(capacity, time);
        for (int i = 0; i < capacity; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
        }

        return buffer;
    }

    private static List<int> Drain(BackpressureBuffer<int> buffer)
    {
        var items = new List<int>();
        while (buffer.TryRead(out int item))
        {
            items.Add(item);
        }

        return items;
    }

    /// <summary>Gives a started wait every chance to park (no assertion depends on it having parked).</summary>
    private static Task Settle() => Task.Delay(50);

    [Fact]
    public async Task WaitToWriteAsync_ParkedBeforeAWrite_OneReadWakesBothAndTheWriteLands()
    {
        // A WaitToWriteAsync takes nothing when woken: the read's one signal must still reach the parked write
        // behind it. Before, it was spent on the probe, whose caller writes nothing here, and the write slept.
        using var buffer = Full(2);
        Task<bool> probe = buffer.WaitToWriteAsync().AsTask();
        Task<WriteResult> write = buffer.WriteAsync(2).AsTask();
        await Settle();

        Assert.True(buffer.TryRead(out _));

        Assert.True(await probe.WaitAsync(Generous));
        Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Generous));
        Assert.Equal([1, 2], Drain(buffer));
    }

    [Fact]
    public async Task WriteAsync_WaitOnFull_CompletesWhenReaderFreesRoom()
    {
        using var buffer = Full(2);
        ValueTask<WriteResult> pending = buffer.WriteAsync(2);
        await Settle();
        Assert.False(pending.IsCompleted);

        Assert.True(buffer.TryRead(out int first));

        Assert.Equal(WriteResult.Accepted, await pending.AsTask().WaitAsync(Generous));
        Assert.Equal(0, first);
        Assert.Equal([1, 2], Drain(buffer));
        Assert.Equal(new BackpressureStatistics(3, 3, 0, 0, 0, 0), buffer.GetStatistics());
    }

    [Fact]
    public async Task Write_Sync_WaitOnFull_CompletesWhenReaderFreesRoom()
    {
        using var buffer = Full(1);
        Task<WriteResult> pending = Task.Factory.StartNew(() => buffer.Write(1, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        await Settle();

        Assert.True(buffer.TryRead(out int first));

        Assert.Equal(WriteResult.Accepted, await pending.WaitAsync(Generous));
        Assert.Equal(0, first);
        Assert.Equal([1], Drain(buffer));
    }

    [Fact]
    public async Task WriteAsync_Cancelled_ThrowsAndLeavesNoTrace()
    {
        using var buffer = Full(2);
        BackpressureStatistics before = buffer.GetStatistics();
        using var cts = new CancellationTokenSource();
        ValueTask<WriteResult> pending = buffer.WriteAsync(99, cts.Token);
        await Settle();

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().WaitAsync(Generous));
        Assert.Equal(before, buffer.GetStatistics());
        Assert.Equal([0, 1], Drain(buffer));
        Assert.Equal(WriteResult.Accepted, await buffer.WriteAsync(5).AsTask().WaitAsync(Generous)); // still works
        Assert.Equal([5], Drain(buffer));
    }

    [Fact]
    public async Task WriteAsync_AlreadyCancelled_ThrowsWithoutWriting()
    {
        using var buffer = Create(2);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await buffer.WriteAsync(1, new CancellationToken(true)));
        Assert.Throws<OperationCanceledException>(() => buffer.Write(1, Timeout.InfiniteTimeSpan, new CancellationToken(true)));
        Assert.Equal(0, buffer.Count);
    }

    [Fact]
    public async Task Write_Sync_Cancelled_ThrowsAndLeavesNoTrace()
    {
        using var buffer = Full(2);
        BackpressureStatistics before = buffer.GetStatistics();
        using var cts = new CancellationTokenSource();
        Task<WriteResult> pending = Task.Factory.StartNew(() => buffer.Write(99, Timeout.InfiniteTimeSpan, cts.Token), TaskCreationOptions.LongRunning);
        await Settle();

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(Generous));
        Assert.Equal(before, buffer.GetStatistics());
        Assert.Equal([0, 1], Drain(buffer));
    }

    [Fact]
    public async Task WriteAsync_TimedOut_AnswersRejectedTimedOutAndLeavesNoTrace()
    {
        using var buffer = Full(2);

        WriteResult result = await buffer.WriteAsync(99, OverflowPolicy.Wait, TimeSpan.FromMilliseconds(50)).AsTask().WaitAsync(Generous);

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.TimedOut, result.Reason);
        Assert.Equal(new BackpressureStatistics(2, 0, 0, 0, 1, 2), buffer.GetStatistics());
        Assert.Equal([0, 1], Drain(buffer));
    }

    [Fact]
    public async Task WriteAsync_TimedOutOnManualClock_AnswersRejectedTimedOutWhenTheClockPasses()
    {
        var time = new ManualTimeProvider();
        using var buffer = Full(1, time);
        ValueTask<WriteResult> pending = buffer.WriteAsync(99, OverflowPolicy.Wait, TimeSpan.FromSeconds(10));
        await Settle();
        Assert.False(pending.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(10));

        WriteResult result = await pending.AsTask().WaitAsync(Generous);
        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.TimedOut, result.Reason);
        Assert.Equal([0], Drain(buffer));
        Assert.Equal(0, time.ActiveTimers); // the wait's timer was disposed
    }

    [Theory]
    [InlineData(0)]
    [InlineData(50)]
    public async Task Write_Sync_TimedOut_AnswersRejectedTimedOutAndLeavesNoTrace(int timeoutMs)
    {
        using var buffer = Full(2);

        WriteResult result = await Task.Run(() => buffer.Write(99, TimeSpan.FromMilliseconds(timeoutMs))).WaitAsync(Generous);

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.Equal(RejectReason.TimedOut, result.Reason);
        Assert.Equal(new BackpressureStatistics(2, 0, 0, 0, 1, 2), buffer.GetStatistics());
        Assert.Equal([0, 1], Drain(buffer));
    }

    [Fact]
    public async Task WriteAsync_SignalledAfterItsDeadline_PassesTheRoomToTheNextWriter()
    {
        // Writer A (deadline 10 s on a manual clock) and writer B (no deadline) park in that order. The clock
        // passes A's deadline without A's timer firing yet; then a read frees one slot and signals A, the oldest.
        // A answers TimedOut; the free slot must still reach B.
        var time = new ManualTimeProvider();
        using var buffer = Full(1, time);
        ValueTask<WriteResult> a = buffer.WriteAsync(1, OverflowPolicy.Wait, TimeSpan.FromSeconds(10));
        await Settle();
        ValueTask<WriteResult> b = buffer.WriteAsync(2);
        await Settle();
        time.Advance(TimeSpan.FromSeconds(10), fireTimers: false);

        Assert.True(buffer.TryRead(out int first));

        WriteResult resultA = await a.AsTask().WaitAsync(Generous);
        WriteResult resultB = await b.AsTask().WaitAsync(Generous);
        Assert.Equal(0, first);
        Assert.Equal(RejectReason.TimedOut, resultA.Reason);
        Assert.Equal(WriteResult.Accepted, resultB);
        Assert.Equal([2], Drain(buffer));
    }

    [Fact]
    public async Task ReadAsync_Empty_WaitsForWrite()
    {
        using var buffer = Create(4);
        ValueTask<int> pending = buffer.ReadAsync();
        await Settle();
        Assert.False(pending.IsCompleted);

        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(42));

        Assert.Equal(42, await pending.AsTask().WaitAsync(Generous));
        Assert.Equal(0, buffer.Count);
    }

    [Fact]
    public async Task TryRead_Sync_Empty_WaitsForWriteOrTimesOut()
    {
        using var buffer = Create(4);
        Assert.False(buffer.TryRead(out _, TimeSpan.FromMilliseconds(20)));

        Task<(bool, int)> pending = Task.Factory.StartNew(
            () => (buffer.TryRead(out int item, Generous), item), TaskCreationOptions.LongRunning);
        await Settle();
        buffer.TryWrite(7);

        Assert.Equal((true, 7), await pending.WaitAsync(Generous));
    }

    [Fact]
    public async Task ReadAsync_Cancelled_Throws()
    {
        using var buffer = Create(4);
        using var cts = new CancellationTokenSource();
        ValueTask<int> pending = buffer.ReadAsync(cts.Token);
        await Settle();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().WaitAsync(Generous));

        buffer.TryWrite(1);
        Assert.Equal(1, await buffer.ReadAsync().AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task WaitToReadAsync_CompletedAndDrained_ReturnsFalse()
    {
        using var buffer = Create(4);
        ValueTask<bool> parked = buffer.WaitToReadAsync();
        await Settle();
        buffer.TryWrite(1);
        Assert.True(await parked.AsTask().WaitAsync(Generous));
        buffer.Complete();

        Assert.True(await buffer.WaitToReadAsync().AsTask().WaitAsync(Generous)); // one item left
        Assert.Equal([1], Drain(buffer));
        Assert.False(await buffer.WaitToReadAsync().AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task WaitToReadAsync_ParkedWhenCompleted_ReturnsFalse()
    {
        using var buffer = Create(4);
        ValueTask<bool> parked = buffer.WaitToReadAsync();
        await Settle();

        buffer.Complete();

        Assert.False(await parked.AsTask().WaitAsync(Generous));
        await buffer.Completion.WaitAsync(Generous);
    }

    [Fact]
    public async Task WaitToReadAsync_CompletedWithError_ThrowsThatErrorOnceDrained()
    {
        using var buffer = Create(4);
        ValueTask<bool> parked = buffer.WaitToReadAsync();
        await Settle();
        var error = new TimeZoneNotFoundException("upstream");

        buffer.Complete(error);

        Assert.Same(error, await Assert.ThrowsAsync<TimeZoneNotFoundException>(() => parked.AsTask().WaitAsync(Generous)));
        Assert.Same(error, await Assert.ThrowsAsync<TimeZoneNotFoundException>(async () => await buffer.WaitToReadAsync()));

        using var withItem = Create(4);
        withItem.TryWrite(1);
        withItem.Complete(error);
        Assert.True(await withItem.WaitToReadAsync());
        Assert.Equal([1], Drain(withItem));
        Assert.Same(error, await Assert.ThrowsAsync<TimeZoneNotFoundException>(async () => await withItem.WaitToReadAsync()));
    }

    [Fact]
    public async Task ReadAllAsync_Completed_YieldsEverythingThenEnds()
    {
        using var buffer = Create(4);
        var reader = Task.Run(async () =>
        {
            var items = new List<int>();
            await foreach (int item in buffer.ReadAllAsync())
            {
                items.Add(item);
            }

            return items;
        });

        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(WriteResult.Accepted, await buffer.WriteAsync(i).AsTask().WaitAsync(Generous));
        }

        buffer.Complete();
        Assert.Equal(Enumerable.Range(0, 100), await reader.WaitAsync(Generous));
        await buffer.Completion.WaitAsync(Generous);
    }

    [Fact]
    public async Task Dispose_WhileWritersParked_WakesThemWithObjectDisposedAndLosesNothing()
    {
        var buffer = Full(2);
        ValueTask<WriteResult> asyncWriter = buffer.WriteAsync(10);
        Task<WriteResult> syncWriter = Task.Factory.StartNew(() => buffer.Write(11, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        ValueTask<bool> waitToWrite = buffer.WaitToWriteAsync();
        await Settle();

        buffer.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => asyncWriter.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => syncWriter.WaitAsync(Generous));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waitToWrite.AsTask().WaitAsync(Generous));
        Assert.Equal([0, 1], Drain(buffer));
        Assert.Equal(new BackpressureStatistics(2, 2, 0, 0, 0, 0), buffer.GetStatistics());
    }

    [Fact]
    public async Task Dispose_WhileReadersParked_WakesAsyncReadersWithObjectDisposed()
    {
        var buffer = Create(2);
        ValueTask<int> reader = buffer.ReadAsync();
        ValueTask<bool> waitToRead = buffer.WaitToReadAsync();
        Task<bool> syncReader = Task.Factory.StartNew(() => buffer.TryRead(out _, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        await Settle();

        buffer.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => reader.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waitToRead.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => syncReader.WaitAsync(Generous)); // the blocking read too (it answered false before)
        await Assert.ThrowsAsync<ObjectDisposedException>(() => buffer.Completion.WaitAsync(Generous));
    }

    [Fact]
    public async Task WaitToWriteAsync_FullUnderWait_WaitsForRoomThenTrue()
    {
        using var buffer = Full(1);
        ValueTask<bool> pending = buffer.WaitToWriteAsync();
        await Settle();
        Assert.False(pending.IsCompleted);

        Assert.True(buffer.TryRead(out _));

        Assert.True(await pending.AsTask().WaitAsync(Generous));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
    }

    [Fact]
    public async Task WaitToWriteAsync_RoomOrDroppingPolicy_TrueAtOnceAndFalseAfterCompletion()
    {
        using var withRoom = Create(2);
        Assert.True(await withRoom.WaitToWriteAsync());

        using var dropping = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.DropIncoming });
        dropping.TryWrite(0);
        Assert.True(await dropping.WaitToWriteAsync()); // a write never waits under DropIncoming

        using var full = Full(1);
        ValueTask<bool> parked = full.WaitToWriteAsync();
        await Settle();
        full.Complete();
        Assert.False(await parked.AsTask().WaitAsync(Generous));
        Assert.False(await full.WaitToWriteAsync());
    }

    [Fact]
    public async Task ReadAsync_CompletedAndEmpty_ThrowsInvalidOperation()
    {
        using var buffer = Create(2);
        ValueTask<int> parked = buffer.ReadAsync();
        await Settle();

        buffer.Complete();

        await Assert.ThrowsAsync<InvalidOperationException>(() => parked.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await buffer.ReadAsync());
    }

    [Fact]
    public async Task Complete_WhileWritersParked_WakesThemWithCompletedAndKeepsTheirItemsOut()
    {
        using var buffer = Full(1);
        ValueTask<WriteResult> asyncWriter = buffer.WriteAsync(10);
        Task<WriteResult> syncWriter = Task.Factory.StartNew(() => buffer.Write(11, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        await Settle();

        buffer.Complete();

        Assert.Equal(WriteResult.Completed, await asyncWriter.AsTask().WaitAsync(Generous));
        Assert.Equal(WriteResult.Completed, await syncWriter.WaitAsync(Generous));
        Assert.Equal([0], Drain(buffer));
        await buffer.Completion.WaitAsync(Generous);
        Assert.Equal(new BackpressureStatistics(1, 1, 0, 0, 0, 0), buffer.GetStatistics());
    }

    [Fact]
    public async Task ParkedReader_WokenBySingleWrite_ManyRoundsWithoutLostWakeup()
    {
        using var buffer = Create(1);
        for (int round = 0; round < 2000; round++)
        {
            ValueTask<int> reader = buffer.ReadAsync();
            int item = round;
            Task writer = Task.Run(() => Assert.Equal(WriteResult.Accepted, buffer.TryWrite(item)));

            Assert.Equal(round, await reader.AsTask().WaitAsync(Generous));
            await writer.WaitAsync(Generous);
        }
    }

    [Fact]
    public async Task ParkedSyncReader_WokenBySingleWrite_ManyRoundsWithoutLostWakeup()
    {
        using var buffer = Create(1, singleWriter: true);
        const int Rounds = 2000;
        Task<int> reader = Task.Factory.StartNew(
            () =>
            {
                int received = 0;
                for (int round = 0; round < Rounds; round++)
                {
                    Assert.True(buffer.TryRead(out int item, Generous), $"round {round}: no item within the timeout");
                    Assert.Equal(round, item);
                    received++;
                }

                return received;
            },
            TaskCreationOptions.LongRunning);

        for (int round = 0; round < Rounds; round++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.Write(round, Generous)); // capacity 1: each write waits for the read
        }

        Assert.Equal(Rounds, await reader.WaitAsync(Generous));
    }

    [Fact]
    public async Task ParkedWriter_WokenBySingleRead_ManyRoundsWithoutLostWakeup()
    {
        using var buffer = Create(1);
        buffer.TryWrite(-1);
        for (int round = 0; round < 2000; round++)
        {
            ValueTask<WriteResult> writer = buffer.WriteAsync(round);
            Task<int> reader = Task.Run(() => buffer.TryRead(out int item) ? item : int.MinValue);

            Assert.Equal(round - 1, await reader.WaitAsync(Generous));
            Assert.Equal(WriteResult.Accepted, await writer.AsTask().WaitAsync(Generous));
        }
    }
}
