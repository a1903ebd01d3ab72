using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Timeouts of the blocking and asynchronous calls of <see cref="BackpressureBuffer{T}"/> at the edges of their range.
/// Every wait that must end is bounded by a generous timeout; nothing asserts that anything is fast.
/// </summary>
public sealed class BackpressureTimeoutTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>Timeouts valid by the contract (non-negative) beyond what one event wait (int.MaxValue ms) or one timer (~49.7 days) takes.</summary>
    public static TheoryData<TimeSpan> VeryLarge => new() { TimeSpan.FromDays(30), TimeSpan.FromDays(60), TimeSpan.MaxValue };

    private static BackpressureBuffer<int> Full(int capacity)
    {
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = capacity, FullMode = OverflowPolicy.Wait });
        for (int i = 0; i < capacity; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
        }

        return buffer;
    }

    [Theory]
    [MemberData(nameof(VeryLarge))]
    public async Task Write_VeryLargeTimeout_WaitsForRoomAndLands(TimeSpan timeout)
    {
        // Before, the parked wait passed the whole timeout to ManualResetEventSlim.Wait, which throws
        // ArgumentOutOfRangeException past int.MaxValue ms: a valid timeout failed, and the waiter stayed linked.
        using var buffer = Full(2);
        Task<WriteResult> write = Task.Run(() => buffer.Write(2, timeout));
        await Task.Delay(50);

        Assert.True(buffer.TryRead(out int first));

        Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Generous));
        Assert.Equal(0, first);
        Assert.True(buffer.TryRead(out int second));
        Assert.True(buffer.TryRead(out int third));
        Assert.Equal((1, 2), (second, third));
        Assert.Equal(new BackpressureStatistics(3, 3, 0, 0, 0, 0), buffer.GetStatistics());
    }

    [Theory]
    [MemberData(nameof(VeryLarge))]
    public async Task WriteAsync_VeryLargeTimeout_WaitsForRoomAndLands(TimeSpan timeout)
    {
        // Before, the timer was created with the whole timeout, and the system clock's timer throws past ~49.7 days.
        using var buffer = Full(2);
        Task<WriteResult> write = buffer.WriteAsync(2, OverflowPolicy.Wait, timeout).AsTask();
        await Task.Delay(50);

        Assert.True(buffer.TryRead(out _));

        Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Generous));
        Assert.Equal(new BackpressureStatistics(3, 1, 0, 0, 0, 2), buffer.GetStatistics());
    }

    [Theory]
    [MemberData(nameof(VeryLarge))]
    public async Task TryRead_VeryLargeTimeout_WaitsForAnItem(TimeSpan timeout)
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2 });
        Task<(bool, int)> read = Task.Run(() => (buffer.TryRead(out int item, timeout), item));
        await Task.Delay(50);

        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(7));

        Assert.Equal((true, 7), await read.WaitAsync(Generous));
        Assert.Equal(new BackpressureStatistics(1, 1, 0, 0, 0, 0), buffer.GetStatistics());
    }
}
