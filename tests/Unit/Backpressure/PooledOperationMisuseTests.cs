// These tests misuse value tasks on purpose (a read before completion, a second read).
#pragma warning disable xUnit1031
#pragma warning disable CA2012
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The library's own asynchronous APIs return value tasks backed by pooled operations (<c>PooledOperation</c>). Unlike the
/// rate limiter's queued leases (a drop-in for the BCL's Task-backed ones: their premature read blocks, see
/// <c>RateLimiterPooledLeaseTests</c>), these answer a read before completion with <see cref="InvalidOperationException"/>,
/// as the BCL's channels' pooled value tasks do, and the misuse must leave the operation intact: the same value task,
/// awaited afterwards, still gets its result, and a stale second read never touches the operation's next user.
/// </summary>
public sealed class PooledOperationMisuseTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task ParkedReadAsync_ReadBeforeCompletion_ThrowsAndTheAwaitStillGetsTheItem()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
        ValueTask<int> read = buffer.ReadAsync();
        Assert.False(read.IsCompleted);
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult()); // the misuse
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(7));
        Assert.Equal(7, await read.AsTask().WaitAsync(Generous)); // the operation was left alone
    }

    [Fact]
    public async Task ParkedWriteAsync_SecondReadAfterReuse_ThrowsForTheMisuserOnly()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        ValueTask<WriteResult> first = buffer.WriteAsync(1);
        Assert.False(first.IsCompleted);
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(0, item);
        Assert.True(SpinWait.SpinUntil(() => first.IsCompleted, Generous));
        Assert.Equal(WriteResult.Accepted, first.Result); // the one allowed read: the operation goes back to the pool

        ValueTask<WriteResult> second = buffer.WriteAsync(2); // parks on the recycled operation
        Assert.False(second.IsCompleted);
        Assert.Throws<InvalidOperationException>(() => first.Result); // stale token: the misuser alone
        Assert.False(second.IsCompleted);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(1, item);
        Assert.Equal(WriteResult.Accepted, await second.AsTask().WaitAsync(Generous));
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(2, item);
    }
}
