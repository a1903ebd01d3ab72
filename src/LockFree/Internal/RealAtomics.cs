using System.Runtime.CompilerServices;

namespace LockFree.Internal;

/// <summary>
/// The production atomics policy: each member is the raw .NET primitive, aggressively inlined, so an
/// engine instantiated with it compiles to the same code as one written against
/// <see cref="Volatile"/> and <see cref="Interlocked"/> directly.
/// </summary>
internal readonly struct RealAtomics : IAtomics
{
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long LoadAcquire(ref long location) => Volatile.Read(ref location);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreRelease(ref long location, long value) => Volatile.Write(ref location, value);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long CompareExchange(ref long location, long value, long comparand) =>
        Interlocked.CompareExchange(ref location, value, comparand);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Add(ref long location, long value) => Interlocked.Add(ref location, value);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T LoadPlain<T>(ref T location) => location;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T LoadOwn<T>(ref T location) => location;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePlain<T>(ref T location, T value) => location = value;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CopyPlain<T>(ReadOnlySpan<T> source, Span<T> destination) => source.CopyTo(destination);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ClearPlain<T>(Span<T> destination) => destination.Clear();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ProcessWideBarrier() => Interlocked.MemoryBarrierProcessWide();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T LoadAcquireReference<T>(ref T location)
        where T : class? => Volatile.Read(ref location);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreReleaseReference<T>(ref T location, T value)
        where T : class? => Volatile.Write(ref location, value);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T CompareExchangeReference<T>(ref T location, T value, T comparand)
        where T : class? => Interlocked.CompareExchange(ref location, value, comparand);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T LoadSpeculative<T>(ref T location) => location;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void FullFence() => Interlocked.MemoryBarrier();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SpinOnce(ref SpinWait spinner) => spinner.SpinOnce(sleep1Threshold: -1);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pause(int iterations) => Thread.SpinWait(iterations);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool EnterLock(object gate) => InterruptDeferral.Enter(gate);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryEnterLock(object gate)
    {
        bool taken = false;
        Monitor.TryEnter(gate, ref taken); // never blocks, so never throws an interrupt
        return taken;
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ExitLock(object gate, bool interrupted) => InterruptDeferral.Exit(gate, interrupted);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T LoadGuarded<T>(ref T location) => location;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreGuarded<T>(ref T location, T value) => location = value;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void QueueWorkItem(IThreadPoolWorkItem item) => ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);

    /// <inheritdoc/>
    public static bool WaitEvent(ManualResetEventSlim signal, TimeSpan timeout) => signal.Wait(timeout);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long GetTimestamp() => System.Diagnostics.Stopwatch.GetTimestamp();

    /// <inheritdoc/>
    public static void SetEvent(ManualResetEventSlim signal) => InterruptDeferral.Set(signal);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RegisterCancellation(ref CancellationTokenRegistration registration, CancellationToken token, Action<object?> callback, object? state) =>
        registration = token.UnsafeRegister(callback, state);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool UnregisterCancellation(ref CancellationTokenRegistration registration) => registration.Unregister();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DisposeCancellation(ref CancellationTokenRegistration registration)
    {
        registration.Dispose();
        registration = default;
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsPlanted(PlantedFault fault) => false;
}
