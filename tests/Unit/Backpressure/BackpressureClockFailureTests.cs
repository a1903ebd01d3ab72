using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A user's <see cref="TimeProvider"/> that throws while a writer waits (helper s8-clockwait, 2026-11-23): the
/// exception reaches that writer, and no read's wake-up is spent on it or stranded with it.
/// </summary>
public sealed class BackpressureClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task WriteAsync_TimedAndCreateTimerThrows_FaultsAndLeavesNoWaiterBehind()
    {
        // A timed write parks, then creates its timeout timer. Before, a CreateTimer that threw left the waiter
        // linked: the next read's wake-up was spent on it and the writer parked behind it slept beside a free slot.
        var clock = new FailingReadingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait, TimeProvider = clock });
        Assert.True(buffer.TryWrite(1).IsAccepted);
        ValueTask<WriteResult> first = buffer.WriteAsync(2); // parks (no timer: infinite)
        Assert.False(first.IsCompleted);

        clock.FailTimer(1);
        ValueTask<WriteResult> failing = buffer.WriteAsync(3, OverflowPolicy.Wait, TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<InvalidOperationException>(() => failing.AsTask().WaitAsync(Generous));

        ValueTask<WriteResult> last = buffer.WriteAsync(4); // parks behind where the failed writer was linked
        Assert.False(last.IsCompleted);

        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.True((await first.AsTask().WaitAsync(Generous)).IsAccepted);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(2, item);
        Assert.True((await last.AsTask().WaitAsync(Generous)).IsAccepted); // before: timed out here (the wake-up went to the dead waiter)
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(4, item);
    }

    [Fact]
    public async Task WriteAsync_ClockThrowsAfterTheWakeUp_FaultsAndPassesTheRoomOn()
    {
        // A timed writer woken by a read checks its deadline before it uses the room. Before, a clock that threw there
        // faulted the write without passing the room's wake-up on: the writer parked behind it slept beside a free slot.
        var clock = new FailingReadingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait, TimeProvider = clock });
        Assert.True(buffer.TryWrite(1).IsAccepted);
        ValueTask<WriteResult> timed = buffer.WriteAsync(2, OverflowPolicy.Wait, TimeSpan.FromSeconds(10));
        Assert.False(timed.IsCompleted);
        ValueTask<WriteResult> next = buffer.WriteAsync(3);
        Assert.False(next.IsCompleted);

        clock.FailReading(1); // the woken timed writer's deadline check
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);

        await Assert.ThrowsAsync<InvalidOperationException>(() => timed.AsTask().WaitAsync(Generous));
        Assert.True((await next.AsTask().WaitAsync(Generous)).IsAccepted); // before: timed out here
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(3, item);
        Assert.False(buffer.TryRead(out _));
    }

    [Fact]
    public async Task WriteAsync_ClockThrowsAfterTheWrite_WriteAcceptedOnce()
    {
        // After the woken writer's item went in, the wait is recorded (one more reading). Before, a clock that threw
        // there faulted a write whose item was in the buffer: a caller that retried wrote it twice.
        var clock = new FailingReadingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait, TimeProvider = clock });
        Assert.True(buffer.TryWrite(1).IsAccepted);
        ValueTask<WriteResult> timed = buffer.WriteAsync(2, OverflowPolicy.Wait, TimeSpan.FromSeconds(10));
        Assert.False(timed.IsCompleted);

        clock.FailReading(2); // the deadline check passes; the wait's metric reading throws
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);

        Assert.True((await timed.AsTask().WaitAsync(Generous)).IsAccepted);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(2, item);
        Assert.Equal(1, buffer.ClockFailureCount); // the skipped sample's failure is counted (session 10: it was dropped without a trace)
    }
}
