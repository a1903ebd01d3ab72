using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Boundary checks of the blocking and waiting calls, from the session 19 mutation run of
/// <c>BackpressureBuffer.Waiting.cs</c>. Two were real gaps (each mutant planted by hand, the test failing on it): the
/// cancelled-token check of the timed <c>TryRead</c> when an item is there, and a blocking <c>TryRead</c> cancelled while
/// parked (without the park's registration of the token it never returned). The disposed checks of the timed
/// <c>Write</c> and of <c>WriteAsync</c> with a policy, and <c>WaitToWriteAsync</c> on a disposed buffer, pin the contract;
/// their early checks are equivalent mutants (the write's later steps throw the same exception).
/// </summary>
public sealed class BackpressureWaitingBoundaryTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static BackpressureBuffer<int> Buffer(int capacity = 2) =>
        new(new BackpressureBufferOptions<int> { Capacity = capacity, FullMode = OverflowPolicy.Wait });

    [Fact]
    public void TimedWrite_DisposedBuffer_ThrowsObjectDisposed()
    {
        var buffer = Buffer();
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.Write(1, OverflowPolicy.Wait, TimeSpan.FromSeconds(1)));
        Assert.Throws<ObjectDisposedException>(() => buffer.Write(1, OverflowPolicy.Reject, TimeSpan.Zero));
    }

    [Fact]
    public void WriteAsyncWithPolicy_DisposedBuffer_ThrowsObjectDisposed()
    {
        var buffer = Buffer();
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.WriteAsync(1, OverflowPolicy.Reject, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void TimedTryRead_TokenAlreadyCancelled_ThrowsEvenWithAnItemThere_AndTakesNothing()
    {
        using var buffer = Buffer();
        Assert.True(buffer.TryWrite(7).IsAccepted);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.Throws<OperationCanceledException>(() => buffer.TryRead(out _, TimeSpan.FromSeconds(1), cancelled.Token));

        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(7, item);
    }

    [Fact]
    public void BlockingTryRead_CancelledWhileParked_ThrowsAndTakesNothing()
    {
        using var buffer = Buffer();
        using var cts = new CancellationTokenSource();
        var reading = Task.Factory.StartNew(
            () => buffer.TryRead(out _, Timeout.InfiniteTimeSpan, cts.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Thread.Sleep(100); // let it park (cancelled before, it throws the same: the park's registration runs at once)

        cts.Cancel();
        Assert.True(((IAsyncResult)reading).AsyncWaitHandle.WaitOne(Generous), "the cancelled read never returned");
        var error = Assert.ThrowsAny<OperationCanceledException>(() => reading.GetAwaiter().GetResult());
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.True(buffer.TryWrite(3).IsAccepted);
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(3, item);
    }

    [Fact]
    public async Task WaitToWriteAsync_DisposedBuffer_FaultsWithObjectDisposed()
    {
        var buffer = Buffer();
        buffer.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await buffer.WaitToWriteAsync());
    }
}
