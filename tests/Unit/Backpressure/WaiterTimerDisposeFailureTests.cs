using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Review s13, reported (Waiter.cs is another helper's): a user <see cref="TimeProvider"/> whose timer throws from
/// <see cref="IDisposable.Dispose"/>. A timed asynchronous wait on a provider other than the system one creates an
/// <see cref="ITimer"/>, which <c>Waiter.Detach</c> disposes when the wait is consumed (<c>ConsumeHandoff</c>, inside the
/// woken operation). The exception leaves <c>Detach</c> half done and reaches the parked write, which faults although a
/// read's signal woke it for a free slot: the signal is neither used nor passed on, and the writer parked behind it sleeps
/// beside the free slot (a lost wake-up).
/// </summary>
public sealed class WaiterTimerDisposeFailureTests
{
    [Fact(Skip = "Bug in Waiter.Detach (owned by another helper): an ITimer.Dispose that throws escapes ConsumeHandoff; the woken timed writer faults and the read's wake-up is lost (fails on main: the writer behind sleeps beside the free slot). See docs/backpressure.md, Session 13 review.")]
    public async Task TimedWriteWoken_TimerDisposeThrows_TheFreeSlotIsStillUsed()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            TimeProvider = new DisposeThrowingClock(),
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        ValueTask<WriteResult> timed = buffer.WriteAsync(1, OverflowPolicy.Wait, TimeSpan.FromMinutes(10)); // a timer of the provider
        ValueTask<WriteResult> behind = buffer.WriteAsync(2); // no timer
        Assert.False(timed.IsCompleted);
        Assert.False(behind.IsCompleted);

        Assert.True(buffer.TryRead(out _)); // wakes the timed writer (the oldest) for the free slot
        Task<WriteResult> timedTask = timed.AsTask();
        Task<WriteResult> behindTask = behind.AsTask();

        // Whatever the timed writer answers, the slot must not stay free while a writer is parked.
        Assert.True(SpinWait.SpinUntil(() => buffer.Count == 1, TimeSpan.FromSeconds(10)), "a writer sleeps beside the free slot: " + buffer.DescribeWaitState());
        buffer.Complete(); // ends whichever write is still parked
        await Task.WhenAll(timedTask.ContinueWith(_ => { }), behindTask.ContinueWith(_ => { })).WaitAsync(TimeSpan.FromSeconds(10));
    }

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
