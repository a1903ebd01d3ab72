using System.Runtime.CompilerServices;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// The driver thread (and its sleep timer) must not capture the <see cref="ExecutionContext"/> of whoever started it.
/// The library's shared wheel (the timeouts of every timed asynchronous wait on <see cref="TimeProvider.System"/>) is
/// started by the first such wait in the process, inside some request's context: before, its AsyncLocal values
/// (an Activity, a user, a logging scope) stayed reachable for the life of the process and every callback on the
/// driver thread ran inside that request's context, a token bucket's refill timer created there capturing it again.
/// </summary>
public sealed class TimerWheelDriverContextTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);
    private static readonly AsyncLocal<object?> Ambient = new();

    [Fact]
    public void DriverCallback_WheelStartedUnderAnAsyncLocal_DoesNotSeeTheStartersValue()
    {
        var starterValue = new object();
        HierarchicalTimerWheel wheel = StartOnThreadWith(starterValue, out _);
        try
        {
            object? seen = "not run";
            using var fired = new ManualResetEventSlim();
            Assert.Null(Ambient.Value);
            wheel.Schedule(TimeSpan.FromMilliseconds(1), _ =>
            {
                seen = Ambient.Value;
                fired.Set();
            }, null);

            Assert.True(fired.Wait(Generous), "the callback never ran");
            Assert.Null(seen); // before: the starter's value
        }
        finally
        {
            wheel.Dispose();
        }
    }

    [Fact]
    public void StartDriver_UnderAnAsyncLocal_KeepsNothingOfThatContextAlive()
    {
        HierarchicalTimerWheel wheel = StartOnThreadWith(null, out WeakReference starterValue);
        try
        {
            for (int i = 0; i < 3 && starterValue.IsAlive; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            Assert.False(starterValue.IsAlive, "the driver thread or its sleep timer holds the starter's context");
        }
        finally
        {
            wheel.Dispose();
        }
    }

    /// <summary>Creates and starts a wheel on a fresh thread whose context holds <paramref name="value"/> (a new object when null).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static HierarchicalTimerWheel StartOnThreadWith(object? value, out WeakReference weak)
    {
        HierarchicalTimerWheel? wheel = null;
        WeakReference? reference = null;
        var starter = new Thread(() =>
        {
            object held = value ?? new object();
            reference = new WeakReference(held);
            Ambient.Value = held;
            wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1));
            wheel.StartDriver();
        });
        starter.UnsafeStart(); // the test's own context does not flow in
        Assert.True(starter.Join(Generous));
        weak = reference!;
        return wheel!;
    }
}
