using LockFree.Internal;
using LockFree.Tests.Unit.Support;
using LockFree.Timers;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Review of the wheel's contract: handles of nodes whose 32-bit generation has its top bit set (a node reused
/// 2^31 times or more: hours of one hot thread's schedule/cancel churn). The generations are set directly on the
/// pool's free nodes, as if that churn had happened.
/// </summary>
public sealed class TimerWheelGenerationTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    private readonly ManualTimeProvider _clock = new();

    private static TimerWheelEngine<RealAtomics> WheelAtGeneration(ManualTimeProvider clock, uint generation)
    {
        var wheel = new TimerWheelEngine<RealAtomics>(Tick, clock, 1024);
        for (int i = 0; i < wheel.AllocatedNodes; i++)
        {
            wheel.Node(i).StateWord = (long)((ulong)generation << 32); // Free, that generation (no thread has scheduled yet)
        }

        return wheel;
    }

    [Theory]
    [InlineData(0x7FFF_FFFFu)]
    [InlineData(0x8000_0000u)]
    [InlineData(0xFFFF_FFFFu)]
    public void Cancel_NodeGenerationWithTopBitSet_StopsTheTimer(uint generation)
    {
        // Before, Cancel compared the state word's generation read with an arithmetic shift (sign-extended: negative
        // from 2^31 on) with the handle's unsigned one: every Cancel of such a node answered false as if the handle
        // were stale, and the timer fired anyway.
        var wheel = WheelAtGeneration(_clock, generation);
        int fired = 0;
        TimerHandle queued = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => Interlocked.Increment(ref fired), null);
        TimerHandle linked = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => Interlocked.Increment(ref fired), null);
        wheel.Advance(); // both taken in and linked
        TimerHandle queuedToo = wheel.Schedule(TimeSpan.FromMilliseconds(5), _ => Interlocked.Increment(ref fired), null);

        Assert.True(wheel.Cancel(linked));
        Assert.True(wheel.Cancel(queuedToo)); // still on the lane / inbox
        Assert.False(wheel.Cancel(linked)); // once
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(1, wheel.Advance()); // only the uncancelled one
        Assert.Equal(1, fired);
        Assert.False(wheel.Cancel(queued)); // fired: false
        Assert.Equal(2, wheel.CancelledCount);
        wheel.Dispose();
    }

    [Fact]
    public void Cancel_GenerationWrapsPastZero_StaleHandleStaysInertAndTheNewOneCancels()
    {
        var wheel = new TimerWheelEngine<RealAtomics>(Tick, _clock, 1); // one node: every schedule reuses it
        wheel.Node(0).StateWord = unchecked((long)(0xFFFF_FFFFUL << 32));
        TimerHandle old = wheel.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null);
        Assert.True(wheel.Cancel(old));
        wheel.Advance(); // reclaimed: the generation wraps, skipping 0
        TimerHandle next = wheel.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null);
        Assert.True(next.IsAllocated);
        Assert.NotEqual(old, next);
        Assert.False(wheel.Cancel(old)); // stale: never cancels the newer timer
        Assert.True(wheel.Cancel(next));
        wheel.Dispose();
    }
}
