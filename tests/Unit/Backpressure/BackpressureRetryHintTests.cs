using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>The retry hint of a rejected write (Little's law over the measured drain rate), on a manual clock.</summary>
public sealed class BackpressureRetryHintTests
{
    private static BackpressureBuffer<int> Create(int capacity, TimeProvider time) =>
        new(new BackpressureBufferOptions<int> { Capacity = capacity, FullMode = OverflowPolicy.Reject, TimeProvider = time });

    private static void ReadOneWriteOne(BackpressureBuffer<int> buffer)
    {
        Assert.True(buffer.TryRead(out _));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
    }

    [Fact]
    public void RetryAfter_JustAfterTheMeasuringWindowRestarts_StaysFinite()
    {
        // A reader that drains one item a second, steadily; rejections every 10 ms. Before, the window restarted at
        // the rejection one second in, and the next rejection measured only the 10 ms since: nothing drained there,
        // so it answered Infinite ("the reader may be stalled") although the reader never stopped.
        var time = new ManualTimeProvider();
        using var buffer = Create(2, time);
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        Assert.Equal(WriteOutcome.Rejected, buffer.TryWrite(9).Outcome);

        for (int second = 0; second < 3; second++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            ReadOneWriteOne(buffer);
            for (int i = 0; i < 5; i++)
            {
                WriteResult result = buffer.TryWrite(9);
                Assert.Equal(WriteOutcome.Rejected, result.Outcome);
                Assert.True(result.RetryAfter > TimeSpan.Zero && result.RetryAfter != Timeout.InfiniteTimeSpan, $"second {second}, rejection {i}: {result}");
                Assert.InRange(result.RetryAfter, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(1.1)); // one item a second
                time.Advance(TimeSpan.FromMilliseconds(10));
            }
        }
    }

    [Fact]
    public void RetryAfter_FirstRejectionAfterADrainingSecond_IsFinite()
    {
        // The buffer drained 100 items over the second before its first rejection. Before, the first rejection only
        // opened the measuring window and answered Infinite: a caller honouring the hint gave up on a healthy buffer.
        var time = new ManualTimeProvider();
        using var buffer = Create(4, time);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
            time.Advance(TimeSpan.FromMilliseconds(10));
            Assert.True(buffer.TryRead(out _));
        }

        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
        }

        WriteResult result = buffer.TryWrite(9);

        Assert.Equal(WriteOutcome.Rejected, result.Outcome);
        Assert.InRange(result.RetryAfter, TimeSpan.FromMilliseconds(9), TimeSpan.FromMilliseconds(11)); // 1 s / 100 items
    }

    [Fact]
    public void RetryAfter_ReaderStopsAfterDraining_BecomesInfiniteWithinAFewWindows()
    {
        // The other side of the fix: a reader that stops is still reported (Infinite) once the measured span holds no drain.
        var time = new ManualTimeProvider();
        using var buffer = Create(2, time);
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
            time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.True(buffer.TryRead(out _));
        }

        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        WriteResult last = buffer.TryWrite(9);
        for (int i = 0; i < 40 && last.RetryAfter != Timeout.InfiniteTimeSpan; i++)
        {
            Assert.True(last.RetryAfter > TimeSpan.Zero, last.ToString());
            time.Advance(TimeSpan.FromMilliseconds(100));
            last = buffer.TryWrite(9);
        }

        Assert.Equal(Timeout.InfiniteTimeSpan, last.RetryAfter);
    }
}
