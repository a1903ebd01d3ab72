using System.Threading.Channels;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The channel's <c>TryWrite</c> answers a bool, so on a full channel it computes no retry hint: no reading of the
/// channel's clock. Before (session 10), each refused <c>TryWrite</c> computed the buffer's Little's-law hint and threw
/// it away, reading a custom <see cref="TimeProvider"/> every time. The buffer's own <c>TryWrite</c> still gives a hint.
/// </summary>
public sealed class LockFreeChannelTryWriteHintTests
{
    [Theory]
    [InlineData(OverflowPolicy.Wait, true)]
    [InlineData(OverflowPolicy.Wait, false)]
    [InlineData(OverflowPolicy.Reject, true)]
    [InlineData(OverflowPolicy.Reject, false)]
    public void TryWrite_FullChannel_ReadsNoClock(OverflowPolicy mode, bool single)
    {
        var clock = new CountingClock(new ManualTimeProvider());
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 2, FullMode = mode, SingleWriter = single, SingleReader = single, TimeProvider = clock });
        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Writer.TryWrite(2));
        long before = clock.Readings;
        for (int i = 0; i < 10; i++)
        {
            Assert.False(channel.Writer.TryWrite(3));
        }

        Assert.Equal(before, clock.Readings);
        Assert.True(channel.Reader.TryRead(out int first));
        Assert.Equal(1, first);
        Assert.True(channel.Writer.TryWrite(3)); // room again: accepted
    }

    [Fact]
    public void BufferTryWrite_Full_StillComputesItsHint()
    {
        var clock = new CountingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Reject, TimeProvider = clock });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        long before = clock.Readings;
        WriteResult refused = buffer.TryWrite(2);
        Assert.Equal(WriteOutcome.Rejected, refused.Outcome);
        Assert.True(clock.Readings > before); // the Little's-law estimate reads the clock
    }
}
