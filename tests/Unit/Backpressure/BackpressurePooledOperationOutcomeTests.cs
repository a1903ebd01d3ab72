using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Review of session 12 (s12-rev): how a parked pooled operation ends, compared with the async methods it replaced and
/// with the BCL's bounded channel: a cancelled wait cancels the task with the caller's token, a disposal faults it with
/// <see cref="ObjectDisposedException"/>, a completion with an error hands that error over (the channel: inside
/// <see cref="ChannelClosedException"/> for a read, as is for <c>WaitToWriteAsync</c>), a completion by cancellation
/// cancels. Each case is taken on the parked path (the call has not completed when the ending happens).
/// </summary>
public sealed class BackpressurePooledOperationOutcomeTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    private static BackpressureBuffer<int> Full()
    {
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        return buffer;
    }

    private static BackpressureBuffer<int> Empty() =>
        new(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });

    [Fact]
    public async Task ParkedWriteAsync_Cancelled_IsCanceledWithTheCallersToken()
    {
        using BackpressureBuffer<int> buffer = Full();
        using var cts = new CancellationTokenSource();
        ValueTask<WriteResult> write = buffer.WriteAsync(1, OverflowPolicy.Wait, TimeSpan.FromSeconds(30), cts.Token);
        Assert.False(write.IsCompleted);
        cts.Cancel();
        Task<WriteResult> task = write.AsTask();
        OperationCanceledException error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(Generous));
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.True(task.IsCanceled);
        Assert.Equal(1, buffer.Count); // the cancelled write left no trace
    }

    [Fact]
    public async Task ParkedReadAsync_Disposed_FaultsWithObjectDisposed()
    {
        BackpressureBuffer<int> buffer = Empty();
        ValueTask<int> read = buffer.ReadAsync();
        Assert.False(read.IsCompleted);
        buffer.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => read.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task ParkedWriteAsync_Disposed_FaultsWithObjectDisposed()
    {
        BackpressureBuffer<int> buffer = Full();
        ValueTask<WriteResult> write = buffer.WriteAsync(1);
        Assert.False(write.IsCompleted);
        buffer.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => write.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task ParkedReadAsync_CompletedWithAnError_ThrowsIt()
    {
        using BackpressureBuffer<int> buffer = Empty();
        ValueTask<int> read = buffer.ReadAsync();
        Assert.False(read.IsCompleted);
        var failure = new InvalidTimeZoneException("producer failed");
        buffer.Complete(failure);
        Exception thrown = await Assert.ThrowsAnyAsync<Exception>(() => read.AsTask().WaitAsync(Generous));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task ReadAsync_AlreadyCompletedWithAnErrorAndDrained_ThrowsThatError()
    {
        // Not parked: the wait answers at once (faulted with the completion error) and the operation reads that answer
        // (session 22, a mutation survivor: the buffer's own read must not take the channel's "closed" reading of it).
        using BackpressureBuffer<int> buffer = Empty();
        Assert.True(buffer.TryWrite(7).IsAccepted);
        var failure = new InvalidTimeZoneException("producer failed");
        buffer.Complete(failure);
        Assert.Equal(7, await buffer.ReadAsync().AsTask().WaitAsync(Generous)); // the item left is read first
        for (int i = 0; i < 2; i++)
        {
            Exception thrown = await Assert.ThrowsAnyAsync<Exception>(() => buffer.ReadAsync().AsTask().WaitAsync(Generous));
            Assert.Same(failure, thrown);
        }
    }

    [Fact]
    public async Task ReadAsync_AlreadyCompletedWithoutAnErrorAndDrained_ThrowsInvalidOperation()
    {
        using BackpressureBuffer<int> buffer = Empty();
        buffer.Complete();
        InvalidOperationException thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => buffer.ReadAsync().AsTask().WaitAsync(Generous));
        Assert.Null(thrown.InnerException);
    }

    [Fact]
    public async Task ParkedReadAsync_CompletedWithoutAnError_ThrowsInvalidOperation()
    {
        using BackpressureBuffer<int> buffer = Empty();
        ValueTask<int> read = buffer.ReadAsync();
        Assert.False(read.IsCompleted);
        buffer.Complete();
        await Assert.ThrowsAsync<InvalidOperationException>(() => read.AsTask().WaitAsync(Generous));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ParkedChannelReadAsync_Completed_ThrowsChannelClosedLikeTheBcl(bool withError)
    {
        var failure = new InvalidTimeZoneException("producer failed");
        foreach (Channel<int> channel in new[]
        {
            LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1 }),
            Channel.CreateBounded<int>(1),
        })
        {
            ValueTask<int> read = channel.Reader.ReadAsync();
            Assert.False(read.IsCompleted);
            channel.Writer.Complete(withError ? failure : null);
            ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(() => read.AsTask().WaitAsync(Generous));
            Assert.Same(withError ? failure : null, closed.InnerException);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ParkedChannelWaitToWriteAsync_Completed_AnswersLikeTheBcl(bool withError)
    {
        var failure = new InvalidTimeZoneException("consumer failed");
        foreach (Channel<int> channel in new[]
        {
            LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1 }),
            Channel.CreateBounded<int>(1),
        })
        {
            Assert.True(channel.Writer.TryWrite(0));
            ValueTask<bool> wait = channel.Writer.WaitToWriteAsync();
            Assert.False(wait.IsCompleted);
            channel.Writer.Complete(withError ? failure : null);
            if (withError)
            {
                Exception thrown = await Assert.ThrowsAnyAsync<Exception>(() => wait.AsTask().WaitAsync(Generous));
                Assert.Same(failure, thrown);
            }
            else
            {
                Assert.False(await wait.AsTask().WaitAsync(Generous));
            }
        }
    }

    [Fact]
    public async Task ParkedChannelWaitToWriteAsync_Cancelled_IsCanceledWithTheToken()
    {
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1 });
        Assert.True(channel.Writer.TryWrite(0));
        using var cts = new CancellationTokenSource();
        ValueTask<bool> wait = channel.Writer.WaitToWriteAsync(cts.Token);
        Assert.False(wait.IsCompleted);
        cts.Cancel();
        Task<bool> task = wait.AsTask();
        OperationCanceledException error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(Generous));
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.True(task.IsCanceled);
    }
}
