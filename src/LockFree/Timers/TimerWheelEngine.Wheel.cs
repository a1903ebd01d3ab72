using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Timers;

// The driver's half: drain the inbox, move the wheel to a target tick, fire outside the gate.
internal sealed partial class TimerWheelEngine<TAtomics>
{
    /// <summary>
    /// Takes in scheduled and cancelled timers, moves the wheel to <paramref name="targetTick"/> (never back),
    /// then runs the due callbacks on this thread after leaving the gate. Returns how many fired.
    /// </summary>
    internal int AdvanceTo(long targetTick, bool fromDriver = false)
    {
        int fireHead = -1;
        using (InterruptDeferral.Lock(_gate))
        {
            if (IsDisposed)
            {
                throw new ObjectDisposedException(nameof(HierarchicalTimerWheel));
            }

            DrainInbox(ref fireHead);
            if (targetTick > _wheelNow)
            {
                RunWheel(targetTick, ref fireHead);
            }

            CheckWheel();
            TAtomics.StoreRelease(ref _clock.Tick, _wheelNow); // release: pairs with the acquire in Schedule
            if (fromDriver)
            {
                SetStale(fireHead >= 0); // callbacks may take long: Schedule reads the clock meanwhile
            }
        }

        return fireHead < 0 ? 0 : Fire(fireHead);
    }

    /// <summary>The next tick at which something happens (a timer is due or a slot cascades), or long.MaxValue.</summary>
    internal long NextEventTick()
    {
        using (InterruptDeferral.Lock(_gate))
        {
            return NextEventTickLocked();
        }
    }

    private long NextEventTickLocked()
    {
        for (int level = 0; level < Levels; level++)
        {
            ulong bits = _occupied[level];
            if (bits != 0)
            {
                return SlotStart(level, BitOperations.TrailingZeroCount(bits));
            }
        }

        return long.MaxValue;
    }

    /// <summary>The first tick of slot <paramref name="slot"/> of <paramref name="level"/> in now's rotation.</summary>
    private long SlotStart(int level, int slot)
    {
        int shift = LevelBits * (level + 1);
        long high = shift >= 63 ? 0 : (_wheelNow >> shift) << shift;
        return high | ((long)slot << (LevelBits * level));
    }

    private void DrainInbox(ref int fireHead)
    {
        long head;
        do
        {
            head = TAtomics.LoadAcquire(ref _inboxHead.Value); // acquire: pairs with the producers' push CAS
        }
        while (head != 0 && TAtomics.CompareExchange(ref _inboxHead.Value, 0, head) != head); // CAS: takes the whole stack

        int freeFirst = -1, freeLast = -1;
        long cancelled = 0; // every node the drain frees was cancelled (fired nodes are freed by Fire)
        while (head != 0)
        {
            int index = (int)head - 1;
            head = TAtomics.LoadAcquire(ref Node(index).Link); // acquire: written before the push that published the node
            ref TimerNode node = ref Node(index);
            int outcome = TakeIn(index, ref node);
            if (outcome == TakenIn.Due)
            {
                node.Next = fireHead;
                fireHead = index;
            }
            else if (outcome == TakenIn.Freed)
            {
                cancelled++;
                ChainFree(index, ref freeFirst, ref freeLast);
            }
        }

        DrainLanes(ref fireHead, ref freeFirst, ref freeLast, ref cancelled);
        if (freeFirst >= 0)
        {
            PushFreeChain(freeFirst, freeLast);
        }

        if (cancelled != 0)
        {
            Interlocked.Add(ref _cancelled, cancelled); // metrics: counted here, so Cancel's path pays nothing
        }
    }

    /// <summary>
    /// Takes in one node from the inbox or a lane: links it, claims it for firing (the caller puts it on the fire
    /// batch), or (cancelled) unlinks and releases it (the caller frees it). Returns a <see cref="TakenIn"/> value.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int TakeIn(int index, ref TimerNode node)
    {
        long word = TAtomics.LoadAcquire(ref node.StateWord); // acquire: pairs with Schedule's release / Cancel's CAS
        long generation = word >>> 32;
        long status = word & StatusMask;
        if (status == TimerNodeStatus.Queued)
        {
            long due = TAtomics.LoadPlain(ref node.DueTick); // plain: published by the push we took the node from
            long claim = (generation << 32) | (long)(due <= _wheelNow ? TimerNodeStatus.Firing : TimerNodeStatus.Linked);
            if (TAtomics.CompareExchange(ref node.StateWord, claim, word) == word) // CAS: races Cancel's Queued -> Cancelled
            {
                if (due <= _wheelNow)
                {
                    return TakenIn.Due;
                }

                Link(index, due);
                return TakenIn.Linked;
            }

            // Cancel won: the status is Cancelled now.
        }
        else if (status == TimerNodeStatus.CancelQueued)
        {
            Unlink(index);
        }
        else
        {
            Debug.Assert(status == TimerNodeStatus.Cancelled, $"unexpected status {status} on the inbox");
        }

        Release(ref node, generation, clearCallback: false); // the caller's ChainFree clears it if the node goes to the free list
        return TakenIn.Freed;
    }

    private void RunWheel(long targetTick, ref int fireHead)
    {
        while (true)
        {
            int level = 0;
            while (level < Levels && _occupied[level] == 0)
            {
                level++;
            }

            if (level == Levels)
            {
                _wheelNow = targetTick;
                return;
            }

            int slot = BitOperations.TrailingZeroCount(_occupied[level]);
            long eventTick = SlotStart(level, slot);
            if (eventTick > targetTick)
            {
                _wheelNow = targetTick; // keeps every placement valid: see the design comment
                return;
            }

            _wheelNow = eventTick;
            int at = (level * SlotsPerLevel) + slot;
            int index = _slotHeads[at];
            _slotHeads[at] = -1;
            _occupied[level] &= ~(1UL << slot);
            while (index >= 0)
            {
                ref TimerNode node = ref Node(index);
                int next = node.Next;
                _linked--;
                long due = TAtomics.LoadPlain(ref node.DueTick); // plain: read before, at drain; only the driver uses it now
                if (due <= eventTick)
                {
                    Debug.Assert(due == eventTick, "a timer was left behind");
                    Claim(index, ref node, ref fireHead);
                }
                else
                {
                    Link(index, due); // cascade: one or more levels lower
                }

                index = next;
            }
        }
    }

    /// <summary>Linked -> Firing (onto the fire batch), or, when Cancel won, CancelQueued -> Cancelled (the drain frees it).</summary>
    private void Claim(int index, ref TimerNode node, ref int fireHead)
    {
        long word = TAtomics.LoadAcquire(ref node.StateWord); // acquire: pairs with Cancel's CAS
        long generation = word >>> 32;
        if ((word & StatusMask) == TimerNodeStatus.Linked
            && TAtomics.CompareExchange(ref node.StateWord, (generation << 32) | TimerNodeStatus.Firing, word) == word) // CAS: races Cancel's Linked -> CancelQueued
        {
            node.Next = fireHead;
            fireHead = index;
            return;
        }

        // Cancel won and pushed the node on the inbox; it is out of its slot now, so the drain only frees it.
        TAtomics.StoreRelease(ref node.StateWord, (generation << 32) | TimerNodeStatus.Cancelled); // release: read by the next drain (same gate) and Cancel (answers false)
    }

    private void Link(int index, long due)
    {
        Debug.Assert(due > _wheelNow, "linking a due timer");
        int level = (63 - BitOperations.LeadingZeroCount((ulong)(due ^ _wheelNow))) / LevelBits;
        int slot = (int)(due >> (LevelBits * level)) & (SlotsPerLevel - 1);
        int at = (level * SlotsPerLevel) + slot;
        ref TimerNode node = ref Node(index);
        int head = _slotHeads[at];
        node.Next = head;
        node.Prev = -1;
        if (head >= 0)
        {
            Node(head).Prev = index;
        }

        _slotHeads[at] = index;
        _occupied[level] |= 1UL << slot;
        _linked++;
    }

    private void Unlink(int index)
    {
        ref TimerNode node = ref Node(index);
        long due = TAtomics.LoadPlain(ref node.DueTick); // plain: driver-owned since the drain that linked it
        int level = (63 - BitOperations.LeadingZeroCount((ulong)(due ^ _wheelNow))) / LevelBits;
        int slot = (int)(due >> (LevelBits * level)) & (SlotsPerLevel - 1);
        int at = (level * SlotsPerLevel) + slot;
        if (node.Prev >= 0)
        {
            Node(node.Prev).Next = node.Next;
        }
        else
        {
            Debug.Assert(_slotHeads[at] == index, "unlink: the node is not where its due tick says");
            _slotHeads[at] = node.Next;
            if (node.Next < 0)
            {
                _occupied[level] &= ~(1UL << slot);
            }
        }

        if (node.Next >= 0)
        {
            Node(node.Next).Prev = node.Prev;
        }

        node.Next = -1;
        node.Prev = -1;
        _linked--;
    }

    /// <summary>
    /// Clears the node's state reference (and its callback when <paramref name="clearCallback"/>) and bumps its
    /// generation (0 is skipped: it marks default handles). A node freed into a lane's Returned ring keeps its
    /// callback: the thread that scheduled it likely schedules the same delegate again, and Schedule then skips the
    /// store and its GC write barrier. Every path to the shared free list clears it (<see cref="ChainFree"/>, Fire).
    /// </summary>
    private static void Release(ref TimerNode node, long generation, bool clearCallback)
    {
        if (clearCallback)
        {
            TAtomics.StorePlain(ref node.Callback, null); // plain: driver-owned; published to the next owner by the free-list CAS
        }

        TAtomics.StorePlain(ref node.State, null); // plain: as above, or by the Returned ring's release
        long next = (generation + 1) & StatusMask;
        TAtomics.StoreRelease(ref node.StateWord, (next == 0 ? 1 : next) << 32); // release: Free, new generation; stale handles stop matching
    }

    /// <summary>Runs the batch: each node is freed before its callback runs, so a callback can reuse it at once.</summary>
    private int Fire(int index)
    {
        // Lateness (metrics): one clock reading per batch, against each timer's due tick's start. The batch is already
        // out of the wheel: a clock that throws here must not lose it (before the review of 2026-11-23 the exception
        // escaped with every timer of the batch claimed and none run). Counted and reported; the batch's lateness is zero.
        long batchTimestamp = 0;
        bool timed = true;
        try
        {
            batchTimestamp = _timeProvider.GetTimestamp() - _originTimestamp;
        }
        catch (Exception ex)
        {
            timed = false;
            ReportClockFailure(ex);
        }

        long lateness = 0;
        double latenessTotal = 0;
        int count = 0;
        while (index >= 0)
        {
            ref TimerNode node = ref Node(index);
            int next = node.Next;
            lateness = timed ? Math.Max(0, batchTimestamp - (TAtomics.LoadPlain(ref node.DueTick) * _tickTimestamp)) : 0; // plain: driver-owned (Firing)
            latenessTotal += lateness;
            Action<object?>? callback = TAtomics.LoadPlain(ref node.Callback); // plain: driver-owned (Firing)
            object? state = TAtomics.LoadPlain(ref node.State);
            long generation = TAtomics.LoadAcquire(ref node.StateWord) >>> 32; // acquire: own earlier write
            node.Next = -1;
            Release(ref node, generation, clearCallback: true);
            PushFreeChain(index, index);
            count++;
            try
            {
                callback!(state);
            }
            catch (Exception ex)
            {
                ReportCallbackFailure(ex);
            }

            index = next;
        }

        if (timed)
        {
            AddLateness(latenessTotal);
            Interlocked.Exchange(ref _lastLateness, lateness);
        }
        else
        {
            // A batch whose reading failed is left out of both lateness metrics (its lateness is unknown; before the
            // review of 2026-11-23 it counted as zero: "on time"), so the average is over the timed timers only. Counted
            // on this rare path, so a normal batch pays nothing more.
            Interlocked.Add(ref _untimedFired, count);
        }

        Interlocked.Add(ref _fired, count);
        return count;
    }

    /// <summary>
    /// Counts a callback failure and raises <see cref="CallbackFailed"/> on this thread (the handler's own exceptions
    /// are swallowed). Also used for the library's wake-ups that fire after Dispose moved them off the wheel.
    /// </summary>
    internal void ReportCallbackFailure(Exception ex) => FailureReport.Raise(ref _failedCallbacks, CallbackFailed, _owner, ex);

    /// <summary>Adds a batch's lateness to the double total (a CAS loop: firing batches of nested or concurrent advances may overlap).</summary>
    private void AddLateness(double timestamps)
    {
        long seen = Interlocked.Read(ref _latenessTotalBits);
        while (true)
        {
            long next = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(seen) + timestamps);
            long found = Interlocked.CompareExchange(ref _latenessTotalBits, next, seen); // metrics only, once per fired batch
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    private void SetStale(bool stale)
    {
        while (true)
        {
            long flags = TAtomics.LoadAcquire(ref _clock.Flags); // acquire: pairs with the other flag CASes
            long wanted = stale ? flags | StaleFlag : flags & ~StaleFlag;
            if (wanted == flags || TAtomics.CompareExchange(ref _clock.Flags, wanted, flags) == flags) // CAS: a full fence (the driver's Dekker half)
            {
                return;
            }
        }
    }

    /// <summary>
    /// DEBUG builds: every occupancy bit matches a non-empty slot, every linked node sits where the placement rule
    /// (level of the highest differing digit of due and now) puts it, back links agree, and _linked counts them.
    /// </summary>
    [Conditional("DEBUG")]
    private void CheckWheel()
    {
        int count = 0;
        for (int level = 0; level < Levels; level++)
        {
            for (int slot = 0; slot < SlotsPerLevel; slot++)
            {
                int head = _slotHeads[(level * SlotsPerLevel) + slot];
                Debug.Assert((head >= 0) == ((_occupied[level] & (1UL << slot)) != 0), $"bitmap disagrees with slot {level}/{slot}");
                int prev = -1;
                for (int index = head; index >= 0; index = Node(index).Next)
                {
                    ref TimerNode node = ref Node(index);
                    Debug.Assert(node.Prev == prev, "broken back link");
                    Debug.Assert(node.DueTick > _wheelNow, "a linked timer is overdue");
                    int expectedLevel = (63 - BitOperations.LeadingZeroCount((ulong)(node.DueTick ^ _wheelNow))) / LevelBits;
                    Debug.Assert(expectedLevel == level && ((int)(node.DueTick >> (LevelBits * level)) & (SlotsPerLevel - 1)) == slot, "a timer is not where its due tick puts it");
                    prev = index;
                    count++;
                }
            }
        }

        Debug.Assert(count == _linked, $"_linked is {_linked}, the slots hold {count}");
    }
}

/// <summary>What <c>TakeIn</c> did with a node.</summary>
internal static class TakenIn
{
    /// <summary>Linked into a slot.</summary>
    public const int Linked = 0;

    /// <summary>Already due: claimed for firing; the caller puts it on the fire batch.</summary>
    public const int Due = 1;

    /// <summary>Cancelled: unlinked if it was linked, released; the caller frees it.</summary>
    public const int Freed = 2;
}
