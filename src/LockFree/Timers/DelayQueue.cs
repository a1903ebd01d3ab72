using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Queues;
using LockFree.Timers;

#if LOCKFREE_COMPOSED_TESTS
using ConsumerLock = LockFree.Tests.Concurrency.Timers.TestSpinLock;
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using ConsumerLock = LockFree.Timers.MonitorConsumerLock;
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

// Design: a bounded delay queue with lock-free producers and a short consumer-side lock.
//
// Code layout: the producer side and the locked consumer side (count, inbox, heap, root, the lock) live in
// DelayQueueCore<T, TAtomics, TLock>, instantiated here with RealAtomics and a Monitor, and run as is under the
// controlled scheduler by the linearizability tests (with the test atomics and a spin lock through the seam).
// This type adds what is outside the seam: waiter lists, the wake-up, completion, the overflow policies. Field
// names below (_count, _rootDue, _knownNow, the consumer lock) are the core's.
//
// Producers: reserve one unit of _count with a CAS bounded by the capacity (exact bound, never exceeded), then
// publish (due, item) into an MPSC inbox (the SequencedRing engine of MpscQueue, a Vyukov ring). The inbox is never full after a
// reservation: every inbox item holds a reservation, an item leaves the inbox (its slot released) before its
// reservation is returned, and the inbox is FIFO with capacity >= Capacity, so the slot a producer claims was
// released by the item Capacity positions earlier. No producer takes a lock on the accepting path.
//
// Consumers: the heap (DelayHeap: 4-ary min-heaps by due time, then arrival order, a small near one beside the far
// one since session 19, so items due before a large backlog stay in cache) lives on the consumer side
// under _consumerLock, which makes whoever holds it the inbox's single consumer. A dequeue drains the inbox into
// the heap (arrival order = inbox order, so ties are FIFO), then pops the root if it is due. The lock is held for
// the drain and one heap operation; no user code, no wait, no allocation runs under it. A polling TryDequeue
// that finds nothing can skip the lock: the inbox's emptiness, then _rootDue (the root's due time, published under
// the lock; MinValue while a drain moves items in, so a drain in progress never makes it answer "nothing due"),
// answer "nothing due" lock-free. An evicting producer (DropOldest) takes the lock to pop the root and put its own item
// straight into the heap, one step (session 16).
//
// Clock: an enqueue reads it once (due = now + delay) and carries that reading through the inbox (in the entry's
// Sequence field, which the drain then overwrites with the arrival number). The consumer side keeps the latest
// reading known to have happened (_knownNow) and reads the clock only when the root is due after it: timestamps
// are monotonic, so a root due at or before a past reading is due now. An item due at once costs one reading.
// Timestamps may wrap past long.MaxValue: every comparison of two is the sign of their difference (Timestamps;
// long.MinValue marks an item due at once without a reading, long.MaxValue the published root's "empty").
//
// Waiting readers (DequeueAsync) park on a WaiterList (pooled IValueTaskSource waiters: no allocation in steady
// state). One re-armable wake-up (a TimeProvider timer, or a timer on the user's HierarchicalTimerWheel, behind the
// Wakeups seam) is armed for the root's due time
// whenever a reader parks on a heap whose root is not yet due; _armedFor holds that time (long.MaxValue: none).
// Lost wake-ups are excluded by two Dekker handshakes, each "write, full fence, read the other side":
//   reader: link the waiter; fence; drain the inbox            producer: publish; fence; read the waiter count
//   reader: write _armedFor; fence; recheck the inbox          producer: publish; fence; read _armedFor
// A producer signals one reader when readers wait and its due time is earlier than _armedFor (so an item due
// after the armed time costs no wake-up: the armed timer's reader will drain it). The timer callback resets
// _armedFor and signals one reader. A parked reader that took an item passes on to the readers still parked: it
// wakes one when the next root is due too (several items due at once wake several readers, one after another), and
// otherwise arms the wake-up for the next root, so nobody is woken just to find nothing due.
//
// Completion: Complete() stops new items; readers drain what is left, delayed items included, and Completion
// completes once the count reaches zero. A producer reserves before it reads the completed flag and
// Complete() sets the flag before it reads the count (both interlocked), so an item is either refused or counted.
//
// Accounting: Enqueued = inbox positions + Evicted (DropOldest's items go straight into the heap, one per eviction);
// Dequeued and Evicted are counted under the lock; dropped and rejected
// on their overflow paths. Enqueued = Dequeued + Evicted + Remaining when no operation is in flight.
//
// Progress: producers are lock-free (a CAS loop on the count, then the inbox's CAS); consumers are blocking
// (a lock, held briefly). Thread roles: any number of producers and consumers.
//
// Why the consumer lock stays (and exactly where it is taken). Taken by: a TryDequeue that cannot answer
// "nothing due" lock-free (the inbox holds items, or the published root is due); DequeueAsync's park/recheck
// (TryTake with arming) and its pass-on after a take; a DropOldest producer that finds the queue full (to pop the
// root); GetTimeUntilNextDue; Dispose. EstimateRetryAfter only tries it (Monitor.TryEnter: a rejected producer
// never waits on it); GetStatistics does not take it (the two counters it guards are read as snapshots). It is
// held for one inbox drain plus one heap operation: O(k + log n) for k drained items, with no user code, no
// waiting and no allocation under it. It remains because what it protects is sequential by nature: (1) the heap,
// whose pop moves O(log n) slots of one array, and (2) the inbox's single-consumer role (MPSC ring). A lock-free
// replacement would be a concurrent priority queue: a lock-free skip list (Sundell-Tsigas, Linden-Jonsson)
// allocates a node per item and needs marked-pointer deletion (0 B/op lost, and an uncontended take would cost
// several CASes and cache misses instead of one uncontended Monitor enter/exit, about 20 ns here); relaxed
// designs (MultiQueue, SprayList) give up the exact order the contract promises (due time, then FIFO). A CAS
// spin lock in place of the Monitor would still be a lock (same progress class) and spins when a holder is
// preempted mid-drain. So consumers stay blocking, the side that scales is the producers', and the common polling
// miss ("nothing due") is lock-free.

/// <summary>
/// A bounded queue whose items become visible only once their delay has passed: retry scheduling, debouncing,
/// scheduled work. Items come out by due time, and in enqueue order among equal due times.
/// </summary>
/// <remarks>
/// Enqueues are lock-free and tell what happened to the item (<see cref="WriteResult"/>) under the queue's
/// <see cref="OverflowPolicy"/>. <see cref="TryDequeue"/> returns only due items; <see cref="DequeueAsync"/> waits
/// (without blocking a thread, and without allocating in steady state) until an item is due. Time comes from the
/// <see cref="DelayQueueOptions{T}.TimeProvider"/>. See <c>docs/retry-and-dead-letters.md</c>.
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}, FullMode = {FullMode}")]
public sealed partial class DelayQueue<T> : IDisposable, IBufferMetricsSource
{
    private readonly DelayQueueCore<T, Seam, ConsumerLock> _core; // inbox, heap, count, root: the explorable part
    private readonly WakeupArm _arm;
    private readonly WaiterList<Seam> _readers;
    private readonly WaiterList<Seam> _writers;
    private readonly TimeProvider _time;
    private readonly HierarchicalTimerWheel? _wheel; // drives the wake-up when given; else a TimeProvider timer
    private readonly double _timestampsPerTick;
    private readonly Action<T, DropReason>? _itemDropped;
    private long _callbackFailures; // ItemDropped exceptions caught (see CallbackFailed): rare path
    private long _clockFailures; // retry-hint clock readings that threw (see ClockFailed): rare path
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IWakeup? _wakeup; // created on the first park, under the lock

    private long _armedFor = long.MaxValue; // when the wake-up fires (MaxValue: not armed); see the handshakes above
    private long _droppedIncoming;
    private long _rejected;
    private long _completed;
    private long _finished;
    private long _disposed;

    /// <summary>Creates a delay queue that holds at most <paramref name="capacity"/> items.</summary>
    /// <param name="capacity">The most items the queue holds (pending and due), in [1, 2^30]. Exact: not rounded.</param>
    /// <param name="options">Overflow policy, drop callback, metrics name and clock; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> or the full mode is out of range.</exception>
    /// <exception cref="ArgumentNullException">The options' <see cref="DelayQueueOptions{T}.TimeProvider"/> is null.</exception>
    /// <exception cref="ArgumentException">The options' <see cref="DelayQueueOptions{T}.TimerWheel"/> reads another clock than its <see cref="DelayQueueOptions{T}.TimeProvider"/>.</exception>
    public DelayQueue(int capacity, DelayQueueOptions<T>? options = null)
    {
        options ??= new DelayQueueOptions<T>();
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        Wakeups.ValidateWheel(options.TimerWheel, options.TimeProvider, nameof(options));
        if (capacity < 1 || capacity > QueueCapacity.Max)
        {
            ThrowHelper.ThrowCapacityOutOfRange(capacity);
        }

        if (!Enum.IsDefined(options.FullMode))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.FullMode, "FullMode is not an OverflowPolicy value.");
        }

        Capacity = capacity;
        FullMode = options.FullMode;
        Name = options.Name;
        _itemDropped = options.ItemDropped;
        _time = options.TimeProvider;
        _wheel = options.TimerWheel;
        _timestampsPerTick = _time.TimestampFrequency / (double)TimeSpan.TicksPerSecond;
        _core = new DelayQueueCore<T, Seam, ConsumerLock>(capacity, _time);
        _arm = new WakeupArm(this);

        // Its waits arm no timer today (no timeouts: cancellation only), so this never runs; wired to the clock's failure
        // report all the same, so a timed wait added later cannot lose a timer's failure (see WaiterList.TimerFailed).
        Action<Exception> timerFailed = error => FailureReport.Raise(ref _clockFailures, ClockFailed, this, error);
        _readers = new WaiterList<Seam>(timerFailed);
        _writers = new WaiterList<Seam>(timerFailed);
        if (Name is not null)
        {
            BackpressureMetrics.Register(this);
        }
    }

    /// <summary>The longest delay an enqueue accepts (about 49.7 days, the longest a timer can be armed for).</summary>
    public static TimeSpan MaxDelay => Wakeups.MaxDelay;

    /// <summary>The most items the queue holds, pending and due together.</summary>
    public int Capacity { get; }

    /// <summary>The items in the queue, pending and due: an approximate snapshot (it includes enqueues in flight).</summary>
    public int Count => (int)_core.Count;

    /// <summary>The policy an enqueue follows when the queue is full.</summary>
    public OverflowPolicy FullMode { get; }

    /// <summary>The name the metrics are tagged with, or null.</summary>
    public string? Name { get; }

    /// <summary>Whether <see cref="Complete"/> has been called (enqueues take nothing; readers drain what is left).</summary>
    public bool IsCompleted => Seam.LoadAcquire(ref _completed) != 0;

    /// <summary>Completes once the queue has been completed and every item, delayed ones included, has been dequeued or evicted.</summary>
    public Task Completion => _completion.Task;

    /// <summary>
    /// Enqueues <paramref name="item"/> to become visible <paramref name="delay"/> from now, without waiting: under
    /// <see cref="OverflowPolicy.Wait"/> and <see cref="OverflowPolicy.Reject"/> a full queue answers
    /// <see cref="WriteOutcome.Rejected"/> with <see cref="WriteResult.RetryAfter"/> = the time until the earliest
    /// pending item is due (room appears no sooner while readers keep up), <see cref="TimeSpan.Zero"/> when one is due.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative or above <see cref="MaxDelay"/>.</exception>
    /// <exception cref="ObjectDisposedException">The queue has been disposed.</exception>
    public WriteResult TryEnqueue(T item, TimeSpan delay)
    {
        ValidateDelay(delay);
        ThrowIfDisposed();
        return WriteOnce(item, delay, FullMode, countRejection: true);
    }

    /// <summary>
    /// For an owner that bounds this queue itself (<see cref="AckQueue{T}"/>): puts an item in whatever the queue's
    /// state, completed or disposed included (it stays readable with <see cref="TryDequeue"/>, as items left at a
    /// Dispose do), so a message the owner is moving back is never lost to a racing Dispose. The owner guarantees
    /// room: it holds at most <see cref="Capacity"/> items here. When the clock throws, an item due at once is put in
    /// all the same (due before every other: it needs no reading, and must not be lost), and the failure, which reaches
    /// no caller, is counted in <see cref="ClockFailureCount"/> and raised through <see cref="ClockFailed"/> (before,
    /// session 11, it was swallowed without a trace); one with a delay is not put in (the unit is returned and the
    /// exception propagates: the owner decides, and nothing is lost).
    /// </summary>
    internal void Restore(T item, TimeSpan delay)
    {
        bool reserved = TryReserve();
        Debug.Assert(reserved, "the owner bounds the queue");
        if (!reserved)
        {
            ThrowHelper.ThrowInvalidOperation("The delay queue is full: its owner broke the bound.");
        }

        long now;
        Exception? clockFailure = null;
        try
        {
            now = _time.GetTimestamp();
        }
        catch (Exception error) when (delay == TimeSpan.Zero)
        {
            now = 0; // no reading: the entry is due at once (Timestamps.DueNow), and its reading tells the consumers nothing
            clockFailure = error;
        }
        catch (Exception)
        {
            Release(1);
            throw;
        }

        PublishAt(item, now, clockFailure is null ? Timestamps.DueAt(now, ToTimestamps(delay)) : Timestamps.DueNow);
        if (clockFailure is not null)
        {
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, clockFailure); // after the item is in: the handler is user code
        }
    }

    /// <summary>Dequeues the due item with the earliest due time (ties: the earliest enqueued); false when no item is due.</summary>
    public bool TryDequeue([MaybeNullWhen(false)] out T item)
    {
        // Lock-free "nothing due": an empty inbox and a root not yet due (or no root). Reads the clock only when
        // there is a root.
        if (_core.NothingDueLockFree())
        {
            item = default;
            return false;
        }

        if (!_core.TryTake(out item, arm: null))
        {
            return false;
        }

        AfterTake();
        return true;
    }

    /// <summary>A snapshot of the queue's accounting (see <see cref="BackpressureStatistics"/>).</summary>
    public BackpressureStatistics GetStatistics()
    {
        // Snapshots without the consumer lock (a metrics collection never delays a consumer): both are written under
        // the lock with release stores, read here with acquire loads.
        // Enqueued: the inbox's positions plus DropOldest's items, which go straight into the heap, one per eviction
        // (session 16); the evictions read again after the others, so the sum never misses an item already counted out.
        long evicted = _core.Evicted;
        long dequeued = _core.Dequeued;
        long enqueued = _core.EnqueuedPositions + _core.Evicted;
        return new BackpressureStatistics(
            enqueued, dequeued, Seam.LoadAcquire(ref _droppedIncoming), evicted, Seam.LoadAcquire(ref _rejected), Count);
    }

    /// <summary>The time until the earliest pending item is due: <see cref="TimeSpan.Zero"/> when one is due, null when the queue is empty.</summary>
    public TimeSpan? GetTimeUntilNextDue()
    {
        long rootDue;
        _core.Enter();
        try
        {
            _core.DrainInbox();
            if (_core.HeapCount == 0)
            {
                return null; // a count, not a mark: a root really due at long.MaxValue is a root (before, s11-rev: read as "empty")
            }

            rootDue = _core.PeekDue;
        }
        finally
        {
            _core.Exit();
        }

        return rootDue == Timestamps.DueNow ? TimeSpan.Zero : ToTimeSpan(unchecked(rootDue - _time.GetTimestamp()));
    }

    /// <summary>Completes the queue: enqueues answer <see cref="WriteOutcome.Completed"/>; readers drain what is left, delayed items included.</summary>
    /// <returns>False when it was already completed.</returns>
    public bool TryComplete()
    {
        if (Seam.CompareExchange(ref _completed, 1, 0) != 0)
        {
            return false;
        }

        _writers.FinishAll(WaitStatus.Completed);
        TryFinish();
        return true;
    }

    /// <summary>Completes the queue; throws when it was already completed.</summary>
    /// <exception cref="InvalidOperationException">The queue was already completed.</exception>
    public void Complete()
    {
        if (!TryComplete())
        {
            ThrowHelper.ThrowInvalidOperation("The delay queue has already been completed.");
        }
    }

    /// <summary>Completes the queue, stops its wake-up and its metrics. Items still queued stay readable with <see cref="TryDequeue"/>.</summary>
    public void Dispose()
    {
        if (Seam.CompareExchange(ref _disposed, 1, 0) != 0)
        {
            return;
        }

        TryComplete();
        _core.Enter();
        try
        {
            _wakeup?.Dispose();
            _wakeup = null;
        }
        finally
        {
            _core.Exit();
        }

        _readers.FinishAll(WaitStatus.Completed);
        if (Name is not null)
        {
            BackpressureMetrics.Unregister(this);
        }
    }

    /// <summary>
    /// Raised with the exception an <see cref="DelayQueueOptions{T}.ItemDropped"/> handler threw, on the enqueuing thread,
    /// right after it threw. Such an exception never reaches the enqueuer: its write already happened (the item dropped,
    /// or the oldest evicted and the item taken) and it answers its true outcome. An exception from a
    /// <see cref="CallbackFailed"/> handler is dropped (the failure it reports is counted in <see cref="CallbackFailures"/>).
    /// </summary>
    public event EventHandler<Exception>? CallbackFailed;

    /// <summary>How many times <see cref="DelayQueueOptions{T}.ItemDropped"/> threw (a snapshot; also <c>lockfree.queue.callback_failures</c>).</summary>
    public long CallbackFailures => Seam.LoadAcquire(ref _callbackFailures);

    /// <inheritdoc/>
    long IBufferMetricsSource.CallbackFailures => CallbackFailures;

    /// <summary>
    /// Raised with the exception the queue's <see cref="DelayQueueOptions{T}.TimeProvider"/> threw where no caller can be
    /// handed it: while the queue computed the retry hint of a rejected enqueue (the time until the earliest item is due),
    /// on the enqueuing thread before that enqueue returns (the enqueue still answers <see cref="WriteOutcome.Rejected"/>,
    /// the item staying with the caller, with <see cref="Timeout.InfiniteTimeSpan"/> as its hint: no estimate); or while a
    /// reader that took an item passed the wake-up on to the readers still parked (reading the clock or arming the
    /// wake-up's timer), on that reader's thread (the reader keeps its item; a parked reader is woken to judge the next
    /// one); or while an owner (<see cref="AckQueue{T}"/>) moved a message back due at once (the message is put in all the
    /// same, due before every other, on the owner's thread). A clock failure inside an operation's own steps (the reading
    /// an enqueue's due time is computed from, a take's reading) still reaches that operation's caller. An
    /// exception from a <see cref="ClockFailed"/> handler is dropped (the failure is counted in <see cref="ClockFailureCount"/> once).
    /// </summary>
    public event EventHandler<Exception>? ClockFailed;

    /// <summary>
    /// How many times the <see cref="DelayQueueOptions{T}.TimeProvider"/> threw where no caller could be handed the exception
    /// (a rejection's retry hint, a reader's pass-on after its take, an owner's move back; a snapshot; also <c>lockfree.queue.clock_failures</c>).
    /// See <see cref="ClockFailed"/>.
    /// </summary>
    public long ClockFailureCount => Seam.LoadAcquire(ref _clockFailures);

    /// <inheritdoc/>
    long IBufferMetricsSource.ClockFailureCount => ClockFailureCount;

    /// <summary>Runs the drop callback; an exception it throws is reported, never thrown into the enqueuer (see <see cref="CallbackFailed"/>).</summary>
    private void InvokeItemDropped(T item, DropReason reason) =>
        FailureReport.InvokeDropped(_itemDropped, item, reason, ref _callbackFailures, CallbackFailed, this);

    /// <inheritdoc/>
    BackpressureStatistics IBufferMetricsSource.Statistics => GetStatistics();

    /// <inheritdoc/>
    /// <remarks>Not tracked: a delay queue's items wait on purpose until they are due (no age gauge).</remarks>
    TimeSpan? IBufferMetricsSource.OldestItemAge => null;

    /// <summary>
    /// Converts a time span to timestamp units of the queue's clock, rounding up: on a clock coarser than a tick (a
    /// millisecond clock, say) a delay that is not a whole number of timestamps must not come out early by the clock's
    /// own count (1.5 ms is 2 timestamps, not 1; 0.4 ms is 1, not 0). Exact for the usual frequencies (10^7, 10^9).
    /// </summary>
    internal long ToTimestamps(TimeSpan span) => (long)Math.Ceiling(span.Ticks * _timestampsPerTick);

    private TimeSpan ToTimeSpan(long timestamps) =>
        timestamps <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)Math.Ceiling(timestamps / _timestampsPerTick));

    private WriteResult WriteOnce(T item, TimeSpan delay, OverflowPolicy policy, bool countRejection)
    {
        if (TryReserve())
        {
            if (Seam.LoadAcquire(ref _completed) != 0) // after the reservation's CAS: pairs with the CAS in TryComplete
            {
                Release(1);
                return WriteResult.Completed;
            }

            Publish(item, delay);
            return WriteResult.Accepted;
        }

        if (Seam.LoadAcquire(ref _completed) != 0)
        {
            return WriteResult.Completed;
        }

        switch (policy)
        {
            case OverflowPolicy.DropIncoming:
                Seam.Add(ref _droppedIncoming, 1);
                InvokeItemDropped(item, DropReason.Incoming);
                return WriteResult.DroppedIncoming;
            case OverflowPolicy.DropOldest:
                return EvictAndPublish(item, delay);
            default:
                if (!countRejection)
                {
                    // A waiting writer's attempt (its recheck after linking, its retry after a wake-up): it discards this
                    // answer and waits on, so no hint is computed. Before (session 10) each such attempt tried the consumer
                    // lock, drained the inbox and read the user's clock for a hint nobody used (a throw there faulted the
                    // waiting enqueue).
                    return WriteResult.Rejected(RejectReason.Full, default);
                }

                Seam.Add(ref _rejected, 1);
                return WriteResult.Rejected(RejectReason.Full, EstimateRetryAfter());
        }
    }

    /// <summary>Takes one unit of the count unless the queue is full. Lock-free; the CAS is the full fence that pairs with the completed flag's CAS.</summary>
    private bool TryReserve() => _core.TryReserve();

    /// <summary>
    /// Publishes an item whose unit of count is reserved. A clock that throws returns the unit first (before the review
    /// of 2026-11-23 it stayed reserved for good: a unit of capacity lost per failure, and a completed queue never
    /// finished), so the failed write leaves no trace.
    /// </summary>
    private void Publish(T item, TimeSpan delay)
    {
        long now;
        try
        {
            now = _time.GetTimestamp();
        }
        catch (Exception)
        {
            // The unit is room again, so a writer parked meanwhile (it found the queue full while this enqueue held
            // the unit) is woken as a take would wake it; before the review of 2026-11-23 the unit came back without
            // a signal and that writer stayed parked beside an empty queue.
            ReturnUnit();
            throw;
        }

        PublishAt(item, now, Timestamps.DueAt(now, ToTimestamps(delay)));
    }

    /// <summary>Publishes an item whose unit of count is reserved, due at <paramref name="due"/> (read at <paramref name="now"/>).</summary>
    private void PublishAt(T item, long now, long due)
    {
        _core.Publish(item, now, due);
        SignalReadersAfterPublish(due);
    }

    /// <summary>
    /// After an item became visible (in the inbox, or, DropOldest, in the heap under the lock): wakes a parked reader when
    /// the item is due before the armed wake-up.
    /// </summary>
    private void SignalReadersAfterPublish(long due)
    {
        // Handshake with parked readers (see the design note): HasWaiters fences after our publish. Earlier than the
        // armed time, wrap-safe (MaxValue: nothing armed; DueNow: before every armed time).
        if (_readers.HasWaiters)
        {
            long armedFor = Seam.LoadAcquire(ref _armedFor); // acquire: pairs with the store and fence in ArmWakeup
            if (armedFor == long.MaxValue || due == Timestamps.DueNow || Timestamps.IsBefore(due, armedFor))
            {
                _readers.SignalOne();
            }
        }
    }

    private WriteResult EvictAndPublish(T item, TimeSpan delay)
    {
        long now = _time.GetTimestamp(); // before anything is evicted: a clock that throws leaves the queue as it was
        long due = Timestamps.DueAt(now, ToTimestamps(delay));
        var spinner = default(SpinWait);
        while (true)
        {
            if (_core.TryEvictRootAndInsert(item, now, due, out T? victim))
            {
                // One step under the consumer lock: the root out, the incoming item into the heap with the victim's unit
                // of count (the count never exceeds the capacity). Then the readers' handshake, as a publish's.
                SignalReadersAfterPublish(due);
                InvokeItemDropped(victim!, DropReason.Oldest);
                return WriteResult.EvictedOldest;
            }

            // Every unit is held by an enqueue still in flight (reserved, not yet in the inbox): it lands within a
            // few instructions. Or room appeared meanwhile.
            if (TryReserve())
            {
                if (Seam.LoadAcquire(ref _completed) != 0)
                {
                    Release(1);
                    return WriteResult.Completed;
                }

                PublishAt(item, now, due);
                return WriteResult.Accepted;
            }

            Seam.SpinOnce(ref spinner);
        }
    }

    /// <summary>Takes the root if due; with <paramref name="armIfNotDue"/> (a reader about to park), arms the wake-up for the root's due time when it is not due.</summary>
    private bool TryTake([MaybeNullWhen(false)] out T item, bool armIfNotDue) => _core.TryTake(out item, armIfNotDue ? _arm : null);

    /// <summary>Arms the wake-up; under the consumer lock. The interlocked write is the handshake's full fence.</summary>
    private void ArmWakeup(long due, long dueInTimestamps)
    {
        Seam.StoreRelease(ref _armedFor, due);
        Seam.FullFence(); // our write before the inbox recheck; pairs with Publish (an exchange before: the same order)
        if (Seam.LoadAcquire(ref _disposed) != 0)
        {
            return;
        }

        try
        {
            _wakeup ??= Wakeups.Create(_time, _wheel, static state => ((DelayQueue<T>)state!).OnWakeup(), this);
            _wakeup.Arm(due, ToTimeSpan(dueInTimestamps));
        }
        catch (Exception)
        {
            // The timer (user code: the TimeProvider's) threw: nothing is armed, so say so. Before the review of 2026-11-23
            // _armedFor kept claiming this due time, and the readers that parked later never armed a wake-up for it.
            Seam.StoreRelease(ref _armedFor, long.MaxValue); // release: "no wake-up armed"; producers signal again
            throw;
        }
    }

    private void OnWakeup()
    {
        Seam.StoreRelease(ref _armedFor, long.MaxValue); // release: "no wake-up armed"; producers signal again
        _readers.SignalOne();
    }

    /// <summary>After a successful take: returns the unit of count, wakes a writer waiting for room, finishes a drained completed queue.</summary>
    private void AfterTake() => ReturnUnit();

    /// <summary>Returns one unit of count (room): wakes a writer waiting for room, finishes a drained completed queue.</summary>
    private void ReturnUnit()
    {
        Release(1);
        if (FullMode == OverflowPolicy.Wait && _writers.HasWaiters) // only the Wait policy parks writers
        {
            _writers.SignalOne();
        }
    }

    private void Release(long units)
    {
        if (_core.Release(units) && Seam.LoadAcquire(ref _completed) != 0)
        {
            TryFinish();
        }
    }

    private void TryFinish()
    {
        if (Seam.LoadAcquire(ref _completed) == 0 || _core.Count != 0 || Seam.CompareExchange(ref _finished, 1, 0) != 0)
        {
            return;
        }

        // Completion first, then the readers (s11-rev): a reader that learns the queue is finished (woken below, or reading
        // Completion on its own path) finds Completion completed. Before, the readers were woken (and _finished, which
        // they read, was set) before Completion completed: a reader could be told "completed and empty" while
        // Completion still said otherwise. The Dekker pair with a reader: Completion's state (an interlocked write),
        // then the waiter list; the reader links (a fence), then reads Completion's state.
        _completion.TrySetResult();
        _readers.FinishAll(WaitStatus.Completed);
    }

    /// <summary>
    /// The retry hint of a rejection: the time until the root is due. Exact when the consumer lock is free (it drains
    /// the inbox first); when a consumer holds it, the root it last published (never waits on a consumer, so a storm
    /// of rejected writes does not slow the readers down). A clock that throws gives no estimate
    /// (<see cref="Timeout.InfiniteTimeSpan"/>), counted and reported through <see cref="ClockFailed"/>: the rejection is
    /// decided, and before (session 10) the enqueue threw instead of answering it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a rejection's path: kept out of WriteOnce (and of AckQueue.TryEnqueue)
    internal TimeSpan EstimateRetryAfter()
    {
        long rootDue;
        if (_core.TryEnter())
        {
            try
            {
                _core.DrainInbox();
                if (_core.HeapCount == 0)
                {
                    return TimeSpan.Zero;
                }

                rootDue = _core.PeekDue; // exact (the published root moves a due time of long.MaxValue one timestamp earlier)
            }
            finally
            {
                _core.Exit();
            }
        }
        else
        {
            rootDue = _core.PublishedRootDue; // MinValue: a consumer is draining; room is coming, retry at once
            if (rootDue is long.MaxValue or long.MinValue)
            {
                return TimeSpan.Zero;
            }
        }

        if (rootDue == Timestamps.DueNow)
        {
            return TimeSpan.Zero;
        }

        long now;
        try
        {
            now = _time.GetTimestamp();
        }
        catch (Exception error)
        {
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, error);
            return Timeout.InfiniteTimeSpan;
        }

        return ToTimeSpan(unchecked(rootDue - now)); // a difference: wrap-safe
    }

    private static void ValidateDelay(TimeSpan delay) => Wakeups.ValidateDelay(delay, nameof(delay));

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Seam.LoadAcquire(ref _disposed) != 0, this);

    /// <summary>The core's view of the wake-up (called under the consumer lock).</summary>
    private sealed class WakeupArm(DelayQueue<T> queue) : IDelayWakeupArm
    {
        public bool IsArmedFor(long due) => due != long.MaxValue && Seam.LoadAcquire(ref queue._armedFor) == due; // MaxValue is "nothing armed": a root really due then (a clock about to wrap) always arms

        public void Arm(long due, long dueIn) => queue.ArmWakeup(due, dueIn);
    }
}
