using LockFree.Backpressure;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Review s13, fixed in session 14: a user <see cref="TimeProvider"/> whose timer throws from
/// <see cref="IDisposable.Dispose"/>. A timed asynchronous wait on a provider other than the system one creates an
/// <see cref="ITimer"/>, which <c>Waiter.Detach</c> disposes when the wait is consumed (<c>ConsumeHandoff</c>, inside the
/// woken operation). The exception left <c>Detach</c> half done and reached the parked write, which faulted although a
/// read's signal woke it for a free slot: the signal was neither used nor passed on, and the writer parked behind it slept
/// beside the free slot (a lost wake-up). Now the exception is counted and reported (<c>ClockFailed</c>) and the wait's
/// outcome stands. The exception goes to the waiter list's <c>TimerFailed</c> hook, a required constructor argument of the list.
/// </summary>
public sealed class WaiterTimerDisposeFailureTests
{
    [Fact]
    public async Task TimedWriteWoken_TimerDisposeThrows_TheFreeSlotIsUsedAndTheFailureReported()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            TimeProvider = new DisposeThrowingClock(),
        });
        var reported = new List<Exception>();
        buffer.ClockFailed += (_, error) =>
        {
            lock (reported)
            {
                reported.Add(error);
            }
        };
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        ValueTask<WriteResult> timed = buffer.WriteAsync(1, OverflowPolicy.Wait, TimeSpan.FromMinutes(10)); // a timer of the provider
        ValueTask<WriteResult> behind = buffer.WriteAsync(2); // no timer
        Assert.False(timed.IsCompleted);
        Assert.False(behind.IsCompleted);

        Assert.True(buffer.TryRead(out int first)); // wakes the timed writer (the oldest) for the free slot
        Assert.Equal(0, first);
        Task<WriteResult> timedTask = timed.AsTask();
        Task<WriteResult> behindTask = behind.AsTask();

        // Before: the timed write faulted with the timer's exception and the slot stayed free, the writer behind asleep.
        Assert.Equal(WriteOutcome.Accepted, (await timedTask.WaitAsync(TimeSpan.FromSeconds(10))).Outcome);
        Assert.True(buffer.TryRead(out int second));
        Assert.Equal(1, second);
        Assert.Equal(WriteOutcome.Accepted, (await behindTask.WaitAsync(TimeSpan.FromSeconds(10))).Outcome);
        Assert.True(buffer.TryRead(out int third));
        Assert.Equal(2, third);
        Assert.Equal(1, buffer.ClockFailureCount);
        lock (reported)
        {
            Assert.IsType<InvalidTimeZoneException>(Assert.Single(reported));
        }
    }

    [Fact]
    public async Task TimedAcquireGranted_TimerDisposeThrows_TheGrantStandsAndTheFailureIsReported()
    {
        // The token bucket's timed AcquireAsync arms the same waiter timeout; a grant's release of it used to throw the
        // timer's exception out of the awaiting caller, which then held a token it did not know it had.
        var clock = new DisposeThrowingClock();
        var bucket = new TokenBucket(1, 1000, timeProvider: clock);
        ValueTask<bool> timed;
        while (true)
        {
            while (bucket.TryAcquire())
            {
                // drain: the bucket refills in real time (a token per millisecond)
            }

            timed = bucket.AcquireAsync(1, TimeSpan.FromMinutes(10));
            if (!timed.IsCompleted)
            {
                break; // queued, its timer armed
            }

            // A token refilled between the drain and the call (review: the first call's JIT alone can take a millisecond,
            // and the fast path then took it, arming no timer, so the failure count stayed 0): try again.
            Assert.True(await timed);
        }

        Assert.True(await timed.AsTask().WaitAsync(TimeSpan.FromSeconds(10))); // granted by the refill
        Assert.True(bucket.ClockFailureCount >= 1);
    }

    [Fact]
    public async Task TimedWaitReleased_TimerDisposeThrows_TheListsConstructorHookGetsIt()
    {
        // The hook is the list's constructor argument (it was an opt-in setter, which a new owner could forget): the
        // exception of a released timer reaches it, and the wait's outcome stands.
        var reported = new List<Exception>();
        var list = new WaiterList(error => reported.Add(error));
        Waiter waiter = list.RentAndLink(synchronous: false);
        waiter.Arm(TimeSpan.FromMinutes(10), CancellationToken.None, new DisposeThrowingClock(), wheel: null); // a timer of the provider
        var wait = new ValueTask<WaitStatus>(waiter, waiter.Version);

        Assert.True(list.SignalOne());
        Assert.Equal(WaitStatus.Signaled, await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10))); // its result read released the timer
        Assert.IsType<InvalidTimeZoneException>(Assert.Single(reported));
    }

    [Fact]
    public void WaiterList_NullTimerFailedHook_Throws() =>
        Assert.Throws<ArgumentNullException>("timerFailed", () => new WaiterList(null!));

    /// <summary>The system clock, with timers whose Dispose throws.</summary>
    private sealed class DisposeThrowingClock : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            new Timer(System.CreateTimer(callback, state, dueTime, period));

        private sealed class Timer(ITimer inner) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

            public void Dispose()
            {
                inner.Dispose();
                throw new InvalidTimeZoneException("timer dispose failed");
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }
}
