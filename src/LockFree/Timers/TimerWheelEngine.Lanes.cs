using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockFree.Internal;

namespace LockFree.Timers;

// Lanes: a thread that schedules on a wheel more than once gets a lane there, a pair of single-producer
// single-consumer rings shared with the driver only:
//   Entries  (thread -> driver): node indices to look at (newly scheduled; cancelled while linked). The thread
//            stores the slot plainly and release-stores PublishedTail; the driver acquire-loads PublishedTail,
//            reads the slots and release-stores Head. No locked instruction on either side.
//   Returned (driver -> thread): nodes the driver freed while draining this lane (a cancel-while-queued or a
//            cancel-while-linked whose notice came through this lane). The driver stores the slots and
//            release-stores ReturnTail; the thread takes them in batches into its Cache and release-stores
//            ReturnHead. So the schedule/cancel/drain cycle of one thread reuses its nodes without the free list.
// A full Entries ring (the driver is behind) or a thread's first schedule on a wheel falls back to the shared
// inbox (one CAS). A full Returned ring sends freed nodes to the free list (one CAS per drain).
//
// Lost wake-ups with a sleeping driver: the lane push is a plain store, not a fence, so the Dekker pair "producer
// store, producer load of Flags / driver CAS of Stale, driver load of the lanes" needs the driver's side to be
// an asymmetric fence: after raising Stale and before its final scan the driver calls ProcessWideBarrier (once
// per long sleep). Every thread's program is then cut in two at the barrier: a push before the cut is visible to
// the scan; a Flags load after the cut comes after the Stale CAS and sees Stale, and the scheduler wakes the driver.
//
// Lanes live in the wheel's registry (_lanes, copy-on-write under _laneLock) and in the thread's own list
// (t_lanes). The driver retires the lane of a thread that has ended: it drains it one last time and gives its
// cached and returned nodes back to the free list, so threads that come and go strand no nodes. A thread keeps at
// most MaxLanesPerThread lanes; at the limit it uses the inbox on other wheels and swaps a lane in (abandoning its
// oldest, retired at the driver's next drain) only every LaneSwapInterval such schedules, so a thread going round
// many wheels neither allocates a lane per visit nor strands a refill batch of nodes per visit.
internal sealed partial class TimerWheelEngine<TAtomics>
{
    /// <summary>Drains between two liveness checks of the lanes' threads.</summary>
    private const int RetireCheckInterval = 64;

    /// <summary>Lanes one thread keeps (on as many wheels); beyond that its oldest is abandoned.</summary>
    private const int MaxLanesPerThread = 8;

    /// <summary>
    /// At the lane limit, schedules through the inbox on wheels without a lane between two lane swaps (a swap
    /// abandons the oldest lane and creates one here). Without it a thread going round more than 8 wheels created
    /// a lane (9 KiB, a refill batch of free nodes stranded until the driver retired the abandoned lane) every few
    /// schedules: the pool filled up with stranded nodes (review of issue 6).
    /// </summary>
    private const int LaneSwapInterval = 64;

    private static long s_nextEngineId;

    [ThreadStatic]
    private static Lane? t_lanes; // every lane of this thread, linked through NextOfThread

    /// <summary>Wheels a thread remembers having scheduled on once without a lane (a power of two).</summary>
    private const int SeenOnceSlots = 4;

    [ThreadStatic]
    private static long[]? t_seenOnce; // ids of the last wheels this thread scheduled on once, without a lane (0: none)

    [ThreadStatic]
    private static int t_seenOnceNext; // the next slot of t_seenOnce to overwrite

    [ThreadStatic]
    private static int t_overLimit; // inbox schedules at the lane limit since this thread's last lane swap

    private readonly long _engineId = Interlocked.Increment(ref s_nextEngineId);
    private readonly object _laneLock = new();
    private readonly int _laneRingSize;   // entries per lane ring (a power of two)
    private readonly int _returnCapacity; // effective Returned capacity (small pools strand fewer nodes)
    private readonly int _refillBatch;    // nodes taken from the free list per CAS
    private Lane[] _lanes = [];           // registry: copy-on-write under _laneLock, acquire-loaded by the driver
    private int _drains;                  // driver-only: counts drains, paces the liveness checks

    /// <summary>Lanes registered now (tests).</summary>
    internal int LaneCount => TAtomics.LoadAcquireReference(ref _lanes).Length; // acquire: pairs with the release in AddLane / RetireLane

    /// <summary>This thread's lane on this wheel, or null (first use: the caller uses the shared inbox).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Lane? CurrentLane()
    {
        // A thread static of a generic class is reached through a helper call; a non-generic one is inlined.
        WheelLane? lane = WheelLane.Current;
        return lane is not null && ReferenceEquals(lane.Owner, this) ? Unsafe.As<Lane>(lane) : FindLane(); // the owner check proves the type
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Lane? FindLane()
    {
        // Walk this thread's lanes, dropping those of disposed wheels (they would keep the wheel reachable).
        Lane? previous = null;
        int count = 0;
        for (Lane? lane = t_lanes; lane is not null; lane = lane.NextOfThread)
        {
            if (ReferenceEquals(lane.Engine, this))
            {
                WheelLane.Current = lane;
                return lane;
            }

            if (lane.Engine.IsDisposed)
            {
                if (previous is null)
                {
                    t_lanes = lane.NextOfThread;
                }
                else
                {
                    previous.NextOfThread = lane.NextOfThread;
                }

                if (ReferenceEquals(WheelLane.Current, lane))
                {
                    WheelLane.Current = null;
                }

                continue;
            }

            previous = lane;
            count++;
        }

        // Once: a thread that schedules a single timer here costs no lane. Up to SeenOnceSlots wheels are remembered,
        // so a thread that alternates between a few wheels gets a lane on each at its second visit.
        long[] seen = t_seenOnce ??= new long[SeenOnceSlots];
        if (Array.IndexOf(seen, _engineId) < 0)
        {
            seen[t_seenOnceNext] = _engineId;
            t_seenOnceNext = (t_seenOnceNext + 1) & (SeenOnceSlots - 1);
            return null;
        }

        if (count >= MaxLanesPerThread && ++t_overLimit < LaneSwapInterval)
        {
            return null; // at the limit: the inbox; a lane swap (abandoning the oldest) only now and then
        }

        t_overLimit = 0;
        return AddLane();
    }

    private Lane? AddLane()
    {
        var lane = new Lane(this, Thread.CurrentThread, _laneRingSize);
        // No seam call while holding _laneLock: under the controlled scheduler a scheduling point inside a lock
        // would hand the baton to a thread that may block on the same lock.
        using (InterruptDeferral.Lock(_laneLock))
        {
            if ((Volatile.Read(ref _clock.Flags) & DisposedFlag) != 0)
            {
                return null; // the caller's schedule fails on its own path
            }

            Lane[] old = _lanes;
            var lanes = new Lane[old.Length + 1];
            old.CopyTo(lanes, 0);
            lanes[^1] = lane;
            Volatile.Write(ref _lanes, lanes); // release: the lane's construction before the driver's acquire load of _lanes
        }

        lane.NextOfThread = t_lanes;
        t_lanes = lane;
        WheelLane.Current = lane;

        // A thread keeps at most MaxLanesPerThread lanes: a thread that creates wheel after wheel (and never
        // disposes them) must not keep them all reachable. The oldest is abandoned: this thread never touches it
        // again, and the driver retires it as if the thread had ended (its nodes go back to the free list).
        int count = 1;
        for (Lane? l = lane; l.NextOfThread is { } next; l = next)
        {
            if (++count > MaxLanesPerThread)
            {
                l.NextOfThread = null;
                if (ReferenceEquals(WheelLane.Current, next))
                {
                    WheelLane.Current = null;
                }

                TAtomics.StoreRelease(ref next.Abandoned, 1); // release: our last writes of its private fields, before the driver reads them
                break;
            }
        }

        return lane;
    }

    /// <summary>Publishes a node index on the lane. False when the ring is full (the caller uses the inbox).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryPush(Lane lane, int index)
    {
        long tail = lane.Tail;
        if (tail - lane.HeadSeen >= lane.RingSize && tail - (lane.HeadSeen = TAtomics.LoadAcquire(ref lane.Head.Value)) >= lane.RingSize) // acquire: pairs with the driver's release of Head (the slot is free)
        {
            return false;
        }

        TAtomics.StorePlain(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(lane.Entries), (int)tail & lane.Mask), index); // plain: published by the release below
        lane.Tail = tail + 1;
        TAtomics.StoreRelease(ref lane.PublishedTail.Value, tail + 1); // release: the slot and the node's fields to the driver's acquire of PublishedTail
        return true;
    }

    /// <summary>Refills the lane's cache from its Returned ring. Returns how many nodes it took.</summary>
    private static int TakeReturned(Lane lane)
    {
        long head = lane.ReturnHead;
        long available = TAtomics.LoadAcquire(ref lane.ReturnTail.Value) - head; // acquire: pairs with the driver's release of ReturnTail
        int take = (int)Math.Min(available, Lane.CacheSize);
        for (int i = 0; i < take; i++)
        {
            lane.Cache[i] = TAtomics.LoadPlain(ref lane.Returned[(int)(head + i) & lane.Mask]); // plain: published by ReturnTail
        }

        if (take > 0)
        {
            lane.CacheCount = take;
            lane.ReturnHead = head + take;
            TAtomics.StoreRelease(ref lane.PublishedReturnHead.Value, head + take); // release: our reads of the slots before the driver reuses them
        }

        return take;
    }

    /// <summary>True when the inbox or a lane holds something the driver has not taken in.</summary>
    private bool HasInput()
    {
        if (TAtomics.LoadAcquire(ref _inboxHead.Value) != 0) // acquire: pairs with the producers' push CAS
        {
            return true;
        }

        foreach (Lane lane in TAtomics.LoadAcquireReference(ref _lanes)) // acquire: pairs with AddLane
        {
            if (TAtomics.LoadAcquire(ref lane.PublishedTail.Value) != lane.DriverHead) // acquire: pairs with TryPush's release
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Driver (under the gate): takes in every lane's entries; freed nodes go back through Returned where there is room.</summary>
    private void DrainLanes(ref int fireHead, ref int freeFirst, ref int freeLast, ref long cancelled)
    {
        Lane[] lanes = TAtomics.LoadAcquireReference(ref _lanes); // acquire: pairs with AddLane
        bool checkLiveness = ++_drains % RetireCheckInterval == 0;
        for (int l = 0; l < lanes.Length; l++)
        {
            Lane lane = lanes[l];
            // Before the tail load: an ended thread (or one that abandoned the lane) pushes nothing more. An abandoned
            // lane is retired at the next drain (one load); the thread's liveness (a runtime call) only every 64 drains.
            bool ended = TAtomics.LoadAcquire(ref lane.Abandoned) != 0 || (checkLiveness && !lane.Thread.IsAlive); // acquire: pairs with the release in AddLane
            long head = lane.DriverHead;
            long tail = TAtomics.LoadAcquire(ref lane.PublishedTail.Value); // acquire: pairs with TryPush's release
            if (head != tail)
            {
                cancelled += DrainLane(lane, head, tail, ended, ref fireHead, ref freeFirst, ref freeLast);
            }

            if (ended)
            {
                RetireLane(lane, ref freeFirst, ref freeLast);
            }
        }
    }

    /// <summary>Driver: takes in the lane's entries [head, tail). Returns how many nodes it freed (all cancelled).</summary>
    private int DrainLane(Lane lane, long head, long tail, bool ended, ref int fireHead, ref int freeFirst, ref int freeLast)
    {
        // Loop state in locals (the ref parameters are touched only off the common path), slots without bounds checks.
        ref int entries = ref MemoryMarshal.GetArrayDataReference(lane.Entries);
        ref int returned = ref MemoryMarshal.GetArrayDataReference(lane.Returned);
        int mask = lane.Mask;
        long returnTail = lane.DriverReturnTail;
        long returnLimit = ended ? returnTail : lane.ReturnHeadSeen + _returnCapacity; // an ended thread takes nothing back
        int fires = fireHead;
        int freed = 0;
        for (; head != tail; head++)
        {
            int index = TAtomics.LoadPlain(ref Unsafe.Add(ref entries, (int)head & mask)); // plain: published by PublishedTail
            ref TimerNode node = ref Node(index);
            int outcome = TakeIn(index, ref node);
            if (outcome == TakenIn.Linked)
            {
                continue;
            }

            if (outcome == TakenIn.Due)
            {
                node.Next = fires;
                fires = index;
                continue;
            }

            freed++;
            if (returnTail == returnLimit && !ended)
            {
                lane.ReturnHeadSeen = TAtomics.LoadAcquire(ref lane.PublishedReturnHead.Value); // acquire: pairs with TakeReturned's release (the slot is free)
                returnLimit = lane.ReturnHeadSeen + _returnCapacity;
            }

            if (returnTail != returnLimit)
            {
                TAtomics.StorePlain(ref Unsafe.Add(ref returned, (int)returnTail & mask), index); // plain: published by ReturnTail below
                returnTail++;
            }
            else
            {
                ChainFree(index, ref freeFirst, ref freeLast);
            }
        }

        fireHead = fires;
        lane.DriverHead = tail;
        TAtomics.StoreRelease(ref lane.Head.Value, tail); // release: our slot reads before the producer reuses the slots
        if (returnTail != lane.DriverReturnTail)
        {
            lane.DriverReturnTail = returnTail;
            TAtomics.StoreRelease(ref lane.ReturnTail.Value, returnTail); // release: the freed nodes and slots to TakeReturned
        }

        return freed;
    }

    /// <summary>Driver: the lane's thread has ended; its cached and returned nodes go back to the free list.</summary>
    private void RetireLane(Lane lane, ref int freeFirst, ref int freeLast)
    {
        // The thread is gone (or abandoned the lane with a release store), so its private fields are final. Thread
        // exit publishes through the runtime's own locks; the full fence keeps the reads below from moving ahead of
        // the liveness answer on weakly ordered hardware (ARM64). Once per retired lane.
        TAtomics.FullFence();
        for (int i = 0; i < lane.CacheCount; i++)
        {
            ChainFree(lane.Cache[i], ref freeFirst, ref freeLast);
        }

        for (long r = lane.ReturnHead; r != lane.DriverReturnTail; r++)
        {
            ChainFree(lane.Returned[(int)r & lane.Mask], ref freeFirst, ref freeLast);
        }

        lane.CacheCount = 0;
        lane.ReturnHead = lane.DriverReturnTail;
        using (InterruptDeferral.Lock(_laneLock))
        {
            Lane[] old = _lanes;
            var lanes = new Lane[old.Length - 1];
            int j = 0;
            foreach (Lane other in old)
            {
                if (!ReferenceEquals(other, lane))
                {
                    lanes[j++] = other;
                }
            }

            Volatile.Write(ref _lanes, lanes); // release: pairs with the acquire loads of _lanes (no seam call under the lock)
        }
    }

    /// <summary>Appends a freed node to the chain the drain pushes on the free list at its end; clears its callback.</summary>
    private void ChainFree(int index, ref int freeFirst, ref int freeLast)
    {
        TAtomics.StorePlain(ref Node(index).Callback, null); // plain: driver-owned; published by PushFreeChain (the free list holds no callbacks)
        if (freeFirst < 0)
        {
            freeFirst = index;
        }
        else
        {
            TAtomics.StoreRelease(ref Node(freeLast).Link, index + 1); // release: chain link, published by PushFreeChain
        }

        freeLast = index;
    }

    /// <summary>
    /// Tests, quiescent wheel only: every free node is in exactly one place (the free list, a lane's cache or
    /// Returned ring), every node in those places is free with a null State, and free-list nodes hold no callback.
    /// Returns the first problem found, or null.
    /// </summary>
    internal string? AuditPool()
    {
        using (InterruptDeferral.Lock(_gate))
        {
            var seen = new HashSet<int>();
            string? problem = null;
            void Add(int index, string where)
            {
                if (!seen.Add(index))
                {
                    problem ??= $"node {index} is free twice (again in {where})";
                }
                else if ((Volatile.Read(ref Node(index).StateWord) & StatusMask) != TimerNodeStatus.Free)
                {
                    problem ??= $"node {index} in {where} is not free (status {Volatile.Read(ref Node(index).StateWord) & StatusMask})";
                }
                else if (Node(index).State is not null || (where == "the free list" && Node(index).Callback is not null))
                {
                    problem ??= $"node {index} in {where} still references its state or (free list) callback";
                }
            }

            int steps = 0;
            for (long link = Volatile.Read(ref _freeHead.Value) & StatusMask; link != 0 && steps++ <= _maxTimers; link = Volatile.Read(ref Node((int)link - 1).Link))
            {
                Add((int)link - 1, "the free list");
            }

            foreach (Lane lane in Volatile.Read(ref _lanes))
            {
                for (int i = 0; i < lane.CacheCount; i++)
                {
                    Add(lane.Cache[i], "a lane cache");
                }

                for (long r = lane.ReturnHead; r != lane.DriverReturnTail; r++)
                {
                    Add(lane.Returned[(int)r & lane.Mask], "a Returned ring");
                }
            }

            long free = 0;
            for (int index = 0; index < Volatile.Read(ref _allocated); index++)
            {
                free += (Volatile.Read(ref Node(index).StateWord) & StatusMask) == TimerNodeStatus.Free ? 1 : 0;
            }

            return problem ?? (free != seen.Count ? $"{free} nodes are free but {seen.Count} are reachable for reuse (a node was lost)" : null);
        }
    }

    /// <summary>
    /// One thread's lane on one wheel. Fields are grouped by writer: the owner thread's private fields, the
    /// driver's private fields, and the four published indices, each on its own padded line.
    /// </summary>
    internal sealed class Lane(TimerWheelEngine<TAtomics> engine, Thread thread, int ringSize) : WheelLane(engine)
    {
        /// <summary>Default entries per ring (a power of two).</summary>
        public const int DefaultRingSize = 1024;
        public const int CacheSize = 32;

        public readonly TimerWheelEngine<TAtomics> Engine = engine;
        public readonly Thread Thread = thread;
        public readonly int RingSize = ringSize;
        public readonly int Mask = ringSize - 1;
        public readonly int[] Entries = new int[ringSize];
        public readonly int[] Returned = new int[ringSize];
        public readonly int[] Cache = new int[CacheSize];

        // 1 once the owner gave the lane up (it keeps at most MaxLanesPerThread): retired like an ended thread's.
        public long Abandoned;

        // Owner-private (the driver reads them only after the owner ended or abandoned the lane).
        public int CacheCount;
        public long Tail;        // entries pushed
        public long HeadSeen;    // the driver's Head as last loaded
        public long ReturnHead;  // returned nodes taken
        public Lane? NextOfThread;

        // Driver-private (under the gate).
        public long DriverHead;
        public long DriverReturnTail;
        public long ReturnHeadSeen;

        public PaddedIndex PublishedTail;       // owner release-stores, driver acquire-loads
        public PaddedIndex Head;                // driver release-stores, owner acquire-loads when the ring looks full
        public PaddedIndex ReturnTail;          // driver release-stores, owner acquire-loads when its cache is empty
        public PaddedIndex PublishedReturnHead; // owner release-stores, driver acquire-loads when Returned looks full
    }
}

/// <summary>The non-generic base of the wheel's lanes: its thread static is reached without a helper call.</summary>
internal abstract class WheelLane(object owner)
{
    /// <summary>The lane this thread used last, of any wheel.</summary>
    [ThreadStatic]
    public static WheelLane? Current;

    /// <summary>The engine the lane belongs to.</summary>
    public readonly object Owner = owner;
}
