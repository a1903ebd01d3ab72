using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>
/// The test atomics policy: every member is first a scheduling point of the current
/// <see cref="ControlledScheduler"/>, then the real access (only one logical thread runs at a time, so the real
/// Volatile/Interlocked operation is the sequentially consistent one), then its happens-before bookkeeping in
/// the <see cref="RaceDetector"/> and, when enabled, its <see cref="StoreBuffers"/> effect. Outside a controlled
/// run (init and post parts, plain unit tests) each member is just the access.
/// </summary>
internal readonly unsafe struct TestAtomics : IAtomics
{
    public static long LoadAcquire(ref long location)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return Volatile.Read(ref location);
        }

        s.SchedulingPoint("LoadAcquire");
        nint address = Address(ref location);
        long value = s.Buffers is { } b && b.TryForward(ControlledScheduler.CurrentThread, address, out long v) ? v : Volatile.Read(ref location);
        s.Races?.Acquire(ControlledScheduler.CurrentThread, address);
        return value;
    }

    public static void StoreRelease(ref long location, long value)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            Volatile.Write(ref location, value);
            return;
        }

        s.SchedulingPoint("StoreRelease");
        nint address = Address(ref location);
        Release(s, address);
        if (s.Buffers is { } b)
        {
            b.Store(ControlledScheduler.CurrentThread, address, value, wide: true);
        }
        else
        {
            Volatile.Write(ref location, value);
        }
    }

    public static long CompareExchange(ref long location, long value, long comparand)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return Interlocked.CompareExchange(ref location, value, comparand);
        }

        s.SchedulingPoint("CompareExchange");
        BeforeReadModifyWrite(s, ref location);
        if ((s.Bugs & PlantedBug.SplitCompareExchange) != 0)
        {
            // Planted bug: the read and the write are separate steps; another thread may run in between.
            long seen = Volatile.Read(ref location);
            s.SchedulingPoint("CompareExchange (split: write half)");
            if (seen == comparand)
            {
                Volatile.Write(ref location, value);
            }

            return seen;
        }

        return Interlocked.CompareExchange(ref location, value, comparand);
    }

    public static long Add(ref long location, long value)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return Interlocked.Add(ref location, value);
        }

        s.SchedulingPoint("Add");
        BeforeReadModifyWrite(s, ref location);
        return Interlocked.Add(ref location, value);
    }

    public static T LoadPlain<T>(ref T location)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return location;
        }

        s.SchedulingPoint("LoadPlain");
        nint address = Address(ref location);
        if (s.Races is { } r && r.PlainRead(ControlledScheduler.CurrentThread, address, "LoadPlain") is { } race)
        {
            Raise(s, race);
        }

        return Forwarded(s, ref location, out T forwarded) ? forwarded : location;
    }

    /// <summary>
    /// A load of a location no other thread can store to meanwhile: no scheduling point and no race check (no other thread
    /// can change it, and its own stores are ordered by program order); with store buffers, the thread's newest buffered
    /// store to it, else memory (a lock's previous holder drained its buffer at the release).
    /// </summary>
    public static T LoadOwn<T>(ref T location)
    {
        return ControlledScheduler.Current is { } s && Forwarded(s, ref location, out T forwarded) ? forwarded : location;
    }

    public static void StorePlain<T>(ref T location, T value)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            location = value;
            return;
        }

        s.SchedulingPoint("StorePlain");
        nint address = Address(ref location);
        if (s.Races is { } r && r.PlainWrite(ControlledScheduler.CurrentThread, address, "StorePlain") is { } race)
        {
            Raise(s, race);
        }

        if (s.Buffers is { } b && (typeof(T) == typeof(long) || typeof(T) == typeof(int)))
        {
            long wideValue = typeof(T) == typeof(long) ? Unsafe.As<T, long>(ref value) : Unsafe.As<T, int>(ref value);
            b.Store(ControlledScheduler.CurrentThread, address, wideValue, wide: typeof(T) == typeof(long));
            return;
        }

        DrainBeforeDirectStore();
        location = value;
    }

    public static void CopyPlain<T>(ReadOnlySpan<T> source, Span<T> destination)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            source.CopyTo(destination);
            return;
        }

        s.SchedulingPoint("CopyPlain");
        DrainBeforeDirectStore();
        if (s.Races is { } r)
        {
            int t = ControlledScheduler.CurrentThread;
            for (int i = 0; i < source.Length; i++)
            {
                string? race = r.PlainRead(t, Address(ref Unsafe.AsRef(in source[i])), "CopyPlain (source)")
                    ?? r.PlainWrite(t, Address(ref destination[i]), "CopyPlain (destination)");
                if (race is not null)
                {
                    Raise(s, race);
                }
            }
        }

        source.CopyTo(destination);
    }

    public static void ClearPlain<T>(Span<T> destination)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            destination.Clear();
            return;
        }

        s.SchedulingPoint("ClearPlain");
        DrainBeforeDirectStore();
        if (s.Races is { } r)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                if (r.PlainWrite(ControlledScheduler.CurrentThread, Address(ref destination[i]), "ClearPlain") is { } race)
                {
                    Raise(s, race);
                }
            }
        }

        destination.Clear();
    }

    public static T LoadAcquireReference<T>(ref T location)
        where T : class?
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return Volatile.Read(ref location);
        }

        s.SchedulingPoint("LoadAcquireReference");
        T value = Volatile.Read(ref location);
        s.Races?.Acquire(ControlledScheduler.CurrentThread, Address(ref location));
        return value;
    }

    public static void StoreReleaseReference<T>(ref T location, T value)
        where T : class?
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            Volatile.Write(ref location, value);
            return;
        }

        s.SchedulingPoint("StoreReleaseReference");
        DrainBeforeDirectStore();
        Release(s, Address(ref location));
        Volatile.Write(ref location, value);
    }

    public static T CompareExchangeReference<T>(ref T location, T value, T comparand)
        where T : class?
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return Interlocked.CompareExchange(ref location, value, comparand);
        }

        s.SchedulingPoint("CompareExchangeReference");
        BeforeReadModifyWrite(s, ref location);
        return Interlocked.CompareExchange(ref location, value, comparand);
    }

    public static T LoadSpeculative<T>(ref T location)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return location;
        }

        // A scheduling point (so a racing write can land before or after it) but no race check: the caller
        // discards the value unless a later read-modify-write validates it.
        s.SchedulingPoint("LoadSpeculative");
        return Forwarded(s, ref location, out T forwarded) ? forwarded : location; // the thread's own buffered store, if any
    }

    public static void FullFence()
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            Interlocked.MemoryBarrier();
            return;
        }

        s.SchedulingPoint("FullFence");
        if ((s.Bugs & PlantedBug.DroppedFullFence) != 0)
        {
            return; // planted: the fence is gone
        }

        s.Buffers?.DrainAll(ControlledScheduler.CurrentThread);
        s.Races?.Fence(ControlledScheduler.CurrentThread);
    }

    /// <summary>A scheduling point, then every thread's store buffer drains (what the real barrier forces).</summary>
    public static void ProcessWideBarrier()
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            Interlocked.MemoryBarrierProcessWide();
            return;
        }

        s.SchedulingPoint("ProcessWideBarrier");
        if ((s.Bugs & PlantedBug.DroppedProcessWideBarrier) != 0)
        {
            return; // planted: the barrier is gone
        }

        s.Buffers?.DrainEveryone();
        s.Races?.Fence(ControlledScheduler.CurrentThread);
    }

    public static void SpinOnce(ref SpinWait spinner)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            return;
        }

        // No real spinning: the scheduler switches to another enabled thread, which is what the spinner waits for.
        s.SchedulingPoint("SpinOnce", spinning: true);
    }

    public static void Pause(int iterations)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            Thread.SpinWait(iterations);
            return;
        }

        // One scheduling point however long the pause: other threads may run meanwhile, or not. Not a spinning point
        // (unlike SpinOnce, which waits for another thread and so hands it the baton): a pause promises nothing about
        // the other side's progress, so the explorer must also try the schedules where nobody else ran during it.
        s.SchedulingPoint("Pause");
    }

    /// <summary>
    /// A lock the scheduler controls: a scheduling point, then the lock is taken, or the thread blocks until its owner
    /// releases it (a deadlock among lock holders is reported as one). Reentrant, as the monitor. Happens-before: a
    /// release on the lock's own location, acquired by the next owner. Outside a controlled run: the monitor.
    /// </summary>
    public static bool EnterLock(object gate)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return InterruptDeferral.Enter(gate);
        }

        s.SchedulingPoint("EnterLock");
        DrainBeforeDirectStore(); // the monitor's enter is a locked instruction
        int me = ControlledScheduler.CurrentThread;
        ControlledLock state = Locks.GetValue(gate, static _ => new ControlledLock());
        while (state.Owner != 0 && state.Owner != me)
        {
            s.Block(state); // checked and blocked on in one step: the release wakes us
        }

        Take(s, state, me, gate);
        return false;
    }

    /// <summary>
    /// Under a controlled run: a scheduling point, then the lock is taken when it is free (or already this thread's), else
    /// false at once (never blocks). Outside one: the monitor's <see cref="Monitor.TryEnter(object, ref bool)"/>.
    /// </summary>
    public static bool TryEnterLock(object gate)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return RealAtomics.TryEnterLock(gate);
        }

        s.SchedulingPoint("TryEnterLock");
        DrainBeforeDirectStore(); // as EnterLock
        int me = ControlledScheduler.CurrentThread;
        ControlledLock state = Locks.GetValue(gate, static _ => new ControlledLock());
        if (state.Owner != 0 && state.Owner != me)
        {
            return false;
        }

        Take(s, state, me, gate);
        return true;
    }

    /// <summary>Makes <paramref name="me"/> the owner of a free (or its own) controlled lock, acquiring what the last owner released.</summary>
    private static void Take(ControlledScheduler s, ControlledLock state, int me, object gate)
    {
        state.Owner = me;
        state.Depth++;
        s.Races?.Acquire(me, LockLocation(gate));
    }

    /// <summary>Releases a lock taken by <see cref="EnterLock"/> (not a scheduling point: the owner's next access is one).</summary>
    public static void ExitLock(object gate, bool interrupted)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            InterruptDeferral.Exit(gate, interrupted);
            return;
        }

        DrainBeforeDirectStore(); // the stores made under the lock are visible before its release
        int me = ControlledScheduler.CurrentThread;
        ControlledLock state = Locks.GetValue(gate, static _ => new ControlledLock());
        if (state.Owner != me)
        {
            throw new SynchronizationLockException($"T{me} releases a lock held by T{state.Owner}.");
        }

        s.Races?.Release(me, LockLocation(gate));
        if (--state.Depth == 0)
        {
            state.Owner = 0;
            s.WakeAll(state);
        }
    }

    /// <summary>A plain load of lock-guarded memory: race-checked, not a scheduling point (see <see cref="IAtomics.LoadGuarded"/>).</summary>
    public static T LoadGuarded<T>(ref T location)
    {
        var s = ControlledScheduler.Current;
        if (s?.Races is { } r && r.PlainRead(ControlledScheduler.CurrentThread, Address(ref location), "LoadGuarded") is { } race)
        {
            Raise(s, race);
        }

        return location;
    }

    /// <summary>A plain store to lock-guarded memory: race-checked, not a scheduling point.</summary>
    public static void StoreGuarded<T>(ref T location, T value)
    {
        var s = ControlledScheduler.Current;
        if (s?.Races is { } r && r.PlainWrite(ControlledScheduler.CurrentThread, Address(ref location), "StoreGuarded") is { } race)
        {
            Raise(s, race);
        }

        DrainBeforeDirectStore();
        location = value;
    }

    /// <summary>
    /// Under a controlled run: a scheduling point, then <paramref name="item"/> runs inline (a pooled waiter's wake-up:
    /// it completes the waiter's value-task source) and every logical thread blocked on it is woken (see
    /// <see cref="BlockUntil"/>). Outside one: the thread pool.
    /// </summary>
    public static void QueueWorkItem(IThreadPoolWorkItem item)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
            return;
        }

        s.SchedulingPoint("QueueWorkItem");
        DrainBeforeDirectStore(); // the pool's queue takes a locked instruction
        item.Execute();
        s.Races?.Release(ControlledScheduler.CurrentThread, LockLocation(item)); // what the wake-up did happens-before what its awaiter does (the value-task source's completion)
        s.WakeAll(item); // no scheduling point since Execute's last access: a thread that checked and blocked is woken
    }

    /// <summary>
    /// Under a controlled run: a scheduling point, then the logical thread blocks until <paramref name="signal"/> is set
    /// (by <see cref="SetEvent"/>; checked and blocked on in one step, so a set between the two cannot be missed; one that
    /// never comes is a deadlock), and acquires what the setter released. A finite <paramref name="timeout"/> (session 19)
    /// makes it a timed wait: while the event is not set, the strategy chooses at each of its scheduling points whether
    /// the timeout passes now (one chance in <see cref="TimeoutOdds"/>); if it does, the run's virtual clock
    /// (<see cref="GetTimestamp"/>) moves on by the timeout and the wait answers false; if not, the thread waits as a
    /// spinner, so the others run first. So a timeout can end the wait at any point of the schedule before the set, and
    /// never after it, as on a real thread (where the time between the two is the hardware's choice). Outside a
    /// controlled run: the event's own wait.
    /// </summary>
    public static bool WaitEvent(ManualResetEventSlim signal, TimeSpan timeout)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return signal.Wait(timeout);
        }

        s.SchedulingPoint("WaitEvent");
        DrainBeforeDirectStore(); // the event's wait takes locked instructions
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            while (!signal.IsSet)
            {
                if (s.PickChoice(TimeoutOdds) == 0)
                {
                    s.AdvanceClock(timeout);
                    return false;
                }

                s.SchedulingPoint("WaitEvent (timed)", spinning: true);
            }
        }

        while (!signal.IsSet)
        {
            s.Block(signal);
        }

        s.Races?.Acquire(ControlledScheduler.CurrentThread, EventLocation(signal));
        return true;
    }

    /// <summary>A timed <see cref="WaitEvent"/> times out at one of its scheduling points in this many.</summary>
    internal const int TimeoutOdds = 4;

    /// <summary>
    /// Under a controlled run: the run's virtual clock, <see cref="System.Diagnostics.Stopwatch"/> ticks, moved only by a
    /// timed <see cref="WaitEvent"/> that times out (not a scheduling point: no shared memory). Outside one: the real clock.
    /// </summary>
    public static long GetTimestamp() => ControlledScheduler.Current is { } s ? s.VirtualTimestamp : System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>
    /// Under a controlled run: a scheduling point, a release for the waiter's acquire, the set (nobody blocks in the
    /// event itself, so it never blocks) and the wake-up of the logical threads blocked in <see cref="WaitEvent"/>.
    /// Outside one: <see cref="InterruptDeferral.Set"/>.
    /// </summary>
    public static void SetEvent(ManualResetEventSlim signal)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            InterruptDeferral.Set(signal);
            return;
        }

        s.SchedulingPoint("SetEvent");
        DrainBeforeDirectStore(); // as WaitEvent
        s.Races?.Release(ControlledScheduler.CurrentThread, EventLocation(signal));
        signal.Set();
        s.WakeAll(signal);
    }

    /// <summary>
    /// Under a controlled run: a scheduling point, the real registration (when the token is cancelled already, the callback
    /// runs at once on this logical thread, as it does on a real thread), and a race-checked plain write of the field.
    /// A callback registered here runs on the logical thread that cancels the token: inline in its
    /// <see cref="CancellationTokenSource.Cancel()"/>, its accesses scheduling points of that thread. Outside one: the
    /// registration.
    /// </summary>
    public static void RegisterCancellation(ref CancellationTokenRegistration registration, CancellationToken token, Action<object?> callback, object? state)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            registration = token.UnsafeRegister(callback, state);
            return;
        }

        s.SchedulingPoint("RegisterCancellation");
        DrainBeforeDirectStore(); // the token source's lists take locked instructions
        CancellationTokenRegistration made = token.UnsafeRegister(callback, state);
        PlainAccess(s, ref registration, write: true, "RegisterCancellation");
        registration = made;
    }

    /// <summary>Under a controlled run: a scheduling point, a race-checked plain read of the field, the real unregister (it never blocks). Outside one: the unregister.</summary>
    public static bool UnregisterCancellation(ref CancellationTokenRegistration registration)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            return registration.Unregister();
        }

        s.SchedulingPoint("UnregisterCancellation");
        DrainBeforeDirectStore(); // the token source's lists take locked instructions
        PlainAccess(s, ref registration, write: false, "UnregisterCancellation");
        return registration.Unregister();
    }

    /// <summary>
    /// Under a controlled run: a scheduling point and a race-checked plain write of the field, then the dispose without
    /// blocking the real thread. <see cref="CancellationTokenRegistration.DisposeAsync"/> unregisters, and answers a
    /// completed task unless the callback is running on another thread right now (the running thread's id is compared, so
    /// a callback disposing its own registration does not wait, as <see cref="CancellationTokenRegistration.Dispose"/>). While
    /// it is running (its logical thread paused at a scheduling point inside it), this thread spins: a scheduling point,
    /// then the question again. The question is asked again rather than the first task awaited: the source answers it from
    /// the registration's state, which only the logical threads change, while the task completes on a pool thread whenever
    /// that thread notices, which would make the number of steps depend on real time and break replay. The tasks of the
    /// unanswered questions end on their own once the callback returns. Outside a run: the blocking dispose.
    /// </summary>
    public static void DisposeCancellation(ref CancellationTokenRegistration registration)
    {
        var s = ControlledScheduler.Current;
        if (s is null)
        {
            registration.Dispose();
            registration = default;
            return;
        }

        s.SchedulingPoint("DisposeCancellation");
        DrainBeforeDirectStore(); // the token source's lists take locked instructions
        PlainAccess(s, ref registration, write: true, "DisposeCancellation");
        if (!registration.DisposeAsync().IsCompleted)
        {
            Interlocked.Increment(ref s_cancellationDisposeWaits);
            do
            {
                s.SchedulingPoint("DisposeCancellation (callback running)", spinning: true); // the callback's thread runs on
            }
            while (!registration.DisposeAsync().IsCompleted);
        }

        registration = default;
    }

    /// <summary>
    /// How many <see cref="DisposeCancellation"/> calls under a controlled run found the callback running on another
    /// logical thread and waited for it (process-wide, only ever growing): a test reads it before and after its
    /// exploration to show the window was explored.
    /// </summary>
    internal static long CancellationDisposeWaits => Interlocked.Read(ref s_cancellationDisposeWaits);

    /// <summary>Whether <paramref name="fault"/> is planted in the current controlled run (<see cref="ExploreOptions.Faults"/>).</summary>
    public static bool IsPlanted(PlantedFault fault) => ControlledScheduler.Current is { } s && (s.Faults & fault) != 0;

    /// <summary>
    /// Test side of <see cref="QueueWorkItem"/>: blocks the running logical thread on <paramref name="item"/> until
    /// <paramref name="done"/> holds. The condition is read outside the simulated memory and blocked on in one step, so a
    /// wake-up between the two cannot be missed; a wake-up that never comes is reported as a deadlock.
    /// </summary>
    public static void BlockUntil(object item, Func<bool> done)
    {
        var s = ControlledScheduler.Current ?? throw new InvalidOperationException("BlockUntil works only inside a controlled run.");
        s.SchedulingPoint("BlockUntil");
        DrainBeforeDirectStore();
        while (!done())
        {
            s.Block(item);
        }

        s.Races?.Acquire(ControlledScheduler.CurrentThread, LockLocation(item)); // pairs with the release in QueueWorkItem
    }

    private static long s_cancellationDisposeWaits;

    private static readonly ConditionalWeakTable<object, ControlledLock> Locks = new();

    /// <summary>A lock's location for the race detector: a negative number, never the address of a real location.</summary>
    private static nint LockLocation(object gate) => (nint)(-1L - RuntimeHelpers.GetHashCode(gate));

    /// <summary>An event's location for the race detector: a negative number, as a lock's (the two never meet).</summary>
    private static nint EventLocation(ManualResetEventSlim signal) => LockLocation(signal);

    /// <summary>The owner (0: free) and depth of one controlled lock.</summary>
    private sealed class ControlledLock
    {
        public int Owner;
        public int Depth;

        public override string ToString() => $"lock (owner T{Owner})";
    }

    private static void Release(ControlledScheduler s, nint address)
    {
        if (s.Races is not { } r)
        {
            return;
        }

        if ((s.Bugs & PlantedBug.DroppedRelease) != 0)
        {
            r.RelaxedStore(address);
        }
        else
        {
            r.Release(ControlledScheduler.CurrentThread, address);
        }
    }

    /// <summary>The running thread's newest buffered store to <paramref name="location"/> (store forwarding; only int and long stores are buffered).</summary>
    private static bool Forwarded<T>(ControlledScheduler s, ref T location, out T value)
    {
        value = default!;
        if (s.Buffers is not { } b || (typeof(T) != typeof(long) && typeof(T) != typeof(int))
            || !b.TryForward(ControlledScheduler.CurrentThread, Address(ref location), out long v))
        {
            return false;
        }

        value = typeof(T) == typeof(long) ? Unsafe.As<long, T>(ref v) : (T)(object)(int)v;
        return true;
    }

    /// <summary>
    /// With store buffers: a store that goes to memory directly (a reference, a value type other than int and long, a
    /// copy, a guarded store) or a locked instruction of the runtime (a lock, an event, a token registration) first drains
    /// the running thread's buffer. TSO keeps a thread's stores in order; a direct store overtaking buffered ones would
    /// let another thread see a published reference before the int stores made ahead of it, which no x86 can show.
    /// </summary>
    private static void DrainBeforeDirectStore() => ControlledScheduler.DrainRunningThread();

    private static void BeforeReadModifyWrite<TValue>(ControlledScheduler s, ref TValue location)
    {
        int t = ControlledScheduler.CurrentThread;
        s.Buffers?.DrainAll(t); // locked instructions drain the store buffer
        s.Races?.ReadModifyWrite(t, Address(ref location));
    }

    /// <summary>A race-checked plain access (no store buffers: the location is a field of a movable object).</summary>
    private static void PlainAccess<TValue>(ControlledScheduler s, ref TValue location, bool write, string op)
    {
        if (s.Races is not { } r)
        {
            return;
        }

        nint address = Address(ref location);
        int t = ControlledScheduler.CurrentThread;
        if ((write ? r.PlainWrite(t, address, op) : r.PlainRead(t, address, op)) is { } race)
        {
            Raise(s, race);
        }
    }

    private static void Raise(ControlledScheduler s, string race)
    {
        s.Fail(new DataRaceException(race), ControlledScheduler.CurrentThread);
        throw new ScheduleAbort();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Address<TValue>(ref TValue location) => (nint)Unsafe.AsPointer(ref location);
}

/// <summary>Two plain accesses to one location, at least one a write, with no happens-before edge between them.</summary>
public sealed class DataRaceException(string message) : Exception(message);
