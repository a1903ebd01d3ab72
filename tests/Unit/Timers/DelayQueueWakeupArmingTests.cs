using System.Diagnostics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// When a <see cref="DelayQueue{T}"/> wakes a parked reader (session 15: mutants of these conditions survived the unit
/// tests of session 14). A producer signals a parked reader when nothing is armed or its item is due before the armed
/// wake-up, and only then: a later item costs the parked reader nothing (the armed wake-up serves it). A wake-up whose
/// timer throws as it is armed leaves nothing claimed as armed, so the next reader arms it again.
/// </summary>
public sealed class DelayQueueWakeupArmingTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ReaderParkedOnAnEmptyQueue_ClockWithNegativeTimestamps_WokenForALaterItem()
    {
        // Nothing is armed (long.MaxValue), so the producer must signal. Compared as timestamps instead, a due time
        // below zero is not "before long.MaxValue" (the difference wraps), and the reader slept with no wake-up armed.
        var time = new ManualTimeProvider(-TimeSpan.FromDays(1).Ticks);
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time });
        ValueTask<int> reader = queue.DequeueAsync(); // parks: no item to arm a wake-up for
        Assert.False(reader.IsCompleted);

        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted); // wakes the reader, which arms for the item

        Assert.Equal(1, await AdvanceUntilDone(time, reader.AsTask()));
    }

    [Fact]
    public async Task ReaderParkedWithAWakeupArmed_LaterItems_DoNotWakeIt()
    {
        var time = new ManualTimeProvider();
        var clock = new CountingClock(time);
        using var queue = new DelayQueue<int>(64, new DelayQueueOptions<int> { TimeProvider = clock });
        Assert.True(queue.TryEnqueue(0, TimeSpan.FromSeconds(10)).IsAccepted);
        ValueTask<int> reader = queue.DequeueAsync(); // parks, its wake-up armed for item 0
        Assert.False(reader.IsCompleted);
        Assert.Equal(1, clock.Armings);
        long readings = clock.Readings;

        for (int i = 1; i <= 20; i++)
        {
            Assert.True(queue.TryEnqueue(i, TimeSpan.FromSeconds(20)).IsAccepted); // due after the armed time: no signal
        }

        // A reader woken for nothing reads the clock on a thread-pool thread: give it time to show (a bounded wait, the
        // whole of it when all is well; a wake-up that runs only after item 99 below merges with the real one unseen).
        var waited = Stopwatch.StartNew();
        while (clock.Readings == readings + 20 && waited.ElapsedMilliseconds < 500)
        {
            await Task.Delay(10);
        }

        Assert.Equal(readings + 20, clock.Readings); // one reading per enqueue, none by the reader
        Assert.False(reader.IsCompleted);
        Assert.True(queue.TryEnqueue(99, TimeSpan.Zero).IsAccepted); // due before it: wakes the reader, which takes it
        Assert.Equal(99, await reader.AsTask().WaitAsync(Generous));

        // One reading per enqueue and none else. Still one arming: the reader that took item 99 found the wake-up armed
        // for item 0 and left it.
        Assert.Equal(readings + 21, clock.Readings);
        Assert.Equal(1, clock.Armings);
    }

    [Fact]
    public async Task ArmingTheWakeupThrows_ThatReaderFailsAndTheNextOneArmsAgain()
    {
        var time = new ManualTimeProvider();
        var clock = new TimerFailingClock(time) { ArmingFailures = 1 };
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = clock });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromSeconds(1)).IsAccepted);

        ValueTask<int> failed = queue.DequeueAsync(); // arms the wake-up as it parks: the timer throws
        Assert.True(failed.IsCompleted); // the failure reaches that reader (were it swallowed, the reader would park with nothing armed)
        await Assert.ThrowsAsync<InvalidOperationException>(() => failed.AsTask());

        ValueTask<int> reader = queue.DequeueAsync(); // nothing is armed: it arms
        Assert.False(reader.IsCompleted);
        Assert.Equal(1, clock.Armings); // were the failed arming still claimed as armed: 0, and the reader would sleep for ever
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await reader.AsTask().WaitAsync(Generous));
    }

    /// <summary>Advances the clock in small steps until <paramref name="task"/> is done (a woken reader arms on a pool thread), bounded.</summary>
    private static async Task<T> AdvanceUntilDone<T>(ManualTimeProvider time, Task<T> task)
    {
        var elapsed = Stopwatch.StartNew();
        while (!task.IsCompleted && elapsed.Elapsed < Generous)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(5);
        }

        Assert.True(task.IsCompleted, "the parked reader was never served");
        return await task;
    }
}
