using System.Runtime.CompilerServices;

namespace LockFree.Internal;

/// <summary>
/// The atomics seam: every shared-memory access of the lock-free algorithms goes through one of these
/// members, so the same algorithm code runs on real hardware and under the controlled scheduler.
/// </summary>
/// <remarks>
/// <para>
/// Engines are generic over <c>TAtomics : struct, IAtomics</c>. Because the type argument is a value
/// type, the JIT compiles a separate specialisation per policy and inlines the static members, so the
/// production policy <see cref="RealAtomics"/> costs exactly the raw instruction it stands for
/// (<c>benchmarks/Internal/SeamOverheadBenchmarks.cs</c> measures that). The test policy in
/// <c>tests/Concurrency</c> turns each call into a scheduling point and records it for race detection.
/// </para>
/// <para>
/// Vocabulary (see <c>docs/memory-model.md</c>): <em>acquire</em> loads and <em>release</em> stores map
/// to <see cref="Volatile"/>; read-modify-write operations map to <see cref="Interlocked"/> and are full
/// fences in .NET; <em>plain</em> accesses are ordinary loads and stores of shared memory whose safety is
/// argued at the call site (typically: ordered by an acquire/release pair on an index or sequence).
/// Accesses to memory that only one thread ever touches do not go through the seam.
/// </para>
/// </remarks>
internal interface IAtomics
{
    /// <summary>Acquire load: later accesses of this thread cannot move before it.</summary>
    static abstract long LoadAcquire(ref long location);

    /// <summary>Release store: earlier accesses of this thread cannot move after it.</summary>
    static abstract void StoreRelease(ref long location, long value);

    /// <summary>Compare-and-swap; a full fence. Returns the value seen before the operation.</summary>
    static abstract long CompareExchange(ref long location, long value, long comparand);

    /// <summary>Atomic add; a full fence. Returns the new value.</summary>
    static abstract long Add(ref long location, long value);

    /// <summary>Plain load of shared memory (a slot), ordered by a neighbouring acquire.</summary>
    static abstract T LoadPlain<T>(ref T location);

    /// <summary>
    /// Plain load of a location that no other thread can store to meanwhile (a single producer's own tail, a single
    /// writer's own counter, a counter stored only under a lock the caller holds), while other threads may read it. A
    /// plain <c>mov</c>; the thread sees its own stores in program order, on hardware from its store buffer. The test seam reads the thread's own buffered store and makes no
    /// scheduling point (no other thread can change the value); reading such a field directly would bypass its store
    /// buffer simulation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static virtual T LoadOwn<T>(ref T location) => location;

    /// <summary>Plain store to shared memory (a slot), published by a neighbouring release.</summary>
    static abstract void StorePlain<T>(ref T location, T value);

    /// <summary>Plain copy of a run of slots (to or from shared memory), ordered by a neighbouring acquire or release.</summary>
    static abstract void CopyPlain<T>(ReadOnlySpan<T> source, Span<T> destination);

    /// <summary>Plain clear of a run of shared slots, so the GC can reclaim what they referenced.</summary>
    static abstract void ClearPlain<T>(Span<T> destination);

    /// <summary>Acquire load of a reference (e.g. a buffer that growth replaces): later accesses of this thread cannot move before it.</summary>
    static abstract T LoadAcquireReference<T>(ref T location)
        where T : class?;

    /// <summary>Release store of a reference: everything written before it (e.g. a new buffer's contents) is visible to an acquire load that sees it.</summary>
    static abstract void StoreReleaseReference<T>(ref T location, T value)
        where T : class?;

    /// <summary>Compare-and-swap of a reference (full fence): stores <paramref name="value"/> if the location holds <paramref name="comparand"/>; returns what it held.</summary>
    static abstract T CompareExchangeReference<T>(ref T location, T value, T comparand)
        where T : class?;

    /// <summary>
    /// Speculative plain load of a slot that another thread may overwrite at the same time: the caller uses
    /// the value only after a later read-modify-write proves nobody else took it, and discards it otherwise
    /// (the thief's slot read in a Chase-Lev steal). A torn or stale value is harmless for that reason, so
    /// the race detector does not report it.
    /// </summary>
    static abstract T LoadSpeculative<T>(ref T location);

    /// <summary>Full (sequentially consistent) fence.</summary>
    static abstract void FullFence();

    /// <summary>
    /// A full fence on every thread of the process (<see cref="Interlocked.MemoryBarrierProcessWide"/>, as Linux
    /// membarrier): every other thread's pending stores become visible before it returns. Microseconds; for the
    /// rare side of an asymmetric handshake.
    /// </summary>
    static abstract void ProcessWideBarrier();

    /// <summary>One iteration of a wait loop (spin, then yield, then sleep).</summary>
    static abstract void SpinOnce(ref SpinWait spinner);

    /// <summary>
    /// Spins for <paramref name="iterations"/> normalized pause steps (<see cref="Thread.SpinWait"/>, about 40 ns each
    /// on the 2-vCPU VM), touching no shared memory and never yielding: a deliberate delay before a re-read, not a wait
    /// for a condition.
    /// </summary>
    static abstract void Pause(int iterations);

    /// <summary>
    /// Takes <paramref name="gate"/>'s lock (the monitor, through <see cref="InterruptDeferral"/>: an interrupt while
    /// blocked is deferred); returns whether one was, for <see cref="ExitLock"/>. For the short critical sections of the
    /// library's few locked structures (the waiter list), so the controlled scheduler can run them with a lock it controls.
    /// </summary>
    static abstract bool EnterLock(object gate);

    /// <summary>Releases <paramref name="gate"/>'s lock taken by <see cref="EnterLock"/>, then re-posts a deferred interrupt.</summary>
    static abstract void ExitLock(object gate, bool interrupted);

    /// <summary>
    /// Takes <paramref name="gate"/>'s lock if it is free (or already this thread's); never waits. True when taken: release
    /// it with <see cref="ExitLock"/> (no interrupt deferred). For a lock-free reader that must never wait on the lock's
    /// holders (the ack queue's retry hint).
    /// </summary>
    static abstract bool TryEnterLock(object gate);

    /// <summary>
    /// Plain load of memory guarded by a lock taken through <see cref="EnterLock"/> (a waiter list's links). Not a
    /// scheduling point under the controlled scheduler: a switch inside the locked section is the same as one at its
    /// edge for every thread that takes the lock, and an access by one that does not is a race the detector reports.
    /// </summary>
    static abstract T LoadGuarded<T>(ref T location);

    /// <summary>Plain store to memory guarded by a lock taken through <see cref="EnterLock"/> (see <see cref="LoadGuarded"/>).</summary>
    static abstract void StoreGuarded<T>(ref T location, T value);

    /// <summary>
    /// Queues <paramref name="item"/> on the thread pool (<see cref="ThreadPool.UnsafeQueueUserWorkItem(IThreadPoolWorkItem, bool)"/>,
    /// not local): a pooled waiter's wake-up. The test policy runs it inline and wakes the logical thread that waits for it.
    /// </summary>
    static abstract void QueueWorkItem(IThreadPoolWorkItem item);

    /// <summary>
    /// Blocks on <paramref name="signal"/> until it is set or <paramref name="timeout"/> passes (<see cref="ManualResetEventSlim.Wait(TimeSpan)"/>:
    /// a <see cref="Thread.Interrupt"/> throws <see cref="ThreadInterruptedException"/>); whether it was set. A synchronous
    /// waiter's park. The test policy blocks the logical thread until <see cref="SetEvent"/>; a finite timeout may pass
    /// at any of its scheduling points while the event is not set (the strategy chooses), and then moves
    /// <see cref="GetTimestamp"/> on by <paramref name="timeout"/> (session 19; before, the timeout never passed there).
    /// </summary>
    static abstract bool WaitEvent(ManualResetEventSlim signal, TimeSpan timeout);

    /// <summary>
    /// <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>: the clock of the synchronous waits' deadlines. The test
    /// policy, under a controlled run: a virtual clock that moves only when a timed <see cref="WaitEvent"/> times out, so
    /// a schedule's steps never depend on real time.
    /// </summary>
    static abstract long GetTimestamp();

    /// <summary>
    /// Sets <paramref name="signal"/> (through <see cref="InterruptDeferral.Set"/>: an interrupt is deferred, never thrown):
    /// the end of a synchronous waiter's wait. The test policy makes it a scheduling point and wakes the logical threads
    /// blocked in <see cref="WaitEvent"/>.
    /// </summary>
    static abstract void SetEvent(ManualResetEventSlim signal);

    /// <summary>
    /// Registers <paramref name="callback"/> on <paramref name="token"/> without capturing the execution context
    /// (<see cref="CancellationToken.UnsafeRegister(Action{object?}, object?)"/>) and stores the registration in
    /// <paramref name="registration"/>, a plain field of shared memory (published by a neighbouring release). When the
    /// token is cancelled already the callback runs at once, on the calling thread. A waiter's cancellation. The test
    /// policy makes it a scheduling point and race-checks the store; a callback then runs on the logical thread that
    /// cancels the token.
    /// </summary>
    static abstract void RegisterCancellation(ref CancellationTokenRegistration registration, CancellationToken token, Action<object?> callback, object? state);

    /// <summary>
    /// Unregisters <paramref name="registration"/> (<see cref="CancellationTokenRegistration.Unregister"/>): never blocks;
    /// false when the callback ran, runs now, or there is none. Thread-safe: an early unregister, which leaves the field
    /// as it is (the owner's <see cref="DisposeCancellation"/> still waits for a running callback).
    /// </summary>
    static abstract bool UnregisterCancellation(ref CancellationTokenRegistration registration);

    /// <summary>
    /// Disposes <paramref name="registration"/> (<see cref="CancellationTokenRegistration.Dispose"/>: unregisters it, and
    /// blocks while its callback runs on another thread, so the callback's state can be reused afterwards) and clears the
    /// field. The test policy does not block the real thread (that would deadlock a controlled run: the callback's logical
    /// thread may be paused at a scheduling point): it polls the registration with scheduling points until the callback
    /// returned.
    /// </summary>
    static abstract void DisposeCancellation(ref CancellationTokenRegistration registration);

    /// <summary>
    /// Whether the planted fault <paramref name="fault"/> is active: false in production (a constant, so the JIT drops
    /// the faulty branch from the production specialisation); a controlled test turns it on to show its checker finds it.
    /// </summary>
    static abstract bool IsPlanted(PlantedFault fault);
}
