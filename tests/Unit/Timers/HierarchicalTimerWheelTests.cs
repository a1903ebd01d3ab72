using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Deterministic tests on a <see cref="ManualTimeProvider"/> with a 1 ms tick: due ticks across every level
/// (cascades included), never early, the documented lateness, cancel semantics, stale handles, failing
/// callbacks, bad arguments, the pool bound, allocation, Dispose.
/// </summary>
public sealed class HierarchicalTimerWheelTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    private readonly ManualTimeProvider _clock = new();

    public static TheoryData<long> DueTicksAcrossLevels => new()
    {
        0, 1, 2, 62, 63, 64, 65, 127, 4094, 4095, 4096, 4097, 262_143, 262_144, 262_145, 300_000,
        (1L << 24) - 2, (1L << 24) + 5, (1L << 30) + 12_345, (1L << 36) + 7,
    };

    [Theory]
    [MemberData(nameof(DueTicksAcrossLevels))]
    public void Schedule_AnyLevel_FiresExactlyAtDueTickAfterCascades(long dueTicks)
    {
        foreach (long startTick in new long[] { 0, 63, 4095 + 17 })
        {
            using var wheel = new HierarchicalTimerWheel(Tick, _clock);
            AdvanceTicks(wheel, startTick - wheel.CurrentTick);
            int fired = 0;
            wheel.Schedule(TimeSpan.FromTicks(dueTicks * Tick.Ticks), _ => fired++, null);
            long due = startTick + 1 + dueTicks;

            // A few uneven jumps (each crossing cascade points), then single ticks up to the due tick.
            long remaining = due - 1 - startTick;
            foreach (long part in new[] { remaining / 3, remaining / 5, remaining / 7 })
            {
                AdvanceTicks(wheel, part);
            }

            AdvanceTicks(wheel, due - 1 - wheel.CurrentTick);
            Assert.Equal(due - 1, wheel.CurrentTick);
            Assert.Equal(0, fired);
            AdvanceTicks(wheel, 1);
            Assert.Equal(1, fired);
            AdvanceTicks(wheel, 200);
            Assert.Equal(1, fired);
            Assert.Equal(0, wheel.PendingCount);
        }
    }

    [Fact]
    public void Schedule_FractionalDueIn_NeverEarlyAndAtMostTwoTicksLate()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        var rng = new Random(42);
        for (int i = 0; i < 200; i++)
        {
            // Clock mid-tick, dueIn a fraction of ticks: fire time must lie in [scheduled + dueIn, scheduled + dueIn + 2 ticks].
            _clock.Advance(TimeSpan.FromTicks(rng.Next(0, 10_000)));
            wheel.Advance();
            long scheduledAt = _clock.GetTimestamp();
            var dueIn = TimeSpan.FromTicks(rng.Next(0, 2_000_000));
            long firedAt = -1;
            wheel.Schedule(dueIn, _ => firedAt = _clock.GetTimestamp(), null);
            while (firedAt < 0)
            {
                _clock.Advance(TimeSpan.FromTicks(1_000)); // a tenth of a tick
                wheel.Advance();
            }

            long late = firedAt - (scheduledAt + dueIn.Ticks);
            Assert.InRange(late, 0, (2 * Tick.Ticks) + 1_000);
        }
    }

    [Fact]
    public void ScheduleAt_AbsoluteTimestamp_FiresAtFirstTickAtOrAfterIt()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        long origin = _clock.GetTimestamp();
        AdvanceTicks(wheel, 10);
        long firedAt = -1;
        long target = origin + (25 * Tick.Ticks) + 3; // 3 TimeSpan ticks into tick 25: due at tick 26
        wheel.ScheduleAt(target, _ => firedAt = _clock.GetTimestamp(), null);
        AdvanceTicks(wheel, 15); // tick 25: not yet
        Assert.Equal(-1, firedAt);
        AdvanceTicks(wheel, 1);
        Assert.Equal(origin + (26 * Tick.Ticks), firedAt);

        bool pastFired = false;
        wheel.ScheduleAt(origin, _ => pastFired = true, null); // already past: the next advance
        wheel.Advance();
        Assert.True(pastFired);

        Assert.Throws<ArgumentNullException>(() => wheel.ScheduleAt(target, null!, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.ScheduleAt(long.MaxValue, _ => { }, null));
    }

    [Fact]
    public void TimerNode_Size_Is48Bytes() =>
        Assert.Equal(48, System.Runtime.CompilerServices.Unsafe.SizeOf<LockFree.Timers.TimerNode>()); // the per-timer figure in docs/timers.md

    [Fact]
    public void WheelClock_Fields_StartOneCacheLineInOfTwo()
    {
        Assert.Equal(2 * LockFree.Internal.CacheLine.Size, System.Runtime.CompilerServices.Unsafe.SizeOf<LockFree.Timers.WheelClock>());
        var clock = default(LockFree.Timers.WheelClock);
        ref byte start = ref System.Runtime.CompilerServices.Unsafe.As<LockFree.Timers.WheelClock, byte>(ref clock);
        Assert.Equal(LockFree.Internal.CacheLine.Size, LockFree.Internal.FieldLayout.Offset(ref start, ref clock.Tick));
    }

    [Fact]
    public void Advance_ReturnsFiredCount_AndFiresEachOnce()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        var counts = new int[100];
        for (int i = 0; i < counts.Length; i++)
        {
            wheel.Schedule(TimeSpan.FromMilliseconds(i % 10), s => counts[(int)s!]++, i);
        }

        Assert.Equal(0, wheel.Advance());
        _clock.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(100, wheel.Advance());
        Assert.All(counts, c => Assert.Equal(1, c));
        Assert.Equal(100, wheel.FiredCount);
    }

    [Fact]
    public void Cancel_BeforeTakenIn_ReturnsTrueAndNeverFires()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        bool fired = false;
        TimerHandle h = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => fired = true, null);
        Assert.True(wheel.Cancel(h));
        Assert.False(wheel.Cancel(h));
        AdvanceTicks(wheel, 100);
        Assert.False(fired);
        Assert.Equal(0, wheel.PendingCount);
    }

    [Fact]
    public void Cancel_AfterLinked_ReturnsTrueUnlinksAndNeverFires()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        bool fired = false;
        TimerHandle h = wheel.Schedule(TimeSpan.FromSeconds(10), _ => fired = true, null);
        TimerHandle other = wheel.Schedule(TimeSpan.FromSeconds(10), _ => { }, null);
        wheel.Advance();
        Assert.Equal(2, wheel.PendingCount);
        Assert.True(wheel.Cancel(h));
        Assert.False(wheel.Cancel(h));
        wheel.Advance();
        Assert.Equal(1, wheel.PendingCount);
        AdvanceTicks(wheel, 20_000);
        Assert.False(fired);
        Assert.False(wheel.Cancel(other)); // fired
    }

    [Fact]
    public void Cancel_LinkedThenExpiringInSameAdvance_CancelWins()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        bool fired = false;
        TimerHandle h = wheel.Schedule(TimeSpan.FromMilliseconds(3), _ => fired = true, null);
        wheel.Advance();
        Assert.True(wheel.Cancel(h)); // on the inbox as CancelQueued while its slot expires in the next advance
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(0, wheel.Advance());
        Assert.False(fired);
        Assert.Equal(0, wheel.PendingCount);
    }

    [Fact]
    public void Cancel_AfterFire_ReturnsFalse()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        TimerHandle h = wheel.Schedule(TimeSpan.Zero, _ => { }, null);
        AdvanceTicks(wheel, 2);
        Assert.Equal(1, wheel.FiredCount);
        Assert.False(wheel.Cancel(h));
    }

    [Fact]
    public void Cancel_StaleHandleOfReusedNode_ReturnsFalseAndLeavesNewTimer()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock, maxTimers: 1);
        TimerHandle old = wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => { }, null);
        Assert.True(wheel.Cancel(old));
        wheel.Advance(); // the node returns to the pool
        bool fired = false;
        TimerHandle fresh = wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => fired = true, null);
        Assert.NotEqual(old, fresh); // same node (the pool holds one), new generation
        Assert.False(wheel.Cancel(old));
        AdvanceTicks(wheel, 5);
        Assert.True(fired);
    }

    [Fact]
    public void Cancel_DefaultHandle_ReturnsFalse()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => { }, null);
        Assert.False(default(TimerHandle).IsAllocated);
        Assert.False(wheel.Cancel(default));
        Assert.Equal(1, AdvanceTicks(wheel, 5));
    }

    [Fact]
    public void Callback_OwnHandleCancel_ReturnsFalse()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        TimerHandle self = default;
        bool? cancelled = null;
        self = wheel.Schedule(TimeSpan.Zero, _ => cancelled = wheel.Cancel(self), null);
        AdvanceTicks(wheel, 2);
        Assert.False(cancelled);
    }

    [Fact]
    public void Callback_Throws_WheelKeepsFiringAndReports()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        var reported = new List<Exception>();
        wheel.CallbackFailed += (sender, ex) =>
        {
            Assert.Same(wheel, sender);
            reported.Add(ex);
        };
        int ok = 0;
        wheel.Schedule(TimeSpan.FromMilliseconds(2), _ => ok++, null);
        wheel.Schedule(TimeSpan.FromMilliseconds(2), _ => throw new InvalidOperationException("boom"), null);
        wheel.Schedule(TimeSpan.FromMilliseconds(2), _ => ok++, null);
        wheel.Schedule(TimeSpan.FromMilliseconds(9), _ => ok++, null);
        Assert.Equal(3, AdvanceTicks(wheel, 5));
        Assert.Equal(2, ok);
        Assert.Equal(1, wheel.FailedCallbackCount);
        Assert.Equal("boom", Assert.Single(reported).Message);
        AdvanceTicks(wheel, 10);
        Assert.Equal(3, ok);
    }

    [Fact]
    public void Callback_ThrowingFailureHandler_IsSwallowed()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        wheel.CallbackFailed += (_, _) => throw new InvalidOperationException("handler");
        int ok = 0;
        wheel.Schedule(TimeSpan.Zero, _ => throw new InvalidOperationException("boom"), null);
        wheel.Schedule(TimeSpan.Zero, _ => ok++, null);
        AdvanceTicks(wheel, 2);
        Assert.Equal(1, ok);
        Assert.Equal(1, wheel.FailedCallbackCount);
    }

    [Fact]
    public void Callback_RunsOutsideInternalLock_AnotherThreadCanAdvance()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        bool otherAdvanced = false;
        wheel.Schedule(TimeSpan.Zero, _ =>
        {
            // If the callback held the wheel's gate, this thread would block on it and the join would time out.
            var other = new Thread(() =>
            {
                wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => { }, null);
                wheel.Advance();
                otherAdvanced = true;
            });
            other.Start();
            Assert.True(other.Join(TimeSpan.FromSeconds(30)), "Advance on another thread blocked while a callback ran");
        }, null);
        AdvanceTicks(wheel, 2);
        Assert.True(otherAdvanced);
    }

    [Fact]
    public void Callback_SchedulesAndAdvancesReentrantly()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        int chain = 0;
        void Step(object? _)
        {
            if (++chain < 5)
            {
                wheel.Schedule(TimeSpan.Zero, Step, null);
                wheel.Advance();
            }
        }

        wheel.Schedule(TimeSpan.Zero, Step, null);
        for (int i = 0; i < 10; i++)
        {
            AdvanceTicks(wheel, 1);
        }

        Assert.Equal(5, chain);
    }

    [Fact]
    public void Constructor_BadArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HierarchicalTimerWheel(TimeSpan.Zero, _clock));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HierarchicalTimerWheel(TimeSpan.FromTicks(-1), _clock));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HierarchicalTimerWheel(Tick, _clock, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HierarchicalTimerWheel(Tick, _clock, -5));
        using var wheel = new HierarchicalTimerWheel(Tick);
        Assert.Same(TimeProvider.System, wheel.TimeProvider);
        Assert.Equal(Tick, wheel.TickDuration);
    }

    [Fact]
    public void Schedule_BadArguments_ThrowAndWheelStaysUsable()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        Assert.Throws<ArgumentNullException>(() => wheel.Schedule(TimeSpan.FromMilliseconds(1), null!, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.Schedule(TimeSpan.FromTicks(-1), _ => { }, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.Schedule(TimeSpan.MinValue, _ => { }, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.Schedule(wheel.MaxDueIn + Tick, _ => { }, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => wheel.Schedule(TimeSpan.MaxValue, _ => { }, null));
        wheel.Schedule(wheel.MaxDueIn, _ => { }, null);
        bool fired = false;
        wheel.Schedule(TimeSpan.FromMilliseconds(1), _ => fired = true, null);
        AdvanceTicks(wheel, 3);
        Assert.True(fired);
        Assert.Equal(1, wheel.PendingCount);
    }

    [Fact]
    public void Schedule_BeyondMaxTimers_ThrowsUntilNodesReturn()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock, maxTimers: 1500);
        var handles = new List<TimerHandle>();
        for (int i = 0; i < 1500; i++)
        {
            handles.Add(wheel.Schedule(TimeSpan.FromSeconds(1), _ => { }, null));
        }

        Assert.Throws<InvalidOperationException>(() => wheel.Schedule(TimeSpan.FromSeconds(1), _ => { }, null));
        Assert.True(wheel.Cancel(handles[7]));
        Assert.Throws<InvalidOperationException>(() => wheel.Schedule(TimeSpan.FromSeconds(1), _ => { }, null)); // not reclaimed yet
        wheel.Advance();
        wheel.Schedule(TimeSpan.FromSeconds(1), _ => { }, null);
        wheel.Advance();
        Assert.Equal(1500, wheel.PendingCount);
    }

    [Fact]
    public void ScheduleCancel_SteadyState_AllocatesNothing()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        Action<object?> callback = static _ => { };
        object state = new();
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10_000; i++)
            {
                TimerHandle h = wheel.Schedule(TimeSpan.FromSeconds(1 + (i & 7)), callback, state);
                wheel.Cancel(h);
                if ((i & 255) == 0)
                {
                    TimerHandle linked = wheel.Schedule(TimeSpan.FromSeconds(2), callback, state);
                    wheel.Advance();
                    wheel.Cancel(linked);
                    wheel.Advance();
                }
            }

            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (round > 0)
            {
                Assert.Equal(0, allocated); // round 0 warms up the JIT and grows nothing beyond the first chunk
            }
        }
    }

    [Fact]
    public void Dispose_DropsAndCountsPending_ThenRejects()
    {
        var wheel = new HierarchicalTimerWheel(Tick, _clock);
        bool fired = false;
        TimerHandle linked = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => fired = true, null);
        wheel.Schedule(TimeSpan.FromMilliseconds(500), _ => fired = true, null);
        wheel.Advance();
        TimerHandle queued = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => fired = true, null);
        TimerHandle cancelled = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => fired = true, null);
        Assert.True(wheel.Cancel(cancelled));
        wheel.Dispose();
        wheel.Dispose(); // idempotent
        Assert.Equal(3, wheel.DroppedCount);
        Assert.False(wheel.Cancel(linked));
        Assert.False(wheel.Cancel(queued));
        Assert.Throws<ObjectDisposedException>(() => wheel.Schedule(TimeSpan.Zero, _ => { }, null));
        Assert.Throws<ObjectDisposedException>(() => wheel.Advance());
        Assert.Throws<ObjectDisposedException>(() => wheel.StartDriver());
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(fired);
    }

    [Fact]
    public void Driver_WithManualClock_FiresWhenClockReachesDueAndStopsOnDispose()
    {
        var wheel = new HierarchicalTimerWheel(Tick, _clock);
        wheel.StartDriver();
        Assert.True(wheel.IsDriverRunning);
        Assert.Throws<InvalidOperationException>(() => wheel.StartDriver());
        Assert.Throws<InvalidOperationException>(() => wheel.Advance());
        using var first = new ManualResetEventSlim();
        using var second = new ManualResetEventSlim();
        wheel.Schedule(TimeSpan.FromMilliseconds(500), _ => second.Set(), null);
        wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => first.Set(), null); // earlier than the driver's plan: wakes it
        WaitUntil(() => _clock.ActiveTimers > 0 && wheel.PendingCount == 2);
        Assert.False(first.IsSet);
        for (int i = 0; i < 20 && !first.IsSet; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(1)); // fires the driver's wake-up timer when due
            first.Wait(TimeSpan.FromMilliseconds(20));
        }

        Assert.True(first.Wait(TimeSpan.FromSeconds(30)), "the driver did not fire the 5 ms timer");
        Assert.False(second.IsSet);
        for (int i = 0; i < 60 && !second.IsSet; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(10));
            second.Wait(TimeSpan.FromMilliseconds(20));
        }

        Assert.True(second.Wait(TimeSpan.FromSeconds(30)), "the driver did not fire the 500 ms timer");
        wheel.Dispose();
        Assert.False(wheel.IsDriverRunning);
    }

    [Fact]
    public void Driver_FarTimer_SleepsInsteadOfTicking()
    {
        using var wheel = new HierarchicalTimerWheel(Tick, _clock);
        wheel.StartDriver();
        using var fired = new ManualResetEventSlim();
        wheel.Schedule(TimeSpan.FromSeconds(10), _ => fired.Set(), null); // due at tick 10,001; cascades at 8192
        WaitUntil(() => wheel.PendingCount == 1);
        Thread.Sleep(50); // let the driver go to sleep
        long passes = wheel.DriverPasses;
        for (int i = 0; i < 100; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(50)); // 5 s in 50 ms steps: no expiry, no cascade
        }

        Thread.Sleep(50);
        Assert.Equal(passes, wheel.DriverPasses);
        for (int i = 0; i < 600 && !fired.IsSet; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(10));
            fired.Wait(TimeSpan.FromMilliseconds(5));
        }

        Assert.True(fired.Wait(TimeSpan.FromSeconds(30)));
        Assert.InRange(wheel.DriverPasses - passes, 1, 20); // the cascade, the expiry, maybe a few spurious wake-ups
    }

    [Fact]
    public void Driver_WithSystemClock_FiresSoon()
    {
        using var wheel = new HierarchicalTimerWheel(Tick);
        wheel.StartDriver();
        using var done = new ManualResetEventSlim();
        var started = System.Diagnostics.Stopwatch.StartNew();
        wheel.Schedule(TimeSpan.FromMilliseconds(20), _ => done.Set(), null);
        Assert.True(done.Wait(TimeSpan.FromSeconds(30)));
        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(20), $"fired early: {started.Elapsed}");
    }

    private int AdvanceTicks(HierarchicalTimerWheel wheel, long ticks)
    {
        _clock.Advance(TimeSpan.FromTicks(ticks * Tick.Ticks));
        return wheel.Advance();
    }

    private static void WaitUntil(Func<bool> condition)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "condition not reached in 30 s");
            Thread.Sleep(1);
        }
    }
}
