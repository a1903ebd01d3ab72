using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Timers;

// Design: hierarchical timer wheel (G. Varghese and A. Lauck, "Hashed and Hierarchical Timing Wheels", SOSP 1987,
// scheme 7) with 64-slot levels and an occupancy bitmap per level, fed by a lock-free inbox so that schedule and
// cancel never take a lock and never touch the wheel itself.
//
// Roles. Any thread schedules and cancels. One driver at a time (Advance, or the driver thread; serialised by
// _gate) owns the wheel: slot lists, bitmaps, _wheelNow and the nodes' Next/Prev links. Callbacks run after the
// driver has left the gate.
//
// Node store: chunks of 1024 TimerNode structs (48 bytes each, below the large-object heap), addressed by index;
// a chunk is written once, before any of its indices is published on the free list, and never replaced. Free
// nodes form a Treiber stack (_freeHead = tag << 32 | (index + 1)); the 32-bit tag, bumped by every successful
// push or pop, defeats ABA. An empty free list grows the store by one chunk under _growLock (slow path), up to
// the configured maximum, then Schedule throws InvalidOperationException.
//
// Lanes (TimerWheelEngine.Lanes.cs): a thread that schedules on a wheel more than once gets a lane there, two
// single-producer single-consumer rings shared with the driver only. Schedule publishes the node index on its
// lane with a plain slot store and a release store of the tail (no locked instruction); a Cancel of a linked
// timer sends its notice the same way when the cancelling thread has a lane here. The driver returns the nodes
// it frees while draining a lane through the lane's second ring, into that thread's node cache, so a thread's
// schedule/cancel cycle reuses its own nodes without the free list. A lane's thread ends (or abandons the lane):
// the driver retires it and gives its nodes back to the free list.
//
// Inbox: the fallback (a thread's first schedule on the wheel, a full lane, a cancelling thread without a lane):
// a Treiber stack (_inboxHead = index + 1) of nodes the driver must look at: newly scheduled (Queued) and
// cancelled-while-linked (CancelQueued). Producers push with one CAS; the driver takes the whole stack with one
// CAS, so pops never race and the inbox needs no tag. A node is on at most one lane or the inbox at a time.
//
// State word per node: generation << 32 | status (TimerNodeStatus). Transitions:
//   Free -(scheduler, owns the node)-> Queued -(driver CAS)-> Linked -(driver CAS)-> Firing -(driver)-> Free(gen+1)
//   Queued -(Cancel CAS)-> Cancelled -(driver at drain)-> Free(gen+1)
//   Linked -(Cancel CAS, then inbox push)-> CancelQueued -(driver unlinks at drain)-> Free(gen+1)
//   CancelQueued -(driver sweep meets it in an expiring slot: unlinks)-> Cancelled -(drain)-> Free(gen+1)
//   Queued -(driver CAS, due already past)-> Firing
// Cancel succeeds exactly when its CAS moves Queued or Linked to a cancelled status; the driver fires exactly
// when its CAS moves Queued or Linked to Firing. Both CAS on the same word from the same status, so exactly one
// wins: a timer fires once or is cancelled, never both, and Cancel's answer is the truth. A stale handle
// carries an older generation and never matches the word again.
//
// Time: the driver publishes the wheel's current tick (_clock.Tick). Schedule computes due = tick + 1 +
// ceil(dueIn / tickDuration) against that published tick instead of reading the clock (~26 ns here, more than
// the rest of Schedule). The +1 covers the unknown phase within the current tick, so a timer never fires
// before dueIn has passed since the tick was published. While the driver thread sleeps longer than one tick
// or runs callbacks it raises _clock.Flags.Stale and Schedule reads the clock itself (slow path).
//
// Wheel: a timer due at tick d, with now = _wheelNow < d, lives at level k = msb(d ^ now) / 6, slot
// (d >> 6k) & 63: the level of the highest 6-bit digit where d and now differ. So d and now agree above digit
// k, and d's digit k is greater than now's: every occupied slot of a level lies ahead of now's digit there,
// the lowest set bit of the lowest non-empty level's bitmap is the next event (a level-0 slot is a due
// tick; a higher slot is the tick at which it cascades, when its timers re-link one or more levels lower).
// Moving now to any tick not beyond the next event keeps the placement rule true for every linked timer,
// so Unlink recomputes a node's slot from (DueTick, now) and nodes need no slot field. Cascading fires each
// timer exactly at its due tick (lateness from the wheel itself: none); a timer cascades at most once per
// level. Finding the next event costs at most one bitmap test per level, never a slot scan.
//
// Sleeping driver (TimerWheelEngine.Driver.cs): before sleeping past the next tick the driver raises Stale (a
// CAS), calls ProcessWideBarrier, then scans the inbox and the lanes once more. Schedule publishes (lane release
// store or inbox CAS), then loads Flags, with no fence of its own: the barrier cuts every thread's program in
// two, so either the publication precedes the cut (the scan sees it) or the Flags load follows it (it sees
// Stale, and Schedule wakes the driver when its timer is earlier than the planned wake-up). One barrier per long
// sleep, a few microseconds; nothing on the Schedule path.
//
// Cost per schedule+cancel pair on a lane: one locked instruction (Cancel's state-word CAS, the consensus with
// the driver that makes Cancel's answer exact); Schedule, the drain and the node's return are plain or
// release/acquire accesses (docs/timers.md has the measured breakdown).
//
// Progress: Schedule and Cancel are lock-free (a CAS retry loop each on the free list, the inbox, the state
// word) except when the pool grows (a lock, once per 1024 nodes) and when a thread first gets a lane (a lock,
// once per thread and wheel). The driver is blocking with respect to other drivers only.
internal sealed partial class TimerWheelEngine<TAtomics>
    where TAtomics : struct, IAtomics
{
    /// <summary>Nodes per chunk: 1024 x 48 bytes = 48 KiB, below the 85 KB large-object threshold.</summary>
    internal const int ChunkShift = 10;

    /// <summary>Bits of the due tick per level: 64 slots, one ulong bitmap.</summary>
    internal const int LevelBits = 6;

    /// <summary>Slots per level.</summary>
    internal const int SlotsPerLevel = 1 << LevelBits;

    /// <summary>Enough levels for any non-negative long tick (11 x 6 = 66 bits).</summary>
    internal const int Levels = 11;

    /// <summary>The longest dueIn, in ticks (2^40: 34 years at 1 ms). Longer asks throw rather than being clamped.</summary>
    internal const long MaxDueTicks = 1L << 40;

    /// <summary>How near the wheel's time ScheduleAt reads a timestamp wrap-safe (by the signed difference): 2^62 timestamps.</summary>
    private const long NearbyTimestamps = 1L << 62;

    /// <summary>Default node-pool bound: 2^22 = 4,194,304 pending timers (192 MiB of nodes when full).</summary>
    internal const int DefaultMaxTimers = 1 << 22;

    private const int ChunkSize = 1 << ChunkShift;
    private const int ChunkMask = ChunkSize - 1;
    private const long StatusMask = 0xFFFF_FFFFL;
    private const long StaleFlag = 1;
    private const long DisposedFlag = 2;

    private readonly TimeProvider _timeProvider;
    private readonly long _tickTicks;       // tick duration in TimeSpan ticks
    private readonly ulong _reciprocal;     // floor((2^64 - 1) / _tickTicks), for DueTicks
    private readonly long _tickTimestamp;   // tick duration in provider timestamp units, rounded up
    private readonly long _originTimestamp; // provider timestamp of tick 0
    private readonly TimerNode[]?[] _chunks;
    private readonly int _maxTimers;
    private readonly object _growLock = new();
    private readonly object _gate = new();
    private readonly object _owner;
    private readonly int _id = TimerWheelIds.Next(); // stamped into every handle; Cancel refuses another wheel's

    private PaddedIndex _freeHead;   // CAS line of the free list
    private PaddedIndex _inboxHead;  // CAS line of the inbox
    private WheelClock _clock;   // written by the driver rarely, read by every Schedule
    private PaddedIndex _plannedWake; // the tick the sleeping driver will wake at (long.MaxValue: none)

    private long _allocated;         // nodes created so far; written under _growLock, read with acquire

    // Driver-only state (under _gate).
    private readonly int[] _slotHeads = new int[Levels * SlotsPerLevel];
    private readonly ulong[] _occupied = new ulong[Levels];
    private long _wheelNow;
    private int _linked;

    private long _failedCallbacks;
    private long _fired;
    private long _dropped;
    private long _cancelled;          // cancellations the driver has reclaimed (counted at the drain, off the Cancel path)
    private long _latenessTotalBits;  // a double's bits: sum over fired timers of (firing batch's clock reading - due tick's start), in timestamps (a long overflowed: ~10^13 timers 1 ms late at 1 ns per timestamp)
    private long _lastLateness;       // that lateness for the most recently fired timer, in timestamps
    private long _untimedFired;       // fired timers whose batch's lateness reading threw: left out of the average

    public TimerWheelEngine(TimeSpan tickDuration, TimeProvider? timeProvider, int maxTimers, object? owner = null, int laneRingSize = Lane.DefaultRingSize)
    {
        if (laneRingSize < 1 || !BitOperations.IsPow2(laneRingSize))
        {
            throw new ArgumentOutOfRangeException(nameof(laneRingSize), laneRingSize, "The lane ring size must be a positive power of two.");
        }

        if (tickDuration <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(tickDuration), tickDuration, "The tick duration must be positive.");
        }

        if (maxTimers < 1 || maxTimers > (1 << 30))
        {
            throw new ArgumentOutOfRangeException(nameof(maxTimers), maxTimers, "The timer limit must be between 1 and 2^30.");
        }

        _timeProvider = timeProvider ?? TimeProvider.System;
        _owner = owner ?? this;
        _tickTicks = tickDuration.Ticks;
        _reciprocal = ulong.MaxValue / (ulong)_tickTicks;
        double perTick = (double)_tickTicks * _timeProvider.TimestampFrequency / TimeSpan.TicksPerSecond;
        if (perTick > long.MaxValue / 4)
        {
            throw new ArgumentOutOfRangeException(nameof(tickDuration), tickDuration, "The tick duration is too long.");
        }

        _tickTimestamp = Math.Max(1, (long)Math.Ceiling(perTick));
        _maxTimers = maxTimers;
        _laneRingSize = laneRingSize;
        _returnCapacity = Math.Min(laneRingSize, maxTimers / 64); // at most 1/64 of the pool waits in one thread's lane
        _refillBatch = Math.Clamp(maxTimers / 64, 1, Lane.CacheSize);
        _chunks = new TimerNode[]?[(maxTimers + ChunkSize - 1) >> ChunkShift];
        _slotHeads.AsSpan().Fill(-1);
        _plannedWake.Value = long.MaxValue;
        _originTimestamp = _timeProvider.GetTimestamp();
        GrowLocked(); // the first chunk, so the common case never takes the growth path
    }

    public TimeSpan TickDuration => TimeSpan.FromTicks(_tickTicks);

    public TimeSpan MaxDueIn => _tickTicks > long.MaxValue / MaxDueTicks ? TimeSpan.MaxValue : TimeSpan.FromTicks(_tickTicks * MaxDueTicks);

    public int MaxTimers => _maxTimers;

    public TimeProvider TimeProvider => _timeProvider;

    /// <summary>The tick the wheel has advanced to (published by the driver).</summary>
    public long CurrentTick => TAtomics.LoadAcquire(ref _clock.Tick); // acquire: pairs with the release in AdvanceTo

    /// <summary>Linked timers as of the last driver pass: a snapshot.</summary>
    public int PendingCount => Volatile.Read(ref _linked);

    public long FailedCallbackCount => Interlocked.Read(ref _failedCallbacks);

    public long FiredCount => Interlocked.Read(ref _fired);

    public long DroppedCount => Interlocked.Read(ref _dropped);

    /// <summary>Cancelled timers the driver has reclaimed (a cancellation counts from the next advance).</summary>
    public long CancelledCount => Interlocked.Read(ref _cancelled);

    /// <summary>How late the most recently fired timer ran (zero before any fired).</summary>
    public TimeSpan LastLateness => TimestampsToTimeSpan(Interlocked.Read(ref _lastLateness));

    /// <summary>How late fired timers ran on average (zero before any fired).</summary>
    public TimeSpan AverageLateness
    {
        get
        {
            long fired = Interlocked.Read(ref _fired) - Interlocked.Read(ref _untimedFired); // two snapshots: a racing failed batch can make it briefly low
            return fired <= 0 ? TimeSpan.Zero : TimestampsToTimeSpan((long)(BitConverter.Int64BitsToDouble(Interlocked.Read(ref _latenessTotalBits)) / fired));
        }
    }

    public bool IsDisposed => (TAtomics.LoadAcquire(ref _clock.Flags) & DisposedFlag) != 0;

    /// <summary>Nodes the pool holds now (free or in use).</summary>
    internal long AllocatedNodes => TAtomics.LoadAcquire(ref _allocated);

    /// <summary>Raised after a callback threw; the handler runs on the firing thread; its own exceptions are swallowed.</summary>
    public event EventHandler<Exception>? CallbackFailed;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TimerHandle Schedule(TimeSpan dueIn, Action<object?> callback, object? state)
    {
        if (callback is null)
        {
            ThrowCallbackNull();
        }

        long dueTicks = DueTicks(dueIn);
        long flags = TAtomics.LoadAcquire(ref _clock.Flags); // acquire: pairs with the flag CAS of the driver / Dispose
        long now = flags == 0
            ? TAtomics.LoadAcquire(ref _clock.Tick) // acquire: pairs with the release in AdvanceTo
            : SlowNow(flags);
        return ScheduleCore(now + 1 + dueTicks, callback, state);
    }

    /// <summary>Schedules at an absolute provider timestamp: due at the first tick that starts at or after it (never early, at most one tick late).</summary>
    public TimerHandle ScheduleAt(long dueTimestamp, Action<object?> callback, object? state)
    {
        if (callback is null)
        {
            ThrowCallbackNull();
        }

        long flags = TAtomics.LoadAcquire(ref _clock.Flags); // acquire: pairs with the flag CAS of Dispose
        if ((flags & DisposedFlag) != 0)
        {
            throw new ObjectDisposedException(nameof(HierarchicalTimerWheel));
        }

        // The distance to the origin. A timestamp near the wheel's time (within 2^62 timestamps of the current tick's start:
        // everything it could schedule) is placed by the signed difference, wrap-safe: the clock may pass long.MaxValue
        // after the wheel was created (s11-rev: before, a numeric comparison with the origin read every due time after a
        // wrap, or past it, as long past and fired it at the next advance, early). A timestamp farther away has no
        // meaning on a wrapping clock; it keeps the numeric reading, in unsigned arithmetic (a plain subtraction
        // overflowed: a far past one read as far future and threw; on a clock with negative timestamps a far future one
        // read as past and fired at once). The published tick is never negative.
        long currentTick = TAtomics.LoadAcquire(ref _clock.Tick); // acquire: pairs with the release in AdvanceTo
        long ahead = unchecked(dueTimestamp - (_originTimestamp + (currentTick * _tickTimestamp)));
        ulong sinceOrigin;
        if (ahead > -NearbyTimestamps && ahead < NearbyTimestamps)
        {
            long signed = unchecked(dueTimestamp - _originTimestamp); // the wheel's age plus ahead: no overflow
            sinceOrigin = signed <= 0 ? 0 : (ulong)signed;
        }
        else
        {
            sinceOrigin = dueTimestamp <= _originTimestamp ? 0 : unchecked((ulong)dueTimestamp - (ulong)_originTimestamp);
        }

        ulong due = (sinceOrigin / (ulong)_tickTimestamp) + (sinceOrigin % (ulong)_tickTimestamp != 0 ? 1UL : 0UL);
        if (due > (ulong)currentTick + MaxDueTicks)
        {
            throw new ArgumentOutOfRangeException(nameof(dueTimestamp), dueTimestamp, "The due time is further away than MaxDueIn.");
        }

        return ScheduleCore((long)due, callback, state); // a due tick already passed fires at the next advance
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TimerHandle ScheduleCore(long due, Action<object?> callback, object? state)
    {
        Lane? lane = CurrentLane();
        int index = lane is not null && lane.CacheCount > 0 ? lane.Cache[--lane.CacheCount] : TakeNodeSlow(lane); // thread-local cache: no shared access
        ref TimerNode node = ref Node(index);
        // Stores skipped when they would not change the field: a node back from this thread's Returned ring often
        // holds the same callback already, and a freed node's State is null. Each skip saves a GC write barrier.
        if (!ReferenceEquals(TAtomics.LoadPlain(ref node.Callback), callback)) // plain: this thread owns the popped node
        {
            TAtomics.StorePlain(ref node.Callback, callback); // plain: published by the lane / inbox push
        }

        if (state is not null)
        {
            TAtomics.StorePlain(ref node.State, state); // plain: as above
        }

        TAtomics.StorePlain(ref node.DueTick, due);       // plain: as above
        long generation = TAtomics.LoadAcquire(ref node.StateWord) >>> 32; // acquire: pairs with the release that freed the node
        TAtomics.StoreRelease(ref node.StateWord, (generation << 32) | TimerNodeStatus.Queued); // release: Cancel may now see it
        if (lane is null || !TryPush(lane, index))
        {
            PushInbox(index, ref node);
            if (lane is not null)
            {
                LaneFull();
            }
        }

        // Dekker half with the driver going to sleep: our push (the lane's release store, or the inbox CAS) then
        // this load; the driver's Stale CAS, then its ProcessWideBarrier, then its scan. Either its scan sees this
        // timer, or this load comes after the barrier and sees Stale, and we wake the driver if needed.
        if (TAtomics.LoadAcquire(ref _clock.Flags) is var flags && flags != 0) // acquire: pairs with the driver's flag CAS
        {
            if ((flags & DisposedFlag) != 0)
            {
                WithdrawDisposed(ref node, generation); // throws, unless Dispose dropped (and counted) this timer or it fired
            }

            WakeDriverIfEarlier(due);
        }

        return new TimerHandle(index, (uint)generation, _id);
    }

    /// <summary>
    /// Schedule saw Disposed after publishing its node. Dispose's scan may have missed it (the node went Queued after
    /// the scan passed it): wait for the scan to end (Dispose publishes that), then, if the node is still Queued, no
    /// one else has it (the scan would have dropped it; no drain runs after Dispose's scan): take it back and throw.
    /// Otherwise Dispose dropped and counted it, or a drain that began before Dispose fired it: the handle stands.
    /// Only a Schedule racing Dispose gets here; it waits for Dispose (lock-freedom ends with the wheel).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WithdrawDisposed(ref TimerNode node, long generation)
    {
        var spinner = default(SpinWait);
        while (TAtomics.LoadAcquire(ref _disposeScanned) == 0) // acquire: pairs with Dispose's release after its scan
        {
            TAtomics.SpinOnce(ref spinner);
        }

        if (TAtomics.LoadAcquire(ref node.StateWord) == ((generation << 32) | TimerNodeStatus.Queued)) // acquire: the scan's CAS, had it taken the node
        {
            TAtomics.StorePlain(ref node.Callback, null); // plain: ours again; the scan saw the node Free and wrote nothing
            TAtomics.StorePlain(ref node.State, null);
            long next = (generation + 1) & StatusMask;
            TAtomics.StoreRelease(ref node.StateWord, (next == 0 ? 1 : next) << 32); // release: Free, new generation (stranded on its lane / the inbox of a disposed wheel)
            throw new ObjectDisposedException(nameof(HierarchicalTimerWheel));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Cancel(TimerHandle handle)
    {
        int index = handle.Index;
        if (handle.Generation == 0)
        {
            return false; // default(TimerHandle)
        }

        if (handle.WheelId != _id)
        {
            ThrowForeignHandle(); // its index and generation could name a live timer of this wheel
        }

        if ((uint)(index >> ChunkShift) >= (uint)_chunks.Length || _chunks[index >> ChunkShift] is not { } chunk)
        {
            return false; // not reachable with a handle this wheel issued; the chunk table is written once per chunk, before its indices exist
        }

        ref TimerNode node = ref chunk[index & ChunkMask];
        long generation = handle.Generation;
        while (true)
        {
            long word = TAtomics.LoadAcquire(ref node.StateWord); // acquire: pairs with the release / CAS of the status
            if ((word >>> 32) != generation) // logical shift: generations from 2^31 on would read negative and never match the handle's
            {
                return false; // stale handle: fired or cancelled, node reused (Dispose marks pending nodes Cancelled)
            }

            long status = word & StatusMask;
            if (status == TimerNodeStatus.Queued)
            {
                // Still on the inbox: the driver frees it when it drains.
                if (TAtomics.CompareExchange(ref node.StateWord, (generation << 32) | TimerNodeStatus.Cancelled, word) == word) // CAS: races the driver's Queued -> Linked/Firing
                {
                    return true;
                }
            }
            else if (status == TimerNodeStatus.Linked)
            {
                if (TAtomics.CompareExchange(ref node.StateWord, (generation << 32) | TimerNodeStatus.CancelQueued, word) == word) // CAS: races the driver's Linked -> Firing
                {
                    // The node left the lane / inbox when it was linked, so it may go on one again. Our lane only if
                    // this thread last scheduled on this wheel: a thread that only cancels gets no lane (the driver
                    // returns the freed node through it, where only scheduling would take it back).
                    WheelLane? current = WheelLane.Current;
                    if (current is null || !ReferenceEquals(current.Owner, this) || !TryPush(Unsafe.As<Lane>(current), index))
                    {
                        PushInbox(index, ref node);
                    }

                    return true;
                }
            }
            else
            {
                return false; // Firing, or already cancelled
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long DueTicks(TimeSpan dueIn)
    {
        // ceil(t / tick) without a 64-bit division on the hot path: the high half of t * floor((2^64 - 1) / tick)
        // is floor(t / tick) or one less (the reciprocal is at most 2^64 / tick and more than 2^64 / tick - 1, so
        // the product is off by less than t / 2^64 < 1); the remainder corrects it.
        long t = dueIn.Ticks;
        if (t < 0)
        {
            return DueTicksSlow(dueIn);
        }

        long q = (long)Math.BigMul((ulong)t, _reciprocal, out _);
        long remainder = t - (q * _tickTicks);
        if (remainder >= _tickTicks)
        {
            q++;
            remainder -= _tickTicks;
        }

        q += remainder != 0 ? 1 : 0;
        if (q > MaxDueTicks)
        {
            ThrowDueInOutOfRange(dueIn);
        }

        return q;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private long DueTicksSlow(TimeSpan dueIn)
    {
        long t = dueIn.Ticks;
        if (t < 0 || (t / _tickTicks) + (t % _tickTicks != 0 ? 1 : 0) > MaxDueTicks)
        {
            ThrowDueInOutOfRange(dueIn);
        }

        return (t / _tickTicks) + (t % _tickTicks != 0 ? 1 : 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref TimerNode Node(int index)
    {
        // Unchecked: every caller holds an index the pool handed out (below _allocated), so its chunk exists and
        // the offset is in range (Cancel checks a handle's index itself before it gets here).
        Debug.Assert((uint)index < (uint)_allocated, "node index out of the pool");
        TimerNode[] chunk = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_chunks), index >> ChunkShift)!;
        return ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(chunk), index & ChunkMask);
    }

    private TimeSpan TimestampsToTimeSpan(long timestamps) =>
        TimeSpan.FromTicks((long)(timestamps * ((double)TimeSpan.TicksPerSecond / _timeProvider.TimestampFrequency)));

    /// <summary>The provider's clock in ticks since construction.</summary>
    internal long ClockTick() => (_timeProvider.GetTimestamp() - _originTimestamp) / _tickTimestamp;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private long SlowNow(long flags)
    {
        if ((flags & DisposedFlag) != 0)
        {
            throw new ObjectDisposedException(nameof(HierarchicalTimerWheel));
        }

        // Stale: the driver sleeps or runs callbacks, so its tick may lag the clock. Never use less than it.
        return Math.Max(ClockTick(), TAtomics.LoadAcquire(ref _clock.Tick));
    }

    /// <summary>A free node when the lane's cache is empty: returned nodes, else a batch from the free list (one CAS per batch).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int TakeNodeSlow(Lane? lane)
    {
        if (lane is not null && TakeReturned(lane) > 0)
        {
            return lane.Cache[--lane.CacheCount];
        }

        int batch = lane is null ? 1 : _refillBatch;
        while (true)
        {
            long head = TAtomics.LoadAcquire(ref _freeHead.Value); // acquire: pairs with the CAS that pushed the top node
            int top = (int)(uint)head - 1;
            if (top < 0)
            {
                int grown = Grow();
                if (grown >= 0)
                {
                    return grown;
                }

                continue;
            }

            // Walk up to a batch of links. A stale walk (nodes popped and reused meanwhile) reads valid indices
            // through atomic loads and is harmless: the tag makes the CAS fail and we start over.
            int taken = 1;
            long next = TAtomics.LoadAcquire(ref Node(top).Link); // acquire: pairs with the release in PushFreeChain
            while (next != 0 && taken < batch)
            {
                lane!.Cache[taken - 1] = (int)next - 1;
                taken++;
                next = TAtomics.LoadAcquire(ref Node((int)next - 1).Link); // acquire: as above
            }

            long replacement = (((head >>> 32) + 1) << 32) | (next & StatusMask);
            if (TAtomics.CompareExchange(ref _freeHead.Value, replacement, head) == head) // CAS: takes the batch; pairs with other pops/pushes
            {
                if (lane is not null)
                {
                    lane.CacheCount = taken - 1;
                }

                return top;
            }
        }
    }

    /// <summary>Pushes the chain first..last (already linked through Link) onto the free list.</summary>
    private void PushFreeChain(int first, int last)
    {
        ref TimerNode tail = ref Node(last);
        while (true)
        {
            long head = TAtomics.LoadAcquire(ref _freeHead.Value); // acquire: pairs with the other CASes on the head
            TAtomics.StoreRelease(ref tail.Link, head & StatusMask); // release: ordered before the publishing CAS
            long replacement = (((head >>> 32) + 1) << 32) | (uint)(first + 1);
            if (TAtomics.CompareExchange(ref _freeHead.Value, replacement, head) == head) // CAS: publishes the freed nodes to RefillAndTake
            {
                return;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PushInbox(int index, ref TimerNode node)
    {
        while (true)
        {
            long head = TAtomics.LoadAcquire(ref _inboxHead.Value); // acquire: pairs with the other pushes and the driver's take
            TAtomics.StoreRelease(ref node.Link, head); // release: ordered before the publishing CAS
            if (TAtomics.CompareExchange(ref _inboxHead.Value, index + 1, head) == head) // CAS: publishes the node's fields to the driver's take
            {
                return;
            }
        }
    }

    /// <summary>Grows the pool by one chunk. Returns a node index for the caller, or -1 when another thread refilled the free list.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int Grow()
    {
        using (InterruptDeferral.Lock(_growLock))
        {
            if ((int)(uint)TAtomics.LoadAcquire(ref _freeHead.Value) != 0)
            {
                return -1; // refilled meanwhile
            }

            if (TAtomics.LoadAcquire(ref _clock.Flags) is var flags && (flags & DisposedFlag) != 0)
            {
                throw new ObjectDisposedException(nameof(HierarchicalTimerWheel));
            }

            return GrowLocked();
        }
    }

    private int GrowLocked()
    {
        long allocated = _allocated; // plain: only written under _growLock (or in the constructor)
        if (allocated >= _maxTimers)
        {
            ThrowHelper.ThrowInvalidOperation(
                $"The timer wheel holds its maximum of {_maxTimers} timers (pending, or fired/cancelled and not yet reclaimed by the driver).");
        }

        int first = (int)allocated;
        int count = (int)Math.Min(ChunkSize, _maxTimers - allocated);
        var chunk = new TimerNode[ChunkSize];
        for (int i = 0; i < count; i++)
        {
            chunk[i].StateWord = 1L << 32; // generation 1, Free; published by the free-list CAS below
            chunk[i].Link = i + 1 < count ? first + i + 2 : 0;
            chunk[i].Next = -1;
            chunk[i].Prev = -1;
        }

        _chunks[first >> ChunkShift] = chunk; // written once, before any index of the chunk is reachable
        TAtomics.StoreRelease(ref _allocated, allocated + count); // release: pairs with AllocatedNodes
        if (count > 1)
        {
            PushFreeChain(first + 1, first + count - 1); // the caller keeps the first node
        }

        if (allocated == 0)
        {
            PushFreeChain(first, first); // constructor: everything goes to the free list
            return -1;
        }

        return first;
    }

    [DoesNotReturn]
    private static void ThrowForeignHandle() =>
        throw new ArgumentException("The handle was issued by another timer wheel.", "handle");

    [DoesNotReturn]
    private static void ThrowCallbackNull() => throw new ArgumentNullException("callback");

    [DoesNotReturn]
    private static void ThrowDueInOutOfRange(TimeSpan dueIn) =>
        throw new ArgumentOutOfRangeException(nameof(dueIn), dueIn, "dueIn must be non-negative and at most MaxDueIn.");
}
