using System.Reflection;
using LockFree.Backpressure;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// <see cref="Thread.Interrupt"/> and the buffer's blocking calls: an interrupted wait ends like a cancellation (the
/// exception, no trace, nobody else's wake-up taken), and an interrupt pending when the buffer takes its own lock is
/// deferred to the caller's next wait instead of breaking an operation half done.
/// </summary>
public sealed class BackpressureInterruptTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Write_InterruptedWhileWaiting_ThrowsLeavesNoTraceAndTheNextWriterIsWoken(bool single)
    {
        // Before, the exception left the interrupted writer's waiter linked: the read's signal went to it, and the
        // next writer slept until its timeout.
        using var buffer = Buffer(single);
        Assert.True(buffer.TryWrite(1).IsAccepted);
        Exception? thrown = null;
        var first = new Thread(() =>
        {
            try
            {
                buffer.Write(2, Generous);
            }
            catch (Exception e)
            {
                thrown = e;
            }
        });
        first.Start();
        Assert.True(SpinWait.SpinUntil(() => Writers(buffer).Count == 1, Generous));
        first.Interrupt();
        Assert.True(first.Join(Generous));
        Assert.IsType<ThreadInterruptedException>(thrown);
        Assert.Equal(0, Writers(buffer).Count);

        WriteResult second = default;
        var next = new Thread(() => second = WriteOrDefault(buffer, 3));
        next.Start();
        Assert.True(SpinWait.SpinUntil(() => Writers(buffer).Count == 1, Generous));
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.True(next.Join(Generous));
        Assert.True(second.IsAccepted);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(3, item); // the interrupted write left nothing behind
        Assert.False(buffer.TryRead(out _));
        Assert.Equal(2, buffer.GetStatistics().Enqueued);
    }

    [Fact]
    public void TryRead_InterruptPendingWhileWakingAWriter_ReturnsTheItemAndDefersTheInterrupt()
    {
        // A read that frees room wakes a parked writer under the writers' lock. With an interrupt pending and that lock
        // contended, the lock used to throw after the item was taken: the item was lost.
        using var buffer = Buffer(single: false);
        Thread writer = ParkWriterBehindOneItem(buffer);

        object writersLock = typeof(WaiterList).GetField("_lock", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(Writers(buffer))!;
        AssertReadReturnsTheItemWithAnInterruptPending(buffer, holding: writersLock, expected: 1);
        AssertWriterLanded(buffer, writer); // woken: the read's room was handed on
    }

    [Fact]
    public void TryRead_InterruptPendingWhileTheParkedWritersEventIsContended_ReturnsTheItem()
    {
        // Waking a blocked writer sets its waiter's ManualResetEventSlim, whose Set takes the event's own monitor to pulse
        // the writer. The test holds that monitor while a reader with an interrupt pending takes an item and wakes the
        // writer: Set's Monitor.Enter threw there, after the item was taken (lost). Found by the scheduler review's twin
        // of this test (WorkStealingInterruptTests).
        using var buffer = Buffer(single: false);
        Thread writer = ParkWriterBehindOneItem(buffer);
        object waiter = typeof(WaiterList).GetField("_head", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(Writers(buffer))!;
        var parked = (ManualResetEventSlim)typeof(Waiter).GetField("_event", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(waiter)!;
        FieldInfo lockField = typeof(ManualResetEventSlim).GetField("m_lock", BindingFlags.NonPublic | BindingFlags.Instance)!;
        Assert.True(SpinWait.SpinUntil(() => lockField.GetValue(parked) is not null, Generous)); // the writer blocked in Wait
        Thread.Sleep(50); // let it reach Monitor.Wait (which releases the monitor)
        object eventLock = lockField.GetValue(parked)!;
        AssertReadReturnsTheItemWithAnInterruptPending(buffer, holding: eventLock, expected: 1);
        parked.Set(); // a safety net for the old code, whose throw left the writer unpulsed (harmless otherwise)
        AssertWriterLanded(buffer, writer);
    }

    /// <summary>Fills the capacity-1 buffer with 1 and parks a blocking writer of 2 behind it.</summary>
    private static Thread ParkWriterBehindOneItem(BackpressureBuffer<int> buffer)
    {
        Assert.True(buffer.TryWrite(1).IsAccepted);
        var writer = new Thread(() => WriteOrDefault(buffer, 2));
        writer.Start();
        Assert.True(SpinWait.SpinUntil(() => Writers(buffer).Count == 1, Generous));
        return writer;
    }

    private static void AssertWriterLanded(BackpressureBuffer<int> buffer, Thread writer)
    {
        Assert.True(writer.Join(Generous));
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(2, item);
    }

    /// <summary>
    /// A reader thread with an interrupt pending takes an item while this thread holds <paramref name="holding"/>, a
    /// monitor the read's wake-up of the parked writer needs: the read must return <paramref name="expected"/> without
    /// throwing, and the interrupt must still reach the reader's next wait.
    /// </summary>
    private static void AssertReadReturnsTheItemWithAnInterruptPending(BackpressureBuffer<int> buffer, object holding, int expected)
    {
        bool read = false, delivered = false;
        int item = 0;
        Exception? thrown = null;
        using var reading = new ManualResetEventSlim(false);
        var reader = new Thread(() =>
        {
            try
            {
                Thread.CurrentThread.Interrupt();
                reading.Set();
                read = buffer.TryRead(out item);
                try
                {
                    Thread.Sleep(1);
                }
                catch (ThreadInterruptedException)
                {
                    delivered = true;
                }
            }
            catch (Exception e)
            {
                thrown = e;
            }
        });
        Monitor.Enter(holding);
        try
        {
            reader.Start();
            Assert.True(reading.Wait(Generous));
            Thread.Sleep(50); // let the read's wake-up reach the held monitor
        }
        finally
        {
            Monitor.Exit(holding);
        }

        Assert.True(reader.Join(Generous));
        Assert.Null(thrown);
        Assert.True(read);
        Assert.Equal(expected, item);
        Assert.True(delivered);
    }

    /// <summary>A blocking write on a helper thread: a failed test disposes the buffer, which must not end the test host.</summary>
    private static WriteResult WriteOrDefault(BackpressureBuffer<int> buffer, int item)
    {
        try
        {
            return buffer.Write(item, Generous);
        }
        catch (ObjectDisposedException)
        {
            return default;
        }
    }

    private static BackpressureBuffer<int> Buffer(bool single) => new(new BackpressureBufferOptions<int>
    {
        Capacity = 1,
        FullMode = OverflowPolicy.Wait,
        SingleWriter = single,
        SingleReader = single,
    });

    private static WaiterList Writers(BackpressureBuffer<int> buffer) =>
        (WaiterList)typeof(BackpressureBuffer<int>).GetField("_writers", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(buffer)!;
}
