using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Completion and disposal while threads are blocked in the synchronous calls (<c>Write</c>, <c>TryRead(out, timeout)</c>):
/// a clear answer, nothing lost. Every wait is bounded by a generous timeout; nothing asserts that anything is fast.
/// </summary>
public sealed class BackpressureSyncCompletionTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static BackpressureBuffer<int> Full(int capacity, bool singleWriter, bool singleReader)
    {
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = capacity, FullMode = OverflowPolicy.Wait, SingleWriter = singleWriter, SingleReader = singleReader,
        });
        for (int i = 0; i < capacity; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
        }

        return buffer;
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task Write_Sync_BlockedThenCompleted_AnswersCompletedAndTheBufferDrains(bool singleWriter, bool singleReader)
    {
        using var buffer = Full(2, singleWriter, singleReader);
        Task<WriteResult> write = Task.Run(() => buffer.Write(9, Timeout.InfiniteTimeSpan));
        await Task.Delay(50);

        buffer.Complete();

        Assert.Equal(WriteResult.Completed, await write.WaitAsync(Generous));
        Assert.True(buffer.TryRead(out int a));
        Assert.True(buffer.TryRead(out int b));
        Assert.False(buffer.TryRead(out _));
        Assert.Equal((0, 1), (a, b));
        await buffer.Completion.WaitAsync(Generous);
        Assert.Equal(new BackpressureStatistics(2, 2, 0, 0, 0, 0), buffer.GetStatistics());
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task Write_Sync_BlockedThenDisposed_ThrowsObjectDisposedAndItemsStayReadable(bool singleWriter, bool singleReader)
    {
        var buffer = Full(2, singleWriter, singleReader);
        Task<WriteResult> write = Task.Run(() => buffer.Write(9, TimeSpan.FromMinutes(5)));
        await Task.Delay(50);

        buffer.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => write.WaitAsync(Generous));
        Assert.True(buffer.TryRead(out int a));
        Assert.True(buffer.TryRead(out int b));
        Assert.False(buffer.TryRead(out _));
        Assert.Equal((0, 1), (a, b));
        Assert.Equal(new BackpressureStatistics(2, 2, 0, 0, 0, 0), buffer.GetStatistics());
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task TryRead_Sync_BlockedThenCompletedOrDisposed_AnswersFalseOrThrowsObjectDisposed(bool singleWriter, bool dispose)
    {
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2, SingleWriter = singleWriter });
        Task<bool> read = Task.Run(() => buffer.TryRead(out _, TimeSpan.FromMinutes(5)));
        await Task.Delay(50);

        if (dispose)
        {
            buffer.Dispose();
            await Assert.ThrowsAsync<ObjectDisposedException>(() => read.WaitAsync(Generous)); // as ReadAsync and the blocking Write
        }
        else
        {
            buffer.Complete();
            Assert.False(await read.WaitAsync(Generous));
        }

        Assert.True(buffer.IsCompleted);
        buffer.Dispose();
    }

    [Fact]
    public void TryRead_Sync_DisposedWithItemsLeft_ReturnsThemThenThrowsObjectDisposed()
    {
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2 });
        buffer.TryWrite(7);
        buffer.Dispose();

        Assert.True(buffer.TryRead(out int item, TimeSpan.FromSeconds(1)));
        Assert.Equal(7, item);
        Assert.Throws<ObjectDisposedException>(() => buffer.TryRead(out _, TimeSpan.FromSeconds(1)));
        Assert.False(buffer.TryRead(out _)); // the non-blocking Try stays a Try (as ChannelReader.TryRead)
    }
}
