using System.Runtime.CompilerServices;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// The library's long-lived internal timers (a bucket's pump, a queue's wake-up) are created by the first caller that
/// waits, inside that caller's request; they must not capture its <see cref="ExecutionContext"/>. Before, on
/// <see cref="TimeProvider.System"/> the timer kept the first waiter's AsyncLocal values reachable for the life of the
/// bucket or queue (typically the application's).
/// </summary>
public sealed class InternalTimerContextTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);
    private static readonly AsyncLocal<object?> Ambient = new();

    [Fact]
    public void TokenBucket_FirstQueuedWaiter_ItsContextIsNotKeptByTheBucket()
    {
        var bucket = new TokenBucket(capacity: 1, tokensPerSecond: 20, fastPathBatch: 1); // 50 ms per token
        Assert.True(bucket.TryAcquire());

        WeakReference held = RunWithAmbient(() => Assert.True(bucket.AcquireAsync(1).AsTask().Wait(Generous))); // queues: the pump's timer is created here

        AssertCollected(held);
        GC.KeepAlive(bucket);
    }

    [Fact]
    public void DelayQueue_FirstParkedReader_ItsContextIsNotKeptByTheQueue()
    {
        using var queue = new DelayQueue<int>(4);
        Assert.True(queue.TryEnqueue(7, TimeSpan.FromMilliseconds(30)).IsSuccess);

        WeakReference held = RunWithAmbient(() => Assert.Equal(7, queue.DequeueAsync().AsTask().Result)); // parks: the wake-up's timer is created here

        AssertCollected(held);
        GC.KeepAlive(queue);
    }

    private static void AssertCollected(WeakReference held)
    {
        for (int i = 0; i < 3 && held.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.False(held.IsAlive, "an internal timer holds the first waiter's context");
    }

    /// <summary>Runs <paramref name="body"/> on a fresh thread whose context holds a new object; a weak reference to it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference RunWithAmbient(Action body)
    {
        WeakReference? reference = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                var value = new object();
                reference = new WeakReference(value);
                Ambient.Value = value;
                body();
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        });
        thread.UnsafeStart(); // the test's own context does not flow in
        Assert.True(thread.Join(Generous));
        Assert.Null(failure);
        return reference!;
    }
}
