using System.Reflection;
using System.Runtime.CompilerServices;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A wait whose value task is never awaited (never detached) must not stay registered on a long-lived cancellation
/// token after it ended: the wake-up unregisters it (Waiter, Arm and Execute), as the BCL's channels unregister at
/// completion. Before (session 10), each abandoned wait stayed reachable from the token until it was cancelled.
/// </summary>
public sealed class BackpressureAbandonedWaitTests
{
    private static readonly FieldInfo ValueTaskSource = typeof(ValueTask<bool>).GetField("_obj", BindingFlags.NonPublic | BindingFlags.Instance)!;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WaitToReadAsync_WokenButNeverAwaited_IsNotKeptAliveByTheToken(bool single)
    {
        using var cts = new CancellationTokenSource();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4, SingleWriter = single, SingleReader = single });
        var waits = new List<WeakReference>();
        for (int i = 0; i < 32; i++)
        {
            waits.Add(StartWokenAndAbandoned(buffer, cts.Token, i));
        }

        AssertAllCollected(waits);
        GC.KeepAlive(cts);
    }

    [Fact]
    public void WaitToWriteAsync_WokenButNeverAwaited_IsNotKeptAliveByTheToken()
    {
        using var cts = new CancellationTokenSource();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1 });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        var waits = new List<WeakReference>();
        for (int i = 0; i < 32; i++)
        {
            waits.Add(StartRoomWaitAndAbandon(buffer, cts.Token, i));
        }

        AssertAllCollected(waits);
        GC.KeepAlive(cts);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference StartWokenAndAbandoned(BackpressureBuffer<int> buffer, CancellationToken token, int item)
    {
        ValueTask<bool> wait = buffer.WaitToReadAsync(token);
        Assert.False(wait.IsCompleted); // parked: empty
        var source = new WeakReference(ValueTaskSource.GetValue(wait));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(item)); // wakes it
        Assert.True(buffer.TryRead(out _)); // empty again for the next one
        return source;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference StartRoomWaitAndAbandon(BackpressureBuffer<int> buffer, CancellationToken token, int item)
    {
        ValueTask<bool> wait = buffer.WaitToWriteAsync(token);
        Assert.False(wait.IsCompleted); // parked: full
        var source = new WeakReference(ValueTaskSource.GetValue(wait));
        Assert.True(buffer.TryRead(out _)); // room: wakes it
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(item)); // full again for the next one
        return source;
    }

    private static void AssertAllCollected(List<WeakReference> waits)
    {
        // The wake-ups run on the thread pool: poll, collecting, until every abandoned waiter is unreachable.
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            int alive = waits.Count(w => w.IsAlive);
            if (alive == 0)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{alive} of {waits.Count} abandoned waits are still reachable (registered on the token)");
            Thread.Sleep(10);
        }
    }
}
