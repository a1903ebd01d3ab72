using System.Reflection;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The backoff wait between attempts is the pooled operation's own since session 13 (a timer with the operation as its
/// state, the token's registration with the operation as its state, one CAS deciding which ends it), no longer a
/// <c>Task.Delay</c> or a wheel-backed task. What the task gave is kept: it ends at the due time on the policy's clock, a
/// cancellation during it throws a <see cref="TaskCanceledException"/> of the caller's token, and its timer and
/// registration are gone when the call completes. The races are made deterministic: a clock whose timer cancels the
/// token just before it fires, and a wheel timer that cancels it in the same fire batch as the wait's. Each test uses its
/// own state type, so the operations' pool (one per state and result type) is the test's alone and can be inspected: a
/// wait's timer that lost to the token must neither end a later wait of the recycled operation nor return it twice.
/// </summary>
public sealed class RetryBackoffWaitTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);
    private static readonly TimeoutException Failure = new("first attempt");

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    private static RetryPolicy Policy(TimeProvider time, HierarchicalTimerWheel? wheel = null, int maxAttempts = 2) =>
        new(new RetryPolicyOptions { MaxAttempts = maxAttempts, BaseDelay = Ms(100), Jitter = RetryJitter.None, TimeProvider = time, TimerWheel = wheel });

    /// <summary>An action failing its first attempt (of each counter), then answering the attempt number.</summary>
    private static ValueTask<int> FailOnce(Counter counter, CancellationToken token) =>
        ++counter.Calls == 1 ? throw Failure : new ValueTask<int>(counter.Calls);

    /// <summary>The result of a call that has completed (the test checked it), taken once through its source.</summary>
    private static int Completed(ValueTask<int> call) => call.GetAwaiter().GetResult();

    /// <summary>The number of pooled operations of <typeparamref name="TState"/> and <typeparamref name="TResult"/> in their pool now.</summary>
    private static int PooledOperations<TState, TResult>()
    {
        Type operation = typeof(RetryPolicy).GetNestedType("ExecuteOperation`2", BindingFlags.NonPublic)!.MakeGenericType(typeof(TState), typeof(TResult));
        object pool = operation.GetField("Pool", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
        return (int)pool.GetType().GetProperty("Count", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(pool)!;
    }

    [Fact]
    public void ExecuteAsync_OnAManualClock_ResumesAtTheDueTimeAndDisposesItsTimer()
    {
        var time = new ManualTimeProvider();
        var counter = new Counter();
        ValueTask<int> call = Policy(time).ExecuteAsync(FailOnce, counter);
        Assert.False(call.IsCompleted);
        Assert.Equal(1, time.ActiveTimers);

        time.Advance(Ms(99));
        Assert.False(call.IsCompleted);
        time.Advance(Ms(1)); // the timer's callback resumes the call on this thread, as Task.Delay's continuation ran

        Assert.True(call.IsCompleted);
        Assert.Equal(2, Completed(call));
        Assert.Equal(0, time.ActiveTimers);
    }

    [Fact]
    public void ExecuteAsync_OnAManualClock_CancelledDuringTheWait_ThrowsTheCallersTokenAndDisposesTheTimer()
    {
        var time = new ManualTimeProvider();
        using var cts = new CancellationTokenSource();
        var counter = new CancelCounter();
        ValueTask<int> call = Policy(time).ExecuteAsync(static (c, _) => ++c.Calls == 1 ? throw Failure : new ValueTask<int>(c.Calls), counter, cts.Token);
        time.Advance(Ms(50));

        cts.Cancel();
        Assert.True(call.IsCompleted); // on the cancelling thread, as Task.Delay's cancellation completed it
        var error = Assert.Throws<TaskCanceledException>(() => call.GetAwaiter().GetResult());
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.Equal(0, time.ActiveTimers);
        time.Advance(Ms(1000));
        Assert.Equal(1, counter.Calls);
        Assert.Equal(1, PooledOperations<CancelCounter, int>());
    }

    [Fact]
    public void ExecuteAsync_ZeroDelay_DoesNotWaitNorLookAtTheClock()
    {
        var time = new ManualTimeProvider();
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.Zero, Jitter = RetryJitter.None, TimeProvider = time });
        ValueTask<int> call = policy.ExecuteAsync(FailOnce, new Counter());
        Assert.True(call.IsCompleted);
        Assert.Equal(2, Completed(call));
        Assert.Equal(0, time.ActiveTimers);
    }

    [Fact]
    public async Task ExecuteAsync_OnAWheel_ResumesAtTheDueTime()
    {
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Ms(1), time);
        var counter = new WheelCounter();
        ValueTask<int> call = Policy(time, wheel).ExecuteAsync(static (c, _) => ++c.Calls == 1 ? throw Failure : new ValueTask<int>(c.Calls), counter);
        Assert.False(call.IsCompleted);
        Assert.Equal(0, time.ActiveTimers); // on the wheel, no TimeProvider timer

        time.Advance(Ms(99));
        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount);
        time.Advance(Ms(2));
        wheel.Advance();
        Assert.Equal(1, wheel.FiredCount);
        Assert.Equal(2, await call.AsTask().WaitAsync(Generous)); // resumed on the thread pool, never on the wheel's thread
    }

    [Fact]
    public async Task ExecuteAsync_OnAWheel_CancelledDuringTheWait_CancelsTheTimerAndThrowsTheCallersToken()
    {
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Ms(1), time);
        using var cts = new CancellationTokenSource();
        var counter = new Counter();
        ValueTask<int> call = Policy(time, wheel).ExecuteAsync(FailOnce, counter, cts.Token);

        cts.Cancel();
        var error = await Assert.ThrowsAsync<TaskCanceledException>(() => call.AsTask().WaitAsync(Generous));
        Assert.Equal(cts.Token, error.CancellationToken);
        time.Advance(Ms(1000));
        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount);
        Assert.Equal(1, wheel.CancelledCount);
        Assert.Equal(1, counter.Calls);
    }

    [Fact]
    public void ExecuteAsync_ClockTimerLosesToTheToken_DoesNotEndTheRecycledOperationsNextWait()
    {
        // The token is cancelled inside the timer's callback, just before the wait's own callback runs: the cancellation
        // wins and completes the call, whose operation goes back to the pool; a second call rents it and parks on a new
        // wait, all before the first wait's callback runs. That callback must lose (its stamp's generation is the first
        // wait's): the second call still waits its full delay.
        var inner = new ManualTimeProvider();
        var time = new HookedTimeProvider(inner);
        RetryPolicy policy = Policy(time);
        using var cts = new CancellationTokenSource();
        var first = new StampCounter();
        var second = new StampCounter();
        Func<StampCounter, CancellationToken, ValueTask<int>> action = static (c, _) => ++c.Calls == 1 ? throw Failure : new ValueTask<int>(c.Calls);
        ValueTask<int> firstCall = policy.ExecuteAsync(action, first, cts.Token);
        ValueTask<int> secondCall = default;
        bool firstCancelled = false;
        time.BeforeFire = () =>
        {
            time.BeforeFire = null;
            cts.Cancel();
            try
            {
                firstCall.GetAwaiter().GetResult(); // completed by the cancellation, here: the operation goes back to its pool
            }
            catch (TaskCanceledException error) when (error.CancellationToken == cts.Token)
            {
                firstCancelled = true;
            }

            Assert.Equal(1, PooledOperations<StampCounter, int>());
            secondCall = policy.ExecuteAsync(action, second); // rents that operation and parks on its next wait
            Assert.Equal(0, PooledOperations<StampCounter, int>());
        };

        inner.Advance(Ms(100)); // the first wait's timer: the hook, then its own (stale) callback
        Assert.True(firstCancelled);
        Assert.Equal(1, first.Calls);
        Assert.False(secondCall.IsCompleted); // the stale callback did not end the second wait
        Assert.Equal(1, second.Calls);

        inner.Advance(Ms(99));
        Assert.False(secondCall.IsCompleted);
        inner.Advance(Ms(1));
        Assert.True(secondCall.IsCompleted);
        Assert.Equal(2, Completed(secondCall));
        Assert.Equal(1, PooledOperations<StampCounter, int>());
        Assert.Equal(0, inner.ActiveTimers);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ExecuteAsync_WheelTimerRacesTheToken_OneEndsTheWaitAndTheOperationIsReturnedOnce(bool cancellerFirst)
    {
        // A timer on the same wheel tick cancels the token: both timers go into one fire batch, so whichever callback the
        // wheel runs second meets a wait the first one ended. The token winning means the wait's wheel timer could not be
        // cancelled (it is firing): its callback, the loser, still holds the operation and returns it to the pool, once.
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Ms(1), time);
        using var cts = new CancellationTokenSource();
        RetryPolicy policy = Policy(time, wheel);
        var counter = new RaceCounter();
        Func<RaceCounter, CancellationToken, ValueTask<int>> action = static (c, _) => Interlocked.Increment(ref c.Calls) == 1 ? throw Failure : new ValueTask<int>(2);
        if (cancellerFirst)
        {
            wheel.Schedule(Ms(100), static s => ((CancellationTokenSource)s!).Cancel(), cts);
        }

        ValueTask<int> call = policy.ExecuteAsync(action, counter, cts.Token);
        if (!cancellerFirst)
        {
            wheel.Schedule(Ms(100), static s => ((CancellationTokenSource)s!).Cancel(), cts);
        }

        time.Advance(Ms(102));
        wheel.Advance();
        Assert.Equal(2, wheel.FiredCount);

        Task<int> outcome = call.AsTask();
        try
        {
            Assert.Equal(2, await outcome.WaitAsync(Generous)); // the timer won, and the next attempt ran before the cancellation
            Assert.Equal(2, Volatile.Read(ref counter.Calls));
        }
        catch (OperationCanceledException error)
        {
            Assert.Equal(cts.Token, error.CancellationToken); // the token won (or cancelled the next attempt's start)
            Assert.Equal(1, Volatile.Read(ref counter.Calls));
        }

        Assert.Equal(1, PooledOperations<RaceCounter, int>()); // returned exactly once, by the wait or by the losing callback

        // The recycled operation waits its full delay again.
        var next = new RaceCounter();
        ValueTask<int> again = policy.ExecuteAsync(action, next);
        time.Advance(Ms(99));
        wheel.Advance();
        Assert.False(again.IsCompleted);
        time.Advance(Ms(3));
        wheel.Advance();
        Assert.Equal(2, await again.AsTask().WaitAsync(Generous));
        Assert.Equal(1, PooledOperations<RaceCounter, int>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ExecuteAsync_WheelTimerLosesToTheToken_DoesNotTouchTheRecycledOperation(bool cancellerFirst)
    {
        // As above, and the canceller also takes the call's result (its operation is released) and starts a second call,
        // all before the wait's own wheel callback runs in the same batch. That callback still holds the first operation:
        // it must not have gone back to the pool (the second call gets another), and the callback, which reads the
        // operation's current generation, must not end the second call's wait.
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(Ms(1), time);
        using var cts = new CancellationTokenSource();
        RetryPolicy policy = Policy(time, wheel);
        Func<RecycleCounter, CancellationToken, ValueTask<int>> action = static (c, _) => Interlocked.Increment(ref c.Calls) == 1 ? throw Failure : new ValueTask<int>(2);
        var first = new RecycleCounter();
        var second = new RecycleCounter();
        ValueTask<int> firstCall = default;
        ValueTask<int> secondCall = default;
        bool cancelWon = false;
        Action<object?> canceller = _ =>
        {
            cts.Cancel();
            if (firstCall.IsCompleted) // the token ended the wait (resumed inline): the wait's timer has not run yet
            {
                cancelWon = true;
                Assert.Throws<TaskCanceledException>(() => firstCall.GetAwaiter().GetResult()); // releases the operation
                secondCall = policy.ExecuteAsync(action, second);
            }
        };

        if (cancellerFirst)
        {
            wheel.Schedule(Ms(100), canceller, null);
        }

        firstCall = policy.ExecuteAsync(action, first, cts.Token);
        if (!cancellerFirst)
        {
            wheel.Schedule(Ms(100), canceller, null);
        }

        time.Advance(Ms(102));
        wheel.Advance();
        Assert.Equal(2, wheel.FiredCount);
        Assert.True(cancelWon, "the canceller did not run before the wait's timer in the fire batch: this test needs it first (the wheel's batch order, deterministic, changed?)");
        Assert.Equal(1, PooledOperations<RecycleCounter, int>()); // the first operation, returned by its timer's callback after the second call rented another
        Assert.False(secondCall.IsCompleted); // the stale callback did not end the second wait
        time.Advance(Ms(97));
        wheel.Advance();
        Assert.False(secondCall.IsCompleted);
        time.Advance(Ms(5));
        wheel.Advance();
        Assert.Equal(2, await secondCall.AsTask().WaitAsync(Generous));
        Assert.Equal(2, PooledOperations<RecycleCounter, int>());
    }

    [Fact]
    public async Task ExecuteAsync_WheelDisposedUnderTheWait_FinishesOnTheClockAndReturnsTheOperationOnce()
    {
        var time = new ManualTimeProvider();
        var wheel = new HierarchicalTimerWheel(Ms(1), time);
        var counter = new DisposeCounter();
        ValueTask<int> call = Policy(time, wheel).ExecuteAsync(static (c, _) => ++c.Calls == 1 ? throw Failure : new ValueTask<int>(c.Calls), counter);
        time.Advance(Ms(40));
        wheel.Dispose(); // the wait moves to a clock timer for the 60 ms left (resumed on the pool, then parked again)
        DateTime deadline = DateTime.UtcNow + Generous;
        while (time.ActiveTimers == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the wait did not move to the clock");
            await Task.Delay(1);
        }

        time.Advance(Ms(59));
        Assert.False(call.IsCompleted);
        time.Advance(Ms(1));
        Assert.Equal(2, await call.AsTask().WaitAsync(Generous));
        Assert.Equal(0, time.ActiveTimers);
        Assert.Equal(1, PooledOperations<DisposeCounter, int>());
    }

    /// <summary>Per-test state types: each gives the test its own operation pool.</summary>
    private sealed class Counter
    {
        public int Calls;
    }

    private sealed class CancelCounter
    {
        public int Calls;
    }

    private sealed class WheelCounter
    {
        public int Calls;
    }

    private sealed class StampCounter
    {
        public int Calls;
    }

    private sealed class RaceCounter
    {
        public int Calls;
    }

    private sealed class RecycleCounter
    {
        public int Calls;
    }

    private sealed class DisposeCounter
    {
        public int Calls;
    }

    /// <summary>A manual clock whose timers run <see cref="BeforeFire"/> just before their callback.</summary>
    private sealed class HookedTimeProvider(ManualTimeProvider inner) : TimeProvider
    {
        public Action? BeforeFire { get; set; }

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => inner.GetTimestamp();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(
                s =>
                {
                    BeforeFire?.Invoke();
                    callback(s);
                },
                state,
                dueTime,
                period);
    }
}
