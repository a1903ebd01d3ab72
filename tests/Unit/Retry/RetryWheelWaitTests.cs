using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// <see cref="RetryPolicyOptions.TimerWheel"/> on a manually driven wheel that its owner advances only now and then
/// (review, 2026-11-23). The policy promises a wait never early; the wheel's relative Schedule counts from its last
/// advance, so a backoff scheduled long after that advance fired at once at the next one. A wait is now scheduled at
/// its absolute due time on the policy's clock (the reading the wait already takes), as the queues' wake-ups are.
/// </summary>
public sealed class RetryWheelWaitTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ExecuteAsync_OnAWheelLastAdvancedLongAgo_WaitNeverEarly()
    {
        var time = new ManualTimeProvider();
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        time.Advance(TimeSpan.FromSeconds(10)); // the wheel's owner has not advanced it since
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(100), Jitter = RetryJitter.None, TimeProvider = time, TimerWheel = wheel });
        int calls = 0;
        Task<int> run = policy.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException() : new ValueTask<int>(calls)).AsTask();
        Assert.Equal(1, calls); // failed at 10 s: the retry is due at 10.1 s

        wheel.Advance(); // the clock still reads 10 s
        Assert.Equal(0, wheel.FiredCount);

        time.Advance(TimeSpan.FromMilliseconds(99));
        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount);

        time.Advance(TimeSpan.FromMilliseconds(1)); // due now: fires at the first advance that reaches it
        wheel.Advance();
        Assert.Equal(1, wheel.FiredCount);
        Assert.Equal(2, await run.WaitAsync(Generous));
    }

    [Fact]
    public async Task ExecuteAsync_OnAWheelWhoseClockIsAboutToWrap_WaitNeverEarly()
    {
        // The absolute due time would pass long.MaxValue (a legal clock: only differences mean anything). The wheel
        // copes with the wrap in its own arithmetic; the wait must not turn into a due time "in the past".
        var clock = Timers.ClockOriginTests.ShiftedClock.Reading(long.MaxValue - TimeSpan.FromMilliseconds(50).Ticks);
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock);
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(100), Jitter = RetryJitter.None, TimeProvider = clock, TimerWheel = wheel });
        int calls = 0;
        Task<int> run = policy.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException() : new ValueTask<int>(calls)).AsTask();

        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount);
        clock.Inner.Advance(TimeSpan.FromMilliseconds(99)); // past the wrap now
        wheel.Advance();
        Assert.Equal(0, wheel.FiredCount);

        clock.Inner.Advance(TimeSpan.FromMilliseconds(3)); // at most a tick or two late
        wheel.Advance();
        Assert.Equal(1, wheel.FiredCount);
        Assert.Equal(2, await run.WaitAsync(Generous));
    }
}
