using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Timers;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>A delay queue's polling calls as the linearizability scenarios drive them (fixed clock: delays in timestamp units).</summary>
internal interface IDelayQueueUnderTest
{
    /// <summary>TryEnqueue under the Reject policy: false when full.</summary>
    bool TryEnqueue(int value, long delay);

    /// <summary>TryDequeue; with <paramref name="parking"/>, the take of a reader about to park (arms the wake-up when the root is not due).</summary>
    bool TryDequeue(bool parking, out int value);
}

/// <summary>The consumer lock under the controlled scheduler: a CAS spin lock through the test atomics (the Monitor's mutual exclusion, with a scheduling point where it would block).</summary>
internal readonly struct TestSpinLock : IConsumerLock
{
    public static void Enter(ref long word, object monitor)
    {
        var spinner = default(SpinWait);
        while (TestAtomics.CompareExchange(ref word, 1, 0) != 0)
        {
            TestAtomics.SpinOnce(ref spinner);
        }
    }

    public static bool TryEnter(ref long word, object monitor) => TestAtomics.CompareExchange(ref word, 1, 0) == 0;

    public static void Exit(ref long word, object monitor) => TestAtomics.StoreRelease(ref word, 0);
}

/// <summary>
/// The library's <c>DelayQueueCore</c> over the test atomics, called exactly as
/// <see cref="DelayQueue{T}"/> calls it: TryEnqueue = reserve, read the clock, publish; TryDequeue = the lock-free
/// "nothing due" check, then the locked take, then the count's release. A parking take passes a wake-up arm (an
/// armed-time word through the seam, ending in a full fence, as the queue's ArmWakeup: a store, then a full fence).
/// </summary>
internal sealed class CoreUnderTest(int capacity, TimeProvider clock) : IDelayQueueUnderTest, IDelayWakeupArm
{
    private readonly DelayQueueCore<int, TestAtomics, TestSpinLock> _core = new(capacity, clock);
    private long _armedFor = long.MaxValue;

    public bool TryEnqueue(int value, long delay)
    {
        if (!_core.TryReserve())
        {
            return false;
        }

        long now = clock.GetTimestamp();
        _core.Publish(value, now, now + delay);
        return true;
    }

    /// <summary>
    /// TryEnqueue under DropOldest, as DelayQueue's EvictAndPublish runs it after a failed reservation: the core's
    /// evict-and-insert step, else a reservation when room appeared, else a spin for an enqueue in flight. Returns the
    /// evicted value, or null when the item was placed without an eviction.
    /// </summary>
    public int? EnqueueEvicting(int value, long delay)
    {
        if (TryEnqueue(value, delay))
        {
            return null;
        }

        long now = clock.GetTimestamp();
        var spinner = default(SpinWait);
        while (true)
        {
            if (_core.TryEvictRootAndInsert(value, now, now + delay, out int victim))
            {
                return victim;
            }

            if (_core.TryReserve())
            {
                _core.Publish(value, now, now + delay);
                return null;
            }

            TestAtomics.SpinOnce(ref spinner);
        }
    }

    public bool TryDequeue(bool parking, out int value)
    {
        if (!parking && _core.NothingDueLockFree())
        {
            value = 0;
            return false;
        }

        if (!_core.TryTake(out value, parking ? this : null))
        {
            return false;
        }

        _core.Release(1);
        return true;
    }

    bool IDelayWakeupArm.IsArmedFor(long due) => TestAtomics.LoadAcquire(ref _armedFor) == due;

    void IDelayWakeupArm.Arm(long due, long dueIn)
    {
        TestAtomics.StoreRelease(ref _armedFor, due);
        TestAtomics.FullFence();
    }
}
