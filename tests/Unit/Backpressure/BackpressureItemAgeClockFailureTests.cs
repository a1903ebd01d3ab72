using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A buffer created with <see cref="BackpressureBufferOptions{T}.TrackItemAge"/> reads the user's clock inside every
/// write (the item's stamp). A clock that throws there, at a moment when the write holds something (a read's wake-up, a
/// linked waiter, a slot an eviction freed), must hand that back: a parked writer is never stranded beside free room.
/// (Until session 10 a full recheck also read the clock for a retry hint nobody used; see the recheck test without item ages.)
/// (helper s9-room, 2026-11-23; the same pattern as DelayQueue's fix 0605441).
/// </summary>
public sealed class BackpressureItemAgeClockFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    /// <summary>
    /// After a failed write on a buffer holding item 1: a writer of 3 parks, a read of 1 must wake it (before the fixes it
    /// timed out here, its wake-up spent on a waiter nobody awaited), and 3 is then read.
    /// </summary>
    private static async Task AssertNextWriterGetsTheRoom(BackpressureBuffer<int> buffer)
    {
        ValueTask<WriteResult> next = buffer.WriteAsync(3); // parks
        Assert.False(next.IsCompleted);
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.True((await next.AsTask().WaitAsync(Generous)).IsAccepted);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(3, item);
    }

    private static BackpressureBuffer<int> Create(TimeProvider clock, Action<int, DropReason>? dropped = null) =>
        new(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            TrackItemAge = true,
            TimeProvider = clock,
            ItemDropped = dropped,
        });

    [Fact]
    public async Task WriteAsync_WokenWritersStampThrows_FaultsAndPassesTheRoomOn()
    {
        // The writer woken by a read writes its item, whose stamp reads the clock. Before, a clock that threw there
        // faulted the write with the read's wake-up in hand: the writer parked behind it slept beside a free slot.
        var clock = new FailingReadingClock(new ManualTimeProvider());
        using var buffer = Create(clock);
        Assert.True(buffer.TryWrite(1).IsAccepted);
        ValueTask<WriteResult> first = buffer.WriteAsync(2); // parks
        Assert.False(first.IsCompleted);
        ValueTask<WriteResult> next = buffer.WriteAsync(3); // parks behind it
        Assert.False(next.IsCompleted);

        clock.FailReading(1); // a read takes no reading: the first one is the woken writer's stamp
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);

        await Assert.ThrowsAsync<InvalidOperationException>(() => first.AsTask().WaitAsync(Generous));
        Assert.True((await next.AsTask().WaitAsync(Generous)).IsAccepted); // before: timed out here
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(3, item);
        Assert.False(buffer.TryRead(out _));
    }

    [Fact]
    public async Task WriteAsync_StampThrowsInTheRecheckAfterLinking_LeavesNoWaiterBehind()
    {
        // A writer links its waiter, then tries once more (the recheck after the handshake), which stamps the item. Before,
        // a clock that threw there left the waiter linked and never awaited: the next read's wake-up was spent on it and
        // the writer parked behind it slept beside a free slot.
        var clock = new PredicateFailingClock(new ManualTimeProvider());
        using var buffer = Create(clock);
        Assert.True(buffer.TryWrite(1).IsAccepted);
        clock.FailOnceWhen(() => buffer.ReadsAskWriters); // the first reading after the first park's bit: the recheck's stamp
        ValueTask<WriteResult> failing = buffer.WriteAsync(2);
        await Assert.ThrowsAsync<InvalidOperationException>(() => failing.AsTask().WaitAsync(Generous));
        Assert.True(clock.Failed);

        await AssertNextWriterGetsTheRoom(buffer);
    }

    [Fact]
    public async Task WriteAsync_RecheckAfterLinkingFindsTheBufferFull_ReadsNoClockAndWaits()
    {
        // Without item ages: until session 10 a recheck that found the buffer full computed the retry hint (a reading of
        // the user's clock, any TimeProvider but the system one) only to discard it, and a clock that threw there faulted
        // the waiting write (s9-room made it take its waiter back first; this test asserted that fault). Since session 10
        // a waiting writer's attempts compute no hint (BackpressureRetryHintClockFailureTests): nothing is read there, so
        // nothing can fail there, and the write waits for its room.
        var clock = new PredicateFailingClock(new ManualTimeProvider());
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait, TimeProvider = clock });
        Assert.True(buffer.TryWrite(1).IsAccepted);
        clock.FailOnceWhen(() => buffer.ReadsAskWriters); // would fail the first reading after the first park's bit
        ValueTask<WriteResult> waiting = buffer.WriteAsync(2);
        Assert.False(waiting.IsCompleted);
        Assert.False(clock.Failed);

        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.True((await waiting.AsTask().WaitAsync(Generous)).IsAccepted); // its wait's metric reading fails: skipped, the write happened
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(2, item);
    }

    [Fact]
    public async Task Write_StampThrowsInTheRecheckAfterLinking_LeavesNoWaiterBehind()
    {
        // The blocking write's recheck after linking, as above.
        var clock = new PredicateFailingClock(new ManualTimeProvider());
        using var buffer = Create(clock);
        Assert.True(buffer.TryWrite(1).IsAccepted);
        clock.FailOnceWhen(() => buffer.ReadsAskWriters);
        Assert.Throws<InvalidOperationException>(() => buffer.Write(2, Generous));
        Assert.True(clock.Failed);

        await AssertNextWriterGetsTheRoom(buffer);
    }

    [Fact]
    public async Task Write_WokenWritersStampThrows_ThrowsAndPassesTheRoomOn()
    {
        // The blocking writer woken by a read, as the first test: before, its wake-up was lost with the exception.
        var clock = new FailingReadingClock(new ManualTimeProvider());
        using var buffer = Create(clock);
        Assert.True(buffer.TryWrite(1).IsAccepted);
        Task<WriteResult> blocked = Task.Factory.StartNew(() => buffer.Write(2, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        await WaitUntil(() => buffer.DescribeWaitState().Contains(" sync", StringComparison.Ordinal) || blocked.IsCompleted, buffer);
        Assert.False(blocked.IsCompleted);
        ValueTask<WriteResult> next = buffer.WriteAsync(3); // parks behind it
        Assert.False(next.IsCompleted);

        clock.FailReading(1);
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);

        await Assert.ThrowsAsync<InvalidOperationException>(() => blocked.WaitAsync(Generous));
        Assert.True((await next.AsTask().WaitAsync(Generous)).IsAccepted); // before: timed out here
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(3, item);
    }

    [Fact]
    public async Task TryWrite_DropOldestStampThrows_EvictsNothingAndTheParkedWriterWaitsOn()
    {
        // A DropOldest write on a Wait buffer stamps its item before its place-or-evict step (session 16: one engine step).
        // A clock that throws there changes nothing: no eviction, no report, and the writer parked for room stays parked
        // until a read makes room. (Before, the write evicted first and then stamped; a throw left an evicted slot free,
        // which the buffer then had to hand on and report.)
        var clock = new FailingReadingClock(new ManualTimeProvider());
        var dropped = new List<(int Item, DropReason Reason)>();
        using var buffer = Create(clock, (i, r) => { lock (dropped) { dropped.Add((i, r)); } });
        Assert.True(buffer.TryWrite(1).IsAccepted);
        ValueTask<WriteResult> parked = buffer.WriteAsync(2);
        Assert.False(parked.IsCompleted);

        clock.FailReading(2); // reading 1: the first attempt's stamp (full); reading 2: the place-or-evict step's stamp
        Assert.Throws<InvalidOperationException>(() => buffer.TryWrite(3, OverflowPolicy.DropOldest));

        BackpressureStatistics stats = buffer.GetStatistics();
        Assert.Equal((1L, 0L, 0L, 1), (stats.Enqueued, stats.Dequeued, stats.Evicted, stats.Remaining));
        Assert.False(parked.IsCompleted);
        lock (dropped)
        {
            Assert.Empty(dropped);
        }

        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
        Assert.True((await parked.AsTask().WaitAsync(Generous)).IsAccepted);
        Assert.True(buffer.TryRead(out item));
        Assert.Equal(2, item);
        stats = buffer.GetStatistics();
        Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);
    }

    private static async Task WaitUntil(Func<bool> condition, BackpressureBuffer<int> buffer)
    {
        var deadline = DateTime.UtcNow + Generous;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, buffer.DescribeWaitState());
            await Task.Delay(5);
        }
    }

    /// <summary>A clock whose first reading after a condition holds throws once.</summary>
    private sealed class PredicateFailingClock(ManualTimeProvider inner) : TimeProvider
    {
        private Func<bool>? _when;
        private int _failed;

        public bool Failed => Volatile.Read(ref _failed) != 0;

        public override long TimestampFrequency => inner.TimestampFrequency;

        public void FailOnceWhen(Func<bool> when) => Volatile.Write(ref _when, when);

        public override long GetTimestamp()
        {
            Func<bool>? when = Volatile.Read(ref _when);
            if (when is not null && when() && Interlocked.CompareExchange(ref _when, null, when) == when)
            {
                Volatile.Write(ref _failed, 1);
                throw new InvalidOperationException("clock failed");
            }

            return inner.GetTimestamp();
        }

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }
}
