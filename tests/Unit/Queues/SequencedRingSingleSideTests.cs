using LockFree.Internal;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// "MPSC: producers claim with an atomic instruction, the consumer uses none. SPMC the mirror" (issue 2; acceptance
/// audit, 2026-11-23). The one engine behind both (<see cref="SequencedRing{T, TAtomics, TProducers, TConsumers}"/>)
/// branches on its role policies, which an IL walk cannot tell apart, so it runs here over atomics that count the seam's
/// read-modify-write calls: on one thread, every single-side operation (single, batch, peek; empty, partial and full
/// answers, across the wrap) must count none, and the many side's operations must count some (the control).
/// </summary>
public sealed class SequencedRingSingleSideTests
{
    [Fact]
    public void Mpsc_ConsumerOperations_UseNoReadModifyWrite_ProducersDo()
    {
        var ring = new SequencedRing<long, RmwCountingAtomics, MultiRole, SingleRole>(4);
        (long producer, long consumer) = Exercise(ref ring, peek: true);

        Assert.Equal(0, consumer);
        Assert.True(producer > 0, "the many-producer side claimed without a read-modify-write: the count measures nothing");
    }

    [Fact]
    public void Spmc_ProducerOperations_UseNoReadModifyWrite_ConsumersDo()
    {
        var ring = new SequencedRing<long, RmwCountingAtomics, SingleRole, MultiRole>(4);
        (long producer, long consumer) = Exercise(ref ring, peek: false);

        Assert.Equal(0, producer);
        Assert.True(consumer > 0, "the many-consumer side claimed without a read-modify-write: the count measures nothing");
    }

    /// <summary>Laps of single and batch operations, each side's read-modify-write calls counted apart.</summary>
    private static (long Producer, long Consumer) Exercise<TP, TC>(ref SequencedRing<long, RmwCountingAtomics, TP, TC> ring, bool peek)
        where TP : struct, IRolePolicy
        where TC : struct, IRolePolicy
    {
        long producer = 0, consumer = 0, next = 0, expected = 0;
        Span<long> batch = stackalloc long[3];
        for (int lap = 0; lap < 50; lap++)
        {
            RmwCountingAtomics.Calls = 0;
            while (ring.TryEnqueue(next))
            {
                next++;
            }

            producer += RmwCountingAtomics.Calls; // ends with a "full" answer

            RmwCountingAtomics.Calls = 0;
            if (peek)
            {
                Assert.True(ring.TryPeek(out long head));
                Assert.Equal(expected, head);
            }

            Assert.True(ring.TryDequeue(out long first));
            Assert.Equal(expected++, first);
            int taken = ring.TryDequeueMany(batch);
            for (int i = 0; i < taken; i++)
            {
                Assert.Equal(expected++, batch[i]);
            }

            consumer += RmwCountingAtomics.Calls;

            RmwCountingAtomics.Calls = 0;
            for (int i = 0; i < batch.Length; i++)
            {
                batch[i] = next + i;
            }

            next += ring.TryEnqueueMany(batch);
            producer += RmwCountingAtomics.Calls;

            RmwCountingAtomics.Calls = 0;
            while (ring.TryDequeue(out long item))
            {
                Assert.Equal(expected++, item);
            }

            Assert.Equal(0, ring.TryDequeueMany(batch)); // empty answers too
            consumer += RmwCountingAtomics.Calls;
        }

        Assert.Equal(next, expected);
        return (producer, consumer);
    }
}

/// <summary>The real atomics, counting the seam's read-modify-write calls (CAS, add, lock) on the calling thread.</summary>
internal readonly struct RmwCountingAtomics : IAtomics
{
    [ThreadStatic]
    public static long Calls;

    public static long LoadAcquire(ref long location) => RealAtomics.LoadAcquire(ref location);

    public static void StoreRelease(ref long location, long value) => RealAtomics.StoreRelease(ref location, value);

    public static long CompareExchange(ref long location, long value, long comparand)
    {
        Calls++;
        return RealAtomics.CompareExchange(ref location, value, comparand);
    }

    public static long Add(ref long location, long value)
    {
        Calls++;
        return RealAtomics.Add(ref location, value);
    }

    public static T LoadPlain<T>(ref T location) => RealAtomics.LoadPlain(ref location);

    public static void StorePlain<T>(ref T location, T value) => RealAtomics.StorePlain(ref location, value);

    public static void CopyPlain<T>(ReadOnlySpan<T> source, Span<T> destination) => RealAtomics.CopyPlain(source, destination);

    public static void ClearPlain<T>(Span<T> destination) => RealAtomics.ClearPlain(destination);

    public static T LoadAcquireReference<T>(ref T location)
        where T : class? => RealAtomics.LoadAcquireReference(ref location);

    public static void StoreReleaseReference<T>(ref T location, T value)
        where T : class? => RealAtomics.StoreReleaseReference(ref location, value);

    public static T CompareExchangeReference<T>(ref T location, T value, T comparand)
        where T : class?
    {
        Calls++;
        return RealAtomics.CompareExchangeReference(ref location, value, comparand);
    }

    public static T LoadSpeculative<T>(ref T location) => RealAtomics.LoadSpeculative(ref location);

    public static bool EnterLock(object gate)
    {
        Calls++;
        return RealAtomics.EnterLock(gate);
    }

    public static void ExitLock(object gate, bool interrupted) => RealAtomics.ExitLock(gate, interrupted);

    public static bool TryEnterLock(object gate) => RealAtomics.TryEnterLock(gate);

    public static T LoadGuarded<T>(ref T location) => RealAtomics.LoadGuarded(ref location);

    public static void StoreGuarded<T>(ref T location, T value) => RealAtomics.StoreGuarded(ref location, value);

    public static void QueueWorkItem(IThreadPoolWorkItem item) => RealAtomics.QueueWorkItem(item);

    public static bool WaitEvent(ManualResetEventSlim signal, TimeSpan timeout) => RealAtomics.WaitEvent(signal, timeout);

    public static long GetTimestamp() => RealAtomics.GetTimestamp();

    public static void SetEvent(ManualResetEventSlim signal) => RealAtomics.SetEvent(signal);

    public static void RegisterCancellation(ref CancellationTokenRegistration registration, CancellationToken token, Action<object?> callback, object? state) =>
        RealAtomics.RegisterCancellation(ref registration, token, callback, state);

    public static bool UnregisterCancellation(ref CancellationTokenRegistration registration) => RealAtomics.UnregisterCancellation(ref registration);

    public static void DisposeCancellation(ref CancellationTokenRegistration registration) => RealAtomics.DisposeCancellation(ref registration);

    public static bool IsPlanted(PlantedFault fault) => false;

    public static void FullFence() => RealAtomics.FullFence();

    public static void ProcessWideBarrier() => RealAtomics.ProcessWideBarrier();

    public static void SpinOnce(ref SpinWait spinner) => RealAtomics.SpinOnce(ref spinner);

    public static void Pause(int iterations) => RealAtomics.Pause(Math.Min(iterations, 1));
}
