using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Internal;
using LockFree.Queues;

namespace LockFree.Timers;

/// <summary>The consumer lock of a <see cref="DelayQueueCore{T, TAtomics, TLock}"/>: a Monitor in the library, a spin lock through the test atomics under the controlled scheduler.</summary>
internal interface IConsumerLock
{
    /// <summary>Takes the lock (<paramref name="word"/> for implementations on a word, <paramref name="monitor"/> for a Monitor).</summary>
    static abstract void Enter(ref long word, object monitor);

    /// <summary>Takes the lock if it is free; never waits.</summary>
    static abstract bool TryEnter(ref long word, object monitor);

    /// <summary>Releases the lock.</summary>
    static abstract void Exit(ref long word, object monitor);
}

/// <summary>The library's consumer lock: a <see cref="Monitor"/> (blocks after a short spin; no spinning against a preempted holder).</summary>
internal readonly struct MonitorConsumerLock : IConsumerLock
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Enter(ref long word, object monitor) => Monitor.Enter(monitor);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryEnter(ref long word, object monitor) => Monitor.TryEnter(monitor);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Exit(ref long word, object monitor) => Monitor.Exit(monitor);
}

/// <summary>What the core calls, under its lock, when a reader about to park finds the root not yet due (the delay queue's wake-up).</summary>
internal interface IDelayWakeupArm
{
    /// <summary>Whether the wake-up is armed for exactly <paramref name="due"/> already.</summary>
    bool IsArmedFor(long due);

    /// <summary>Arms the wake-up for <paramref name="due"/>, <paramref name="dueIn"/> timestamps from now. Must end with a full fence (the handshake's first half).</summary>
    void Arm(long due, long dueIn);
}

// Design: the lock-free producer side and the locked consumer side of DelayQueue<T> (see its design comment for
// the arguments), generic over the atomics seam and the consumer lock, so that the controlled scheduler runs this
// very code (tests/Concurrency/Timers). DelayQueue<T> instantiates it with RealAtomics and a Monitor, and keeps
// the parts outside the seam: waiter lists, the wake-up, completion, the overflow policies.
//
// Shared words: _count (producers' bounded CAS, consumers' release), _rootDue (published under the lock, read by
// the lock-free "nothing due" check), the inbox's positions (the ring's own atomics), _dequeued/_evicted (written
// under the lock, read as snapshots). Everything else (the heap, _sequence, _knownNow) is touched only under the
// lock.
internal sealed class DelayQueueCore<T, TAtomics, TLock>
    where TAtomics : struct, IAtomics
    where TLock : struct, IConsumerLock
{
    private readonly DelayHeap<T> _heap;
    private readonly object _monitor = new();
    private readonly TimeProvider _time;
    private readonly long _capacity;
    private SequencedRing<DelayEntry<T>, TAtomics, MultiRole, SingleRole> _inbox;
    private long _lockWord;                // the lock for TLock implementations on a word; unused by the Monitor
    private long _count;                   // reserved + queued items, in [0, capacity]
    private long _rootDue = long.MaxValue; // the heap root's due time (MaxValue: heap empty; MinValue: a drain is moving items in)
    private long _sequence;                // arrival order; under the lock
    private long _knownNow;                // the latest clock reading known to have happened (valid once _hasKnownNow); under the lock
    private bool _hasKnownNow;             // whether any reading is known yet (a flag, not a sentinel: a timestamp may take any value); under the lock
    private long _dequeued;                // written under the lock, read as a snapshot
    private long _evicted;                 // written under the lock, read as a snapshot

    public DelayQueueCore(int capacity, TimeProvider time)
    {
        _capacity = capacity;
        _time = time;
        _inbox = new(capacity);
        _heap = new DelayHeap<T>(capacity);
    }

    /// <summary>Reserved and queued items: a snapshot.</summary>
    public long Count => TAtomics.LoadAcquire(ref _count); // acquire: snapshot

    public long Dequeued => TAtomics.LoadAcquire(ref _dequeued); // acquire: snapshot of a counter written under the lock

    public long Evicted => TAtomics.LoadAcquire(ref _evicted); // acquire: as above

    public long EnqueuedPositions => _inbox.EnqueuedPositions;

    public bool InboxIsEmpty => _inbox.IsEmpty;

    /// <summary>The root's due time as last published: MaxValue when the heap is empty, MinValue while a drain moves items in.</summary>
    public long PublishedRootDue => TAtomics.LoadAcquire(ref _rootDue); // acquire: pairs with the release in PublishRoot

    /// <summary>Heap size; under the lock.</summary>
    public int HeapCount => _heap.Count;

    /// <summary>The root's due time; under the lock, heap not empty.</summary>
    public long PeekDue => _heap.PeekDue;

    public void Enter() => TLock.Enter(ref _lockWord, _monitor);

    public bool TryEnter() => TLock.TryEnter(ref _lockWord, _monitor);

    public void Exit() => TLock.Exit(ref _lockWord, _monitor);

    /// <summary>Takes one unit of the count unless the queue is full. Lock-free; the CAS is a full fence (pairs with the completed flag's CAS in DelayQueue).</summary>
    public bool TryReserve()
    {
        long current = TAtomics.LoadAcquire(ref _count); // acquire: a first guess for the CAS
        while (current < _capacity)
        {
            long seen = TAtomics.CompareExchange(ref _count, current + 1, current); // CAS: the exact bound; pairs with Release's add
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    /// <summary>Returns units of the count; true when it reached zero.</summary>
    public bool Release(long units) => TAtomics.Add(ref _count, -units) == 0; // add: returns room after the item left the heap

    /// <summary>
    /// Publishes an item, due at <paramref name="due"/> (<see cref="Timestamps.DueAt"/>, or <see cref="Timestamps.DueNow"/>
    /// with no reading), with the enqueue's clock reading <paramref name="now"/>, into the inbox; needs a reservation.
    /// </summary>
    public void Publish(T item, long now, long due)
    {
        var entry = new DelayEntry<T> { Due = due, Sequence = now, Item = item }; // in the inbox, Sequence carries the enqueue's clock reading
        if (!_inbox.TryEnqueue(entry))
        {
            PublishSlow(entry);
        }
    }

    /// <summary>The lock-free "nothing due" answer of a polling dequeue: an empty inbox and a root not yet due (or none).</summary>
    public bool NothingDueLockFree()
    {
        if (!_inbox.IsEmpty)
        {
            return false;
        }

        long rootDue = TAtomics.LoadAcquire(ref _rootDue); // acquire: pairs with the release in PublishRoot
        if (rootDue == long.MaxValue)
        {
            return true;
        }

        // MinValue: a drain in progress, or a root due at once (Timestamps.DueNow): take the lock. Otherwise wrap-safe.
        return rootDue != long.MinValue && Timestamps.IsBefore(_time.GetTimestamp(), rootDue);
    }

    /// <summary>
    /// Takes the root if due. With <paramref name="arm"/> (a reader about to park), arms the wake-up for the root's
    /// due time when it is not due, then rechecks the inbox (the handshake's second half).
    /// </summary>
    public bool TryTake([MaybeNullWhen(false)] out T item, IDelayWakeupArm? arm)
    {
        Enter();
        try
        {
            while (true)
            {
                DrainInbox();
                if (_heap.Count == 0)
                {
                    item = default;
                    return false;
                }

                // The clock is monotonic, so a root due at or before a reading already seen (ours, or an enqueue's,
                // carried through the inbox) is due now without reading the clock again. Compared wrap-safe (session 11).
                long due = _heap.PeekDue;
                long now = _knownNow;
                if (due != Timestamps.DueNow && (!_hasKnownNow || Timestamps.IsBefore(now, due)))
                {
                    now = _time.GetTimestamp();
                    _knownNow = now;
                    _hasKnownNow = true;
                }

                if (due == Timestamps.DueNow || Timestamps.IsAtOrBefore(due, now))
                {
                    item = _heap.Pop();
                    TAtomics.StoreRelease(ref _dequeued, TAtomics.LoadOwn(ref _dequeued) + 1); // release: snapshot for GetStatistics (only lock holders write it)
                    PublishRoot();
                    return true;
                }

                if (arm is null || arm.IsArmedFor(due))
                {
                    item = default;
                    return false;
                }

                arm.Arm(due, unchecked(due - now));

                // Handshake with producers: an item published before our write of the armed time that they judged
                // against an older, later armed time must be seen here.
                if (_inbox.IsEmpty)
                {
                    item = default;
                    return false;
                }
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// DropOldest's step: under one hold of the lock, pops the root (whether due or not) and puts <paramref name="item"/> (read at <paramref name="now"/>, due at
    /// <paramref name="due"/>) straight into the heap in its place: the victim's unit of count passes to it, and no
    /// dequeue sees the queue between the two (session 16; before, the item went through the inbox after the lock was
    /// released, so a dequeue in between saw neither). False when the heap holds nothing (every unit is held by an
    /// enqueue still in flight); then nothing changed.
    /// </summary>
    public bool TryEvictRootAndInsert(T item, long now, long due, [MaybeNullWhen(false)] out T victim)
    {
        bool twoSteps = TAtomics.IsPlanted(PlantedFault.DelayEvictThenPublish); // the step before session 16 (test builds only)
        Enter();
        try
        {
            DrainInbox(); // earlier arrivals first: the new item's arrival number comes after theirs
            if (_heap.Count == 0)
            {
                victim = default;
                return false;
            }

            victim = _heap.Pop();
            TAtomics.StoreRelease(ref _evicted, TAtomics.LoadOwn(ref _evicted) + 1); // release: snapshot for GetStatistics
            if (!twoSteps)
            {
                NoteReading(due, now); // a reading that happened before this point, as the drain takes an entry's
                _heap.Push(due, _sequence++, item);
            }

            PublishRoot();
        }
        finally
        {
            Exit();
        }

        if (twoSteps)
        {
            Publish(item, now, due); // through the inbox, after the lock: a take in between sees neither item
        }

        return true;
    }

    /// <summary>Moves everything in the inbox into the heap, in inbox order. Under the lock.</summary>
    public void DrainInbox()
    {
        if (_inbox.IsEmpty)
        {
            return;
        }

        // "Root unknown" before the first item leaves the inbox: a lock-free check that sees the inbox emptied by
        // this drain also sees this (release, then the inbox's release of its head), so it takes the lock instead of
        // answering "nothing due" from a root that does not yet include the drained items.
        TAtomics.StoreRelease(ref _rootDue, long.MinValue); // release: pairs with NothingDueLockFree's acquire
        while (_inbox.TryDequeueWithoutPolls(out DelayEntry<T> entry)) // no boundary polls: every drain ends at a new empty position, under the lock
        {
            NoteReading(entry.Due, entry.Sequence);

            _heap.Push(entry.Due, _sequence++, entry.Item);
        }

        PublishRoot();
    }

    /// <summary>
    /// Under the lock: an enqueue's clock reading (<paramref name="reading"/>) happened before this point, so the time is
    /// at least that; <see cref="_knownNow"/> keeps the latest such reading. An item due at once (put in while the clock
    /// threw) carries none. Wrap-safe.
    /// </summary>
    private void NoteReading(long due, long reading)
    {
        if (due != Timestamps.DueNow && (!_hasKnownNow || Timestamps.IsBefore(_knownNow, reading)))
        {
            _knownNow = reading;
            _hasKnownNow = true;
        }
    }

    /// <summary>Publishes the root's due time for the lock-free check. Under the lock.</summary>
    /// <remarks>
    /// MaxValue means "empty": a root really due at MaxValue (a clock about to wrap) is published one timestamp earlier,
    /// which only makes the lock-free check take the lock (where the exact due time is compared) one timestamp sooner.
    /// </remarks>
    private void PublishRoot() =>
        TAtomics.StoreRelease(ref _rootDue, _heap.Count == 0 ? long.MaxValue : _heap.PeekDue == long.MaxValue ? long.MaxValue - 1 : _heap.PeekDue); // release: pairs with the acquire in NothingDueLockFree

    /// <summary>Never expected (see DelayQueue's design note); kept so a broken argument shows as a spin, not a lost item.</summary>
    private void PublishSlow(DelayEntry<T> entry)
    {
        Debug.Fail("the inbox is never full after a reservation");
        var spinner = default(SpinWait);
        while (!_inbox.TryEnqueue(entry))
        {
            TAtomics.SpinOnce(ref spinner);
        }
    }
}
