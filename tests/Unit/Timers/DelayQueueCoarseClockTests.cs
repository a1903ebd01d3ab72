using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="DelayQueue{T}"/> and <see cref="AckQueue{T}"/> on a clock whose timestamps are coarser than a
/// <see cref="TimeSpan"/> tick (1 ms here, as a provider over <c>Environment.TickCount64</c> would be): a delay that is
/// not a whole number of timestamps must round up, never down, or the item is visible early by the clock's own count.
/// </summary>
public sealed class DelayQueueCoarseClockTests
{
    /// <summary>A manual clock with millisecond timestamps; its timers fire only from <see cref="FireTimers"/> (every armed one: owners re-check their due times).</summary>
    private sealed class MillisecondClock : TimeProvider
    {
        private readonly List<ArmedTimer> _timers = new();
        private long _ticks = TimeSpan.FromDays(1).Ticks;

        public override long TimestampFrequency => 1000;

        public override long GetTimestamp() => Volatile.Read(ref _ticks) / TimeSpan.TicksPerMillisecond;

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new ArmedTimer(callback, state) { Armed = dueTime != Timeout.InfiniteTimeSpan };
            lock (_timers)
            {
                _timers.Add(timer);
            }

            return timer;
        }

        public void FireTimers()
        {
            ArmedTimer[] armed;
            lock (_timers)
            {
                armed = _timers.Where(t => t.Armed).ToArray();
            }

            foreach (ArmedTimer timer in armed)
            {
                timer.Armed = false;
                timer.Callback(timer.State);
            }
        }

        private sealed class ArmedTimer(TimerCallback callback, object? state) : ITimer
        {
            public TimerCallback Callback { get; } = callback;

            public object? State { get; } = state;

            public bool Armed { get; set; }

            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                Armed = dueTime != Timeout.InfiniteTimeSpan;
                return true;
            }

            public void Dispose() => Armed = false;

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }

    [Fact]
    public void TryDequeue_DelayNotAWholeTimestamp_NotVisibleBeforeTheDelayHasPassedOnTheClock()
    {
        var time = new MillisecondClock();
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time });
        long start = time.GetTimestamp();
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromMilliseconds(1.5)).IsAccepted);

        time.Advance(TimeSpan.FromMilliseconds(1)); // the clock says 1 ms passed: before, the item (due at +1) came out
        Assert.Equal(TimeSpan.FromMilliseconds(1), time.GetElapsedTime(start));
        Assert.False(queue.TryDequeue(out _));

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(1, item);
    }

    [Fact]
    public void TryDequeue_DelayBelowOneTimestamp_NotVisibleAtOnce()
    {
        var time = new MillisecondClock();
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = time });
        Assert.True(queue.TryEnqueue(1, TimeSpan.FromMilliseconds(0.4)).IsAccepted);

        Assert.False(queue.TryDequeue(out _)); // before: truncated to a delay of 0

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(queue.TryDequeue(out _));
    }

    [Fact]
    public void AckQueue_VisibilityTimeoutNotAWholeTimestamp_NotRedeliveredEarly()
    {
        var time = new MillisecondClock();
        using var queue = new AckQueue<int>(new AckQueueOptions<int> { Capacity = 4, VisibilityTimeout = TimeSpan.FromMilliseconds(2.5), TimeProvider = time });
        queue.TryEnqueue(1);
        Assert.True(queue.TryReceive(out Delivery<int> first));

        time.Advance(TimeSpan.FromMilliseconds(2)); // 2 ms on the clock, the timeout is 2.5: still in flight
        time.FireTimers();
        Assert.Equal(0, queue.GetStatistics().Expired);
        Assert.True(queue.Ack(first));
    }
}
