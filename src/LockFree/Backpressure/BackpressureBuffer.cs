using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Queues;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

// Design: a bounded buffer with an explicit overflow policy, built on the lock-free queue family.
//
// Engine: the queue type follows the thread roles: SingleWriter/SingleReader pick SPSC, MPSC, SPMC or MPMC.
// DropOldest makes writers remove items too, so it always uses a multi-consumer engine.
//
// Fast paths (TryWrite, TryRead) are the queue's own operations plus one load of a per-side word of bits
// (_afterWrite, _afterRead: AfterWork) that says whether anything else is due: watermarks configured, the other
// side has parked, the buffer is completed. While it is zero (a buffer that never waited, no watermarks) a
// write or read does nothing else: no lock, no fence, no allocation, no counter. Waiting (the Wait policy,
// WaitToReadAsync, ReadAsync) parks on a WaiterList; the asymmetric-fence handshake of ParkingGate rules out lost
// wake-ups without a fence on the fast path. A parker counts itself in the gate and then makes sure the Parked bit
// is set, running a process-wide barrier when it sets it (ParkingGate, "Arming"): a signaller that read the bit as
// clear did so before that barrier reached its core, so its publish (earlier in program order) is visible to the
// parker's recheck; one that reads it set asks the gate, which fences from then on. A side played by one thread
// (one writer, or one reader) clears the bit again after QuietChecksBeforeDisarm operations in a row found no
// waiter (ParkingGate, "Disarming"), so a buffer that parked once does not fence for the rest of its life; the
// other bits are sticky. Except on a side whose every
// operation claims its index with a CAS (many writers, many readers): that locked claim is the signaller's fence,
// and the other side's parking recheck reads that index (a full or empty answer of the sequenced ring is decided
// by the real head or tail, never by a slot alone), so the gate's count is read without another fence.
// Completion does the same with its own process-wide barrier (see TryComplete). A write wakes every waiting
// reader (they recheck; WaitToReadAsync promises nothing more); a read wakes one waiting writer per slot it frees,
// and a woken writer that does not use the room passes the wake on.
//
// Inlined SPSC fast paths: TryWrite and TryRead are forced inline into the caller, and on the SPSC engine they run the
// ring's own enqueue or dequeue there (through _spsc, the SPSC queue or null), then the after-work question: a
// single-thread TryWrite+TryRead pair pays the raw ring's pair plus the in-write mark's two plain stores, three loads
// and three tests, and no call. An SPSC write that misses (a full ring, a completed buffer) leaves through one call
// (SpscWriteMissed, the engine's overflow policies inlined in it); every other engine runs WriteOnce, which checks
// _completed itself, inlined. The channel adapter has its own SPSC reader and writer (SpscLockFreeChannelWriter), whose
// Try methods are these fast paths alone. Session 12: the SPSC path no longer joins the inlined general path, and so no
// longer depends on the JIT's profile of it (see docs/backpressure.md, "Session 12").
//
// Completion, from any thread. With many writers, completion sets the completed flag and then closes the engine's
// producer side (a mark bit in the ring's tail, set by CAS): no claim can succeed after it, claims made before it
// still land, so "drained" is simply head == tail, and the writers pay nothing for it (no per-write gate). A write
// that meets the flag, or fails its enqueue after the close, takes nothing and answers Completed. With one writer
// there is no claim to close: the writer stores an in-write mark before its completed-check and clears it after its
// publish, and the completer, after setting the flag and the writer's Completed bit and running its process-wide
// barrier, reads the mark: clear, the drained check is exact; set, a write that began before the completion is in
// flight, and the completer leaves the finish to it (the writer reads the Completed bit after clearing the mark).
// See InWriteMark for the ordering argument; tests/Concurrency/Backpressure/ForeignCompletionTests.cs explores it.
// Before (session 9) SingleWriter meant "one thread writes and completes", and a completion from another thread could
// finish the buffer while the writer's accepted item was still landing.
//
// Accounting: Enqueued and Dequeued come from the queue's positions (no counter on the hot path); dropped,
// evicted and rejected writes are counted on their (overflow) paths: a plain store with one writer, an atomic add on a
// per-core stripe with many (StripedCounterSet; an eviction's mark, count and unmark on the mark's stripe).
//
// DropOldest (session 16): one place-or-evict step of the engine (SequencedRing.Evicting.cs), linearizable as "place, or
// evict the oldest and place"; see PlaceOrEvict.
// Enqueued = Dequeued + Evicted + Remaining holds whenever no operation is in flight.
//
// Thread roles: any number of writers and readers unless SingleWriter/SingleReader promise otherwise.
//
// Seam (session 17): every shared access of the buffer goes through the alias Seam (RealAtomics here). The
// concurrency tests compile these files again with Seam = TestAtomics (the #if block above; tests/Concurrency/Composed),
// so the buffer itself runs under the controlled scheduler. Keep it so: no Volatile/Interlocked on the buffer's own
// fields, and no spin that waits for another thread outside the seam.

/// <summary>
/// A bounded buffer with an explicit overflow policy: the building block a pipeline stage uses when items
/// arrive faster than they leave. Non-blocking, blocking and asynchronous writes and reads; every write
/// tells what happened to its item (<see cref="WriteResult"/>); nothing is lost without being counted.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}, FullMode = {FullMode}")]
public sealed partial class BackpressureBuffer<T> : IDisposable, IBufferMetricsSource
{
    private readonly IBoundedQueue<T> _queue;
    private readonly EngineKind _engine;

    // The SPSC engine, or null (another engine, or item age tracked): the single-thread fast paths (TryWrite, TryRead)
    // inline its operations into the caller (see "Inlined SPSC fast paths").
    private readonly SpscQueue<T>? _spsc;
    private readonly StampingQueue<T>? _stamping;
    private readonly IQueuePositions _positions;
    private readonly bool _singleWriter;
    private readonly bool _canEvict;
    private readonly bool _writesClaimByCas; // many writers: every enqueue claims the tail with a CAS
    private readonly bool _readsClaimByCas; // many readers (or DropOldest): every dequeue claims the head with a CAS
    private readonly Action<T, DropReason>? _itemDropped;
    private readonly TimeProvider _time;
    private readonly int _highWatermark;
    private readonly int _lowWatermark;
    private readonly WaiterList<Seam> _readers; // both report a timed wait's timer failure (ReportTimerFailure)
    private readonly WaiterList<Seam> _writers;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private CompletionState? _completed;

    // What the fast paths must do after their queue operation, read with one acquire load (see "Fast paths" above):
    // bits of AfterWork. Sticky: a bit is only ever set, but for Parked, which a side clears again once nobody waits
    // (ParkingGate, "Disarming", and "Disarming a side played by many threads").
    private StickyBits<Seam> _afterWrite; // Watermarks, Parked (a reader has parked: writers ask the readers' gate), Completed (single writer); mutable struct: never copy
    private StickyBits<Seam> _afterRead; // Watermarks, Parked (a writer has parked: readers ask the writers' gate), Completed
    private InWriteMark<Seam> _writeMark; // single writer only: set while a write may publish (see InWriteMark); alone on its cache line; mutable struct: never copy
    private long _finished;
    private long _disposed;
    private long _paused;
    private long _pressureDelivered; // the state PressureChanged last reported (0/1); plain: written only by the thread holding _pressureDelivering (DeliverPressure's recheck after release reads it racily: either answer is safe)
    private long _callbackFailures; // handler exceptions caught (see CallbackFailed): an atomic add on that rare path
    private long _clockFailures; // retry-hint clock readings that threw (see ClockFailed): an atomic add on that rare path
    private long _pressureDelivering; // 1 while a thread delivers PressureChanged events (see DeliverPressure)
    private readonly StripedCounterSet? _writerCounts; // many writers: the four overflow counters below, striped by core (WriterCount); one writer: the fields
    private long _droppedIncoming;
    private long _evicted;
    private long _evictionsInFlight; // evictions between "about to take the head" and "counted in _evicted" (see GetStatistics)
    private long _dequeuedFloor; // the highest Dequeued a snapshot reported: snapshots never go down (see GetStatistics)
    private long _rejected;
    private long _rateTimestamp; // the drain rate is measured from this mark (timestamp, dequeued positions) ...
    private long _rateDequeued;
    private long _rateMarkTimestamp; // ... which moves up to this newer mark at most once per RateWindowSeconds (see ComputeRetryAfter)
    private long _rateMarkDequeued;
    private readonly bool _cacheRetryAfter;
    private long _retryAfterTick = long.MinValue;
    private long _retryAfterTicks;
    private long _readersParkedAt; // many writers: the tail position at the last reader's park (a hint: writers disarm QuietChecksBeforeDisarm claims later)
    private long _writersParkedAt; // many readers: the head position at the last writer's park (as above, for readers)
    private AdaptiveSpin _writeSpin; // mutable structs: never copy
    private AdaptiveSpin _readSpin;

    /// <summary>Creates a buffer with the given options.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or its <see cref="BackpressureBufferOptions{T}.TimeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The capacity, full mode or watermarks are out of range.</exception>
    public BackpressureBuffer(BackpressureBufferOptions<T> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        if (!Enum.IsDefined(options.FullMode))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.FullMode, "FullMode is not an OverflowPolicy value.");
        }

        int capacity = QueueCapacity.RoundUp(options.Capacity);
        if (options.HighWatermark != 0 || options.LowWatermark != 0)
        {
            if (options.HighWatermark < 1 || options.HighWatermark > capacity)
            {
                throw new ArgumentOutOfRangeException(nameof(options), options.HighWatermark, $"HighWatermark must be in [1, {capacity}] (the rounded capacity) when watermarks are used.");
            }

            if (options.LowWatermark < 0 || options.LowWatermark >= options.HighWatermark)
            {
                throw new ArgumentOutOfRangeException(nameof(options), options.LowWatermark, "LowWatermark must be in [0, HighWatermark).");
            }
        }

        FullMode = options.FullMode;
        _singleWriter = options.SingleWriter;
        _canEvict = options.FullMode == OverflowPolicy.DropOldest || !options.SingleReader;
        _writesClaimByCas = !_singleWriter; // the MPSC and MPMC engines (also under the stamping adapter)
        _writerCounts = _singleWriter ? null : new StripedCounterSet();
        _readsClaimByCas = _canEvict; // the SPMC and MPMC engines
        _itemDropped = options.ItemDropped;
        _time = options.TimeProvider;
        _highWatermark = options.HighWatermark;
        _lowWatermark = options.LowWatermark;
        Name = options.Name;
        if (options.TrackItemAge)
        {
            _queue = _stamping = new StampingQueue<T>(CreateEngine<Stamped<T>>(capacity, _singleWriter, _canEvict), _time);
            _engine = EngineKind.Stamping;
        }
        else
        {
            _queue = CreateEngine<T>(capacity, _singleWriter, _canEvict);
            _engine = _queue switch
            {
                SpscQueue<T> => EngineKind.Spsc,
                MpscQueue<T> => EngineKind.Mpsc,
                SpmcQueue<T> => EngineKind.Spmc,
                _ => EngineKind.Mpmc,
            };
            _spsc = _queue as SpscQueue<T>;
        }

        if (_highWatermark != 0)
        {
            _afterWrite.Set((long)AfterWork.Watermarks);
            _afterRead.Set((long)AfterWork.Watermarks);
        }

        Action<Exception> timerFailed = ReportTimerFailure; // a timed wait's timer on a user's clock (Waiter.Detach); one delegate for both lists
        _readers = new WaiterList<Seam>(timerFailed);
        _writers = new WaiterList<Seam>(timerFailed);
        _cacheRetryAfter = ReferenceEquals(_time, TimeProvider.System);
        _positions = (IQueuePositions)_queue;
        _rateTimestamp = _rateMarkTimestamp = _time.GetTimestamp(); // the drain is measured from creation: a first rejection after drains has a rate
        _rateDequeued = _rateMarkDequeued = _positions.DequeuedPositions;
        if (Name is not null)
        {
            BackpressureMetrics.Register(this);
        }
    }

    /// <summary>
    /// Raised when the depth crosses the high watermark upwards (true: slow down) or the low watermark downwards (false:
    /// resume), on the thread whose write or read crossed it, or on one whose own crossing was being reported at the time.
    /// Events are delivered one at a time and in order, so the last one always matches <see cref="IsPaused"/> once the
    /// crossings stop (a crossing undone before it was reported may be skipped). An exception a handler throws never
    /// reaches the write or read that crossed: it goes to <see cref="CallbackFailed"/>.
    /// </summary>
    public event EventHandler<bool>? PressureChanged;

    /// <summary>
    /// Raised with the exception an <see cref="BackpressureBufferOptions{T}.ItemDropped"/> or <see cref="PressureChanged"/>
    /// handler (or a <see cref="System.Diagnostics.Metrics.MeterListener"/>'s measurement callback for the
    /// <c>lockfree.queue.wait_time</c> histogram, recorded after a write that waited) threw, on the thread that ran it, right after it threw. Such an exception never reaches the writer or reader
    /// whose operation raised the callback: that operation already happened (an item accepted, dropped or evicted, a read
    /// taken), and it answers its true outcome. An exception from a <see cref="CallbackFailed"/> handler is dropped (it
    /// is counted in <see cref="CallbackFailures"/> once, with the failure it reports).
    /// </summary>
    public event EventHandler<Exception>? CallbackFailed;

    /// <summary>
    /// How many times an <see cref="BackpressureBufferOptions{T}.ItemDropped"/> or <see cref="PressureChanged"/> handler,
    /// or a <see cref="System.Diagnostics.Metrics.MeterListener"/>'s measurement callback for the
    /// <c>lockfree.queue.wait_time</c> histogram, threw (a snapshot; also the <c>lockfree.queue.callback_failures</c>
    /// metric). See <see cref="CallbackFailed"/>.
    /// </summary>
    public long CallbackFailures => Seam.LoadAcquire(ref _callbackFailures);

    /// <summary>
    /// Raised with the exception the buffer's <see cref="BackpressureBufferOptions{T}.TimeProvider"/> threw where no caller
    /// can be handed it, on the writer's thread, before that write returns: while the buffer computed the retry hint of a
    /// rejected write (<see cref="WriteResult.RetryAfter"/>), read the time an asynchronous write waited (after its item
    /// was written; the <c>lockfree.queue.wait_time</c> sample is skipped), or disposed the timer of a timed asynchronous
    /// wait that had ended (the wait's outcome stands; this one may run on a thread-pool thread). The write's outcome was already decided: a
    /// rejection still answers <see cref="WriteOutcome.Rejected"/> (the item stays with the caller), with
    /// <see cref="Timeout.InfiniteTimeSpan"/> as its hint (no estimate); a written item answers accepted. A clock failure
    /// inside a write's own steps (an item's stamp under <see cref="BackpressureBufferOptions{T}.TrackItemAge"/>, a timed
    /// wait's deadline or timer) still reaches that write's caller. An exception from a <see cref="ClockFailed"/> handler
    /// is dropped (the failure is counted in <see cref="ClockFailureCount"/> once).
    /// </summary>
    public event EventHandler<Exception>? ClockFailed;

    /// <summary>A timed wait's timer threw from its Dispose as the wait was released (see <see cref="WaiterList{TAtomics}.TimerFailed"/>).</summary>
    private void ReportTimerFailure(Exception error) => FailureReport.Raise(ref _clockFailures, ClockFailed, this, error);

    /// <summary>
    /// How many times the <see cref="BackpressureBufferOptions{T}.TimeProvider"/> threw where no caller could be handed the
    /// exception (a rejection's retry hint, a wait's duration; a snapshot; also the <c>lockfree.queue.clock_failures</c>
    /// metric). See <see cref="ClockFailed"/>.
    /// </summary>
    public long ClockFailureCount => Seam.LoadAcquire(ref _clockFailures);

    /// <summary>
    /// How long the oldest item in the buffer has waited: zero when empty; null unless the buffer was created
    /// with <see cref="BackpressureBufferOptions{T}.TrackItemAge"/>. Any thread; a monitoring snapshot (when the
    /// head moves too fast to be read consistently, or its writer is still publishing it, the answer is zero).
    /// </summary>
    public TimeSpan? OldestItemAge => _stamping?.OldestItemAge();

    /// <summary>The number of items the buffer holds when full (the requested capacity rounded up to a power of two).</summary>
    public int Capacity => _queue.Capacity;

    /// <summary>The number of items in the buffer: an approximate snapshot.</summary>
    public int Count => _queue.Count;

    /// <summary>The policy <see cref="TryWrite(T)"/> and the writes without a policy argument use.</summary>
    public OverflowPolicy FullMode { get; }

    /// <summary>The name the metrics are tagged with, or null.</summary>
    public string? Name { get; }

    /// <summary>Whether the depth has reached the high watermark and not yet fallen to the low one (always false without watermarks).</summary>
    public bool IsPaused => Seam.LoadAcquire(ref _paused) != 0;

    /// <summary>Whether the buffer has been completed (writes take nothing; reads drain what is left).</summary>
    public bool IsCompleted => Seam.LoadAcquireReference(ref _completed) is not null;

    /// <summary>Whether the buffer is completed and drained (<see cref="Completion"/> is about to complete, or has).</summary>
    internal bool IsFinished => Seam.LoadAcquire(ref _finished) != 0; // acquire: pairs with the CAS in TryFinishIfDrained

    /// <summary>The error the buffer was completed with, or null (not completed, or completed without one).</summary>
    internal Exception? CompletionError => Seam.LoadAcquireReference(ref _completed)?.Error; // acquire: pairs with the CAS in TryComplete

    /// <summary>
    /// Completes when the buffer has been completed and every item has been read; faults with the completion error,
    /// if any (is canceled when that error is an <see cref="OperationCanceledException"/>, as the BCL channels do).
    /// </summary>
    public Task Completion => _completion.Task;

    /// <summary>Writes without waiting, under <see cref="FullMode"/> (a full buffer under <see cref="OverflowPolicy.Wait"/> answers rejected).</summary>
    /// <exception cref="ObjectDisposedException">The buffer has been disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public WriteResult TryWrite(T item) => TryWriteCore(item, retryHint: true);

    /// <summary>
    /// <see cref="TryWrite(T)"/> for a caller that discards a rejection's retry hint (the channel's <c>TryWrite</c>, a
    /// bool): a full buffer's rejection is counted as ever, but no hint is computed (before, session 10, each such call
    /// read a custom <see cref="TimeProvider"/> for nothing).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal WriteResult TryWriteWithoutHint(T item) => TryWriteCore(item, retryHint: false);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private WriteResult TryWriteCore(T item, bool retryHint)
    {
        // Inlined SPSC fast path: the mark, the ring's enqueue and the after-work question in the caller, no call.
        SpscQueue<T>? spsc = _spsc;
        if (spsc is not null)
        {
            return TrySpscWrite(spsc, item) ? WriteResult.Accepted : SpscWriteMissed(item, retryHint);
        }

        // Every other engine, inlined: their compare-and-swap is most of a write, and a call here measured 2-3 ns more
        // (session 5).
        return WriteOnce(item, FullMode, countRejection: true, retryHint); // FullMode is valid by construction; disposal completes, and WriteOnce throws for it
    }

    /// <summary>
    /// The SPSC engine's fast write: true when the item was accepted (the after-work question asked); false when the ring
    /// was full or the buffer completed, with the mark still set (the caller goes on to <see cref="SpscWriteMissed"/> or
    /// <see cref="SpscWriteMissedForChannel"/>, every way out of which clears it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TrySpscWrite(SpscQueue<T> spsc, T item)
    {
        _writeMark.Enter(); // before the completed-check: see InWriteMark
        if (Seam.LoadAcquireReference(ref _completed) is null && spsc.TryEnqueue(item)) // acquire: pairs with the CAS in TryComplete
        {
            _writeMark.Exit(); // release: after the publish; pairs with the completer's acquire in WriterIdle
            if (_afterWrite.Read() != 0) // acquire: after the mark's clear (Completed: see InWriteMark); see "Fast paths"
            {
                AfterWrite();
            }

            return true;
        }

        return false;
    }

    /// <summary>
    /// An SPSC write that found the ring full or the buffer completed (<see cref="TrySpscWrite"/> false), out of line.
    /// Before (session 12) the inlined fast path fell through into the inlined general write, whose join with the fast
    /// path's result made the JIT keep the caller's loop variables on the stack across it (a spill and a reload per write
    /// in the SPSC pair of <c>BackpressureTryPathBenchmarks</c>, read off its Tier-1 code).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private WriteResult SpscWriteMissed(T item, bool retryHint) => SpscWriteMissedCore(item, retryHint);

    /// <summary>
    /// <see cref="WriteOnce"/> on the SPSC engine, after the fast path's attempt: the mark is still set from it, and every
    /// way out below clears it. The engine's policies (Wait without waiting, Reject, DropIncoming: DropOldest runs a
    /// multi-consumer engine) are inlined here, so a write to a full buffer pays this one call, as it paid the call to
    /// <see cref="WriteFull"/> before.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private WriteResult SpscWriteMissedCore(T item, bool retryHint)
    {
        Debug.Assert(_spsc is not null && FullMode != OverflowPolicy.DropOldest, "an SPSC miss on another engine");
        if (Seam.LoadAcquireReference(ref _completed) is not null) // acquire: pairs with the CAS in TryComplete
        {
            return CompletedOrDisposed();
        }

        if (_highWatermark != 0)
        {
            CheckPressureAfterMiss(); // as WriteFull
        }

        if (_spsc!.TryEnqueue(item)) // again, as WriteOnce did (a reader may have made room since)
        {
            LeaveWritePublished();
            AfterWriteIfAny(); // acquire: after the publish (and the mark's clear); see "Fast paths"
            return WriteResult.Accepted;
        }

        return FullMode == OverflowPolicy.DropIncoming ? DropIncoming(item) : RejectFull(countRejection: true, retryHint);
    }

    /// <summary>
    /// The channel adapter's <c>TryWrite</c> on the SPSC engine (<see cref="HasSpscFastPath"/>): as
    /// <c>TryWriteWithoutHint(item).IsSuccess</c>, without the engine test, so the adapter's method is the fast path and
    /// two calls that nothing outlives (no register to save in its prologue).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryWriteSpscForChannel(T item)
    {
        Debug.Assert(_spsc is not null, "the SPSC channel writer on another engine");
        return TrySpscWrite(_spsc!, item) || SpscWriteMissedForChannel(item);
    }

    /// <summary>
    /// <see cref="SpscWriteMissed"/> for the channel adapter, answering its bool here: a <see cref="WriteResult"/> returned
    /// into the adapter's method took a stack temporary, zeroed in its prologue on every call.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool SpscWriteMissedForChannel(T item) => SpscWriteMissedCore(item, retryHint: false).IsSuccess;

    /// <summary>The channel adapter's <c>TryRead</c> on the SPSC engine (<see cref="HasSpscFastPath"/>): <see cref="TryRead(out T)"/> without the engine test.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryReadSpscForChannel([MaybeNullWhen(false)] out T item)
    {
        Debug.Assert(_spsc is not null, "the SPSC channel reader on another engine");
        if (!_spsc!.TryDequeue(out item))
        {
            return false;
        }

        if (_afterRead.Read() != 0) // acquire: kept after the dequeue (a plain mov on x64); see "Fast paths"
        {
            AfterRead(1);
        }

        return true;
    }

    /// <summary>Whether the buffer runs the SPSC engine without item ages, whose fast paths inline the ring (the channel adapter picks its SPSC reader and writer by it).</summary>
    internal bool HasSpscFastPath => _spsc is not null;

    /// <summary>Writes without waiting, under <paramref name="policy"/> for this one item.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="policy"/> is not a defined value.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="policy"/> is <see cref="OverflowPolicy.DropOldest"/> on a single-reader buffer created without it.</exception>
    /// <exception cref="ObjectDisposedException">The buffer has been disposed.</exception>
    public WriteResult TryWrite(T item, OverflowPolicy policy)
    {
        ValidatePolicy(policy);
        ThrowIfDisposed();
        return WriteOnce(item, policy, countRejection: true);
    }

    /// <summary>Reads the oldest item without waiting; false when the buffer is empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead([MaybeNullWhen(false)] out T item)
    {
        // Inlined SPSC fast path, as TryWrite: the ring's dequeue and the after-work question in the caller.
        SpscQueue<T>? spsc = _spsc;
        bool taken = spsc is not null ? spsc.TryDequeue(out item) : Dequeue(out item);
        if (_afterRead.Read() != 0) // acquire: kept after the dequeue (a plain mov on x64); see "Fast paths"
        {
            AfterReadOrMiss(taken); // a miss too: with watermarks, an empty buffer's state is checked (see CheckPressure)
        }

        return taken;
    }

    /// <summary>
    /// Whether <see cref="TryPeek(out T)"/> works: only on the single-consumer engines (SingleReader without
    /// DropOldest), where nothing but the one reader removes items, so the head cannot vanish under a peek.
    /// </summary>
    internal bool CanPeek => _queue is SpscQueue<T> or MpscQueue<T> || _stamping is { CanPeek: true };

    /// <summary>Reads the oldest item without removing it (single reader only); false when empty or when <see cref="CanPeek"/> is false.</summary>
    internal bool TryPeek([MaybeNullWhen(false)] out T item)
    {
        switch (_queue)
        {
            case SpscQueue<T> spsc:
                return spsc.TryPeek(out item);
            case MpscQueue<T> mpsc:
                return mpsc.TryPeek(out item);
            case StampingQueue<T> stamping:
                return stamping.TryPeek(out item);
            default:
                item = default;
                return false;
        }
    }

    /// <summary>Reads up to <c>destination.Length</c> items without waiting; returns how many (0 when empty).</summary>
    public int TryReadMany(Span<T> destination)
    {
        int count = _queue.TryDequeueMany(destination);
        if (count > 0)
        {
            if (_afterRead.Read() != 0) // acquire: after the dequeue; see "Fast paths"
            {
                AfterRead(count);
            }
        }
        else if (_highWatermark != 0 && destination.Length > 0)
        {
            CheckPressureAfterMiss(); // as TryRead's miss
        }

        return count;
    }

    /// <summary>A snapshot of the buffer's accounting.</summary>
    public BackpressureStatistics GetStatistics()
    {
        // Dequeued is the head's position minus the evictions, and an eviction moves the head before it is counted.
        // Before, a snapshot in between counted the evicted item as read (Dequeued 1 with no reader at all) and the next
        // one took it back: the lockfree.queue.dequeued counter went down. Now an eviction is marked in flight before it
        // moves the head and unmarked after it is counted, and the snapshot reads the head, then the in-flight count,
        // then the evictions (acquire loads, in that order): an eviction the head read includes is in one of the two, so
        // the difference never exceeds the items read (an eviction in both, or one the head read missed, makes it lower).
        // The answer is the highest such bound any snapshot gave, so it never goes down, never exceeds the items read,
        // and is exact whenever no eviction is in flight. Eviction path only: reads and accepted writes pay nothing.
        long dequeuedPositions = _positions.DequeuedPositions; // acquire (the head index)
        long inFlight = ReadWriterCount(ref _evictionsInFlight, WriterCount.EvictionsInFlight); // acquire: after the head
        long evicted = ReadWriterCount(ref _evicted, WriterCount.Evicted); // acquire: after the in-flight count (an eviction unmarks after counting)
        long dequeued = RaiseDequeuedFloor(dequeuedPositions - inFlight - evicted);
        long enqueued = _positions.EnqueuedPositions;
        return new BackpressureStatistics(
            enqueued, dequeued, ReadWriterCount(ref _droppedIncoming, WriterCount.DroppedIncoming), evicted, ReadWriterCount(ref _rejected, WriterCount.Rejected), Count);
    }

    /// <summary>Raises <see cref="_dequeuedFloor"/> to <paramref name="bound"/> if higher; returns the floor after.</summary>
    private long RaiseDequeuedFloor(long bound)
    {
        long floor = Seam.LoadAcquire(ref _dequeuedFloor);
        while (bound > floor)
        {
            long seen = Seam.CompareExchange(ref _dequeuedFloor, bound, floor);
            if (seen == floor)
            {
                return bound;
            }

            floor = seen;
        }

        return floor;
    }

    /// <summary>Completes the buffer: writes take nothing from now on; readers drain what is left.</summary>
    /// <returns>False when it was already completed.</returns>
    public bool TryComplete(Exception? error = null)
    {
        if (Seam.CompareExchangeReference(ref _completed, new CompletionState(error), null) is not null) // full fence: the flag before the barrier below
        {
            return false;
        }

        if (!_singleWriter)
        {
            CloseProducers(); // after the flag: a writer whose claim fails on the closed tail sees the flag
        }
        else
        {
            _afterWrite.Set((long)AfterWork.Completed); // full fence, before the barrier: a write in flight reads it after clearing its mark (InWriteMark)
        }

        // A reader that takes the last item stores its head and then reads _afterRead without a fence; we set the bit
        // and then read the head. The process-wide barrier (once per buffer, on a rare path) stands in for the
        // reader's fence: a reader that still read the bit as clear had its head store flushed by it, so the check
        // below sees the buffer empty; one that reads it set finishes the buffer itself (StickyBits; explored in
        // tests/Concurrency/Backpressure/CompletionHandshakeTests.cs).
        // The same barrier covers the one writer (see InWriteMark): after it, a write that passed its completed-check
        // before the flag shows its mark, or has cleared it after its publish.
        _afterRead.SetAndFlush((long)AfterWork.Completed);
        if (!_singleWriter)
        {
            TryFinishIfDrained(); // claims made before the close keep the buffer non-empty until they are read
        }
        else if (_writeMark.WriterIdle()) // acquire: pairs with the writer's release clearing the mark
        {
            WriterDone(); // no publish can follow: finish if drained
        }

        // Otherwise a write that began before the completion is in flight: it sees the Completed bit after clearing its
        // mark and sets Done itself. No wait here: completion never blocks on a preempted writer.

        _writers.FinishAll(WaitStatus.Completed);
        _readers.FinishAll(WaitStatus.Signaled); // they recheck: drain, or see the finish
        return true;
    }

    /// <summary>Completes the buffer; throws when it was already completed.</summary>
    /// <exception cref="InvalidOperationException">The buffer was already completed.</exception>
    public void Complete(Exception? error = null)
    {
        if (!TryComplete(error))
        {
            ThrowHelper.ThrowInvalidOperation("The buffer has already been completed.");
        }
    }

    /// <summary>
    /// Completes the buffer with an <see cref="ObjectDisposedException"/>: parked writers and readers wake with
    /// that exception; items still in the buffer stay readable with <see cref="TryRead(out T)"/>, so nothing is lost.
    /// </summary>
    public void Dispose()
    {
        if (Seam.CompareExchange(ref _disposed, 1, 0) != 0)
        {
            return;
        }

        var disposed = new ObjectDisposedException(GetType().Name);
        // The error first: TryComplete wakes parked waiters, and one that ran before the error was set answered as for a
        // plain completion (a WaitToWriteAsync false) instead of throwing ObjectDisposedException.
        _writers.CompletionError = disposed;
        _readers.CompletionError = disposed;
        TryComplete(disposed);
        _writers.FinishAll(WaitStatus.Completed);
        // Readers end with the error only once the buffer is finished; before that (a single writer's write still in
        // flight, see InWriteMark) they recheck, read what lands, and the finish ends them.
        _readers.FinishAll(IsFinished ? WaitStatus.Completed : WaitStatus.Signaled);
        BackpressureMetrics.Unregister(this);
    }

    /// <inheritdoc/>
    BackpressureStatistics IBufferMetricsSource.Statistics => GetStatistics();

    /// <inheritdoc/>
    long IBufferMetricsSource.CallbackFailures => CallbackFailures;

    /// <inheritdoc/>
    long IBufferMetricsSource.ClockFailureCount => ClockFailureCount;

    /// <summary>
    /// One write attempt under <paramref name="policy"/>; <paramref name="countRejection"/>: the caller answers this result
    /// (a full buffer's rejection is counted and carries a retry hint), false: a waiting writer's attempt, which discards a
    /// rejection and waits on (neither counted nor given a hint: no clock read); <paramref name="retryHint"/> false: a
    /// counted rejection whose caller discards the hint (the channel's TryWrite), so none is computed. A null _completed means neither completion nor disposal
    /// (which completes) happened before this write; with many writers a completion racing the enqueue closes the
    /// engine, so the enqueue either lands before the close (and is drained before the buffer finishes) or fails.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private WriteResult WriteOnce(T item, OverflowPolicy policy, bool countRejection, bool retryHint = true)
    {
        // Kept as one inlined method. Measured (2026-11-22, A/B in one process): split into an inlined fast part and a
        // non-inlined "not placed" part that alone loads the policy, the fast path gained nothing measurable and the
        // full-buffer path lost 2-8 ns per write (a forced call, and WriteFull inlined into it returned through a stack
        // copy of the result that stalled store forwarding); this shape lets the JIT inline the hot policy case.
        if (_singleWriter)
        {
            _writeMark.Enter(); // before the completed-check: see InWriteMark; every way out below clears it
        }

        if (Seam.LoadAcquireReference(ref _completed) is not null) // acquire: pairs with the CAS in TryComplete
        {
            return CompletedOrDisposed();
        }

        if (Enqueue(item))
        {
            LeaveWritePublished();
            if (_afterWrite.Read() != 0) // acquire: after the publish (and the mark's clear); see "Fast paths"
            {
                AfterWrite();
            }

            return WriteResult.Accepted;
        }

        return ClosedAfterFailedEnqueue() ? CompletedOrDisposed() : WriteFull(item, policy, countRejection, retryHint);
    }

    /// <summary>
    /// A write that met completion: <see cref="ObjectDisposedException"/> when the completion was a disposal (Dispose
    /// raises its flag before it completes, so a writer that sees the completion sees the flag), else Completed.
    /// Without this a write racing Dispose between its own disposal check and its enqueue would answer Completed.
    /// </summary>
    private WriteResult CompletedOrDisposed()
    {
        LeaveWriteUnpublished();
        ThrowIfDisposed();
        return WriteResult.Completed;
    }

    /// <summary>
    /// After an enqueue that found no room: whether that was the close (many writers; the flag is set before the
    /// close, so a writer that met the closed tail sees it). With one writer completion is in program order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ClosedAfterFailedEnqueue() => !_singleWriter && Seam.LoadAcquireReference(ref _completed) is not null; // acquire

    /// <summary>
    /// A single writer's way out of a write that published nothing (completed, dropped, rejected, or a clock that threw):
    /// clears the mark and, when a completer left the finish to this write (see InWriteMark), finishes the buffer if
    /// drained. Many writers: nothing to do, and no call: the test is inlined (before, every rejected or dropped write of
    /// every buffer, many-writer ones included, called a method that only made this test, since WriteFull is never
    /// inlined and the JIT did not inline it there).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LeaveWriteUnpublished()
    {
        if (_singleWriter)
        {
            LeaveSingleWriteUnpublished();
        }
    }

    /// <summary>The one writer's part of <see cref="LeaveWriteUnpublished"/>, out of line (kept off the callers' code).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void LeaveSingleWriteUnpublished()
    {
        _writeMark.Exit(); // release; pairs with the completer's acquire in WriterIdle
        if ((_afterWrite.Read() & (long)AfterWork.Completed) != 0) // acquire: after the clear (the Dekker load of InWriteMark)
        {
            WriterDone();
        }
    }

    /// <summary>
    /// A single writer's way out of a write that published; the caller then asks the after-work word, whose Completed bit
    /// finishes a buffer completed meanwhile (AfterWrite). Many writers: nothing to do.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LeaveWritePublished()
    {
        if (_singleWriter)
        {
            _writeMark.Exit(); // release: after the publish; pairs with the completer's acquire in WriterIdle
        }
    }

    /// <summary>
    /// A single-writer buffer is completed and no write can publish any more (the completer found the writer idle, or the
    /// writer saw Completed after a write): sets Done, then finishes the buffer if drained (see InWriteMark).
    /// </summary>
    private void WriterDone()
    {
        _writeMark.SetDone(); // full fence: before the drained check; pairs with the fence in IsDone
        TryFinishIfDrained();
    }

    /// <summary>Closes a many-writer engine's producer side (see the design note); single-writer engines have none.</summary>
    private void CloseProducers() => (_queue as IClosableProducers)?.CloseProducers();

    // Never inlined: when the JIT inlined it (a choice that varied from process to process with the profile it had), the
    // caller's loop carried the overflow policies' code (callbacks, eviction, completion) and every TryWrite+TryRead pair
    // cost about 2 ns more on every engine (SPSC 4.6-5.1 ns against 2.7).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private WriteResult WriteFull(T item, OverflowPolicy policy, bool countRejection, bool retryHint)
    {
        if (_highWatermark != 0)
        {
            CheckPressureAfterMiss(); // a full buffer's state agrees with it from here on (see CheckPressure)
        }

        switch (policy)
        {
            case OverflowPolicy.DropIncoming:
                return DropIncoming(item);

            case OverflowPolicy.DropOldest:
                return PlaceOrEvict(item);

            default: // Wait (without waiting) and Reject
                return RejectFull(countRejection, retryHint);
        }
    }

    /// <summary>A full buffer under <see cref="OverflowPolicy.DropIncoming"/>: the incoming item is dropped, counted and reported.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private WriteResult DropIncoming(T item)
    {
        LeaveWriteUnpublished(); // before the callback: user code never runs inside the mark
        CountWriterEvent(ref _droppedIncoming, WriterCount.DroppedIncoming);
        InvokeItemDropped(item, DropReason.Incoming); // no slot is reserved: the queue is untouched
        return WriteResult.DroppedIncoming;
    }

    /// <summary>A full buffer under <see cref="OverflowPolicy.Reject"/>, or under <see cref="OverflowPolicy.Wait"/> without waiting: rejected (see <see cref="WriteOnce"/> for the flags).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private WriteResult RejectFull(bool countRejection, bool retryHint)
    {
        LeaveWriteUnpublished();
        if (!countRejection)
        {
            // A waiting writer's attempt (its spins, its recheck after linking, its retry after a wake-up): it
            // discards this answer and waits on, so no hint is computed. Before (session 10), each such attempt
            // read the user's clock for a hint nobody used, and a clock that threw there faulted the waiting write.
            return WriteResult.Rejected(RejectReason.Full, default);
        }

        CountRejection();
        return WriteResult.Rejected(RejectReason.Full, retryHint ? EstimateRetryAfter() : Timeout.InfiniteTimeSpan); // after leaving the mark: the clock is user code
    }

    /// <summary>
    /// A full buffer under <see cref="OverflowPolicy.DropOldest"/>: the engine's place-or-evict enqueue (session 16; see
    /// SequencedRing.Evicting.cs) places the item and evicts the oldest one if and only if the buffer is still full when
    /// the write takes effect, as one step: a write evicts at most one item, and only when it had to. The evicted item is
    /// counted, then reported once the write is complete (no slot reserved, the in-write mark left).
    /// Before, the eviction and the placement were two queue operations, so with many writers one write could evict
    /// two items while another took the room it made, and even with one writer an item could be evicted after a reader
    /// had freed a slot (BackpressureDropOldestManyWritersTests pinned the first behaviour; it now pins the fix).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private WriteResult PlaceOrEvict(T item)
    {
        // Before the head may move: a snapshot that sees the move sees this or the count (GetStatistics). The unmark goes
        // to the mark's stripe (many writers): on another one (the thread moved to another core meanwhile) a snapshot
        // summing the stripes could see the unmark without the mark, and Dequeued overshoot (s16 review).
        int stripe = CountWriterEvent(ref _evictionsInFlight, WriterCount.EvictionsInFlight, 1);
        EvictingEnqueue outcome;
        T? oldest;
        try
        {
            outcome = EnqueueOrEvict(item, out oldest); // with item ages the stamp (the user's clock) is read first: a throw changes nothing
        }
        catch
        {
            CountWriterEvent(ref _evictionsInFlight, WriterCount.EvictionsInFlight, -1, stripe);
            LeaveWriteUnpublished();
            throw;
        }

        if (outcome == EvictingEnqueue.PlacedEvicting)
        {
            CountWriterEvent(ref _evicted, WriterCount.Evicted, 1, stripe);
        }

        CountWriterEvent(ref _evictionsInFlight, WriterCount.EvictionsInFlight, -1, stripe); // after the count, on the mark's stripe

        if (outcome == EvictingEnqueue.Closed)
        {
            return CompletedOrDisposed(); // many writers: completed meanwhile; nothing changed, the item stays with the caller
        }

        if (outcome == EvictingEnqueue.Placed)
        {
            LeaveWritePublished();
            AfterWriteIfAny();
            return WriteResult.Accepted; // a reader made room before the write took effect
        }

        try
        {
            LeaveWritePublished(); // the mark held from before the eviction to the placement: see InWriteMark
            AfterWriteIfAny();
        }
        finally
        {
            // After the queue operation (no slot is reserved) and after the buffer's own steps: a callback that throws
            // must not skip them (from the channel review).
            InvokeItemDropped(oldest!, DropReason.Oldest);
        }

        return WriteResult.EvictedOldest;
    }

    /// <summary>The engine's place-or-evict enqueue without interface dispatch (many-consumer engines, and the stamping adapter over one).</summary>
    private EvictingEnqueue EnqueueOrEvict(T item, [MaybeNull] out T evicted) => _engine switch
    {
        EngineKind.Spmc => Unsafe.As<SpmcQueue<T>>(_queue).EnqueueOrEvict(item, out evicted),
        EngineKind.Mpmc => Unsafe.As<MpmcQueue<T>>(_queue).EnqueueOrEvict(item, out evicted),
        _ => Unsafe.As<StampingQueue<T>>(_queue).EnqueueOrEvict(item, out evicted), // DropOldest never uses the single-consumer engines
    };

    /// <summary>Runs the drop callback; an exception it throws is reported, never thrown into the writer (see <see cref="CallbackFailed"/>).</summary>
    private void InvokeItemDropped(T item, DropReason reason) =>
        FailureReport.InvokeDropped(_itemDropped, item, reason, ref _callbackFailures, CallbackFailed, this);

    /// <summary>Counts a handler's exception and hands it to <see cref="CallbackFailed"/> (whose own exceptions are dropped).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReportCallbackFailure(Exception error) =>
        FailureReport.Raise(ref _callbackFailures, CallbackFailed, this, error); // statistics: rare path

    /// <summary>The queue's enqueue without interface dispatch: the engine kind picks the sealed type, so the JIT inlines it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Enqueue(T item) => _engine switch
    {
        EngineKind.Spsc => Unsafe.As<SpscQueue<T>>(_queue).TryEnqueue(item),
        EngineKind.Mpsc => Unsafe.As<MpscQueue<T>>(_queue).TryEnqueue(item),
        EngineKind.Spmc => Unsafe.As<SpmcQueue<T>>(_queue).TryEnqueueWithoutPolls(item), // our overflow handling follows a full answer: no boundary polls
        EngineKind.Mpmc => Unsafe.As<MpmcQueue<T>>(_queue).TryEnqueueWithoutPolls(item), // as SPMC: MPMC's producers poll since session 5
        _ => EnqueueStamped(item), // the stamping adapter (opt-in item age)
    };

    /// <summary>
    /// The stamping adapter's enqueue, which reads the user's clock inside a single writer's write: a clock that throws
    /// leaves the write through <see cref="LeaveWriteUnpublished"/>, so the mark is never left set.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool EnqueueStamped(T item)
    {
        try
        {
            return _queue.TryEnqueue(item);
        }
        catch
        {
            LeaveWriteUnpublished(); // the stamp is taken before the engine's enqueue: nothing was published
            throw;
        }
    }

    private static IBoundedQueue<TItem> CreateEngine<TItem>(int capacity, bool singleWriter, bool canEvict) =>
        (singleWriter, canEvict) switch
        {
            (true, false) => new SpscQueue<TItem>(capacity),
            (false, false) => new MpscQueue<TItem>(capacity),
            (true, true) => new SpmcQueue<TItem>(capacity),
            (false, true) => new MpmcQueue<TItem>(capacity),
        };

    /// <summary>The queue's dequeue without interface dispatch (see <see cref="Enqueue"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Dequeue([MaybeNullWhen(false)] out T item)
    {
        // One out variable for all the cases: per-case locals were measured worse (an address-exposed inlinee local
        // is zeroed at every inline site, so four stores per read instead of one store of the item).
        switch (_engine)
        {
            case EngineKind.Spsc:
                return Unsafe.As<SpscQueue<T>>(_queue).TryDequeue(out item);
            case EngineKind.Mpsc:
                // With boundary polls, unlike the SPMC engine's writes: measured (2026-11-22, one writer and one
                // reader, async and spinning) TryDequeueWithoutPolls here moved items 2-5x slower, since every empty
                // answer and spin recheck then reads the writers' CAS line at once (see SequencedRing, "Boundary polls").
                return Unsafe.As<MpscQueue<T>>(_queue).TryDequeue(out item);
            case EngineKind.Spmc:
                return Unsafe.As<SpmcQueue<T>>(_queue).TryDequeue(out item);
            case EngineKind.Mpmc:
                return Unsafe.As<MpmcQueue<T>>(_queue).TryDequeue(out item);
            default:
                return _queue.TryDequeue(out item); // the stamping adapter (opt-in item age)
        }
    }

    private void CountRejection() => CountWriterEvent(ref _rejected, WriterCount.Rejected);

    /// <summary>
    /// Counts an event only writers cause (a rejection, a dropped incoming item, an eviction): with one writer a plain
    /// increment published by a release store (no other thread writes the counter); with many an atomic add on this
    /// core's stripe of <see cref="_writerCounts"/> (session 16: before, on the one field every writer shared, a
    /// cross-core line transfer per count when a full buffer's writers overflow at once).
    /// </summary>
    /// <returns>Many writers: the stripe counted on (pass it as <paramref name="stripe"/> to count on the same one); one writer: -1.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int CountWriterEvent(ref long counter, WriterCount which, long delta = 1, int stripe = -1)
    {
        if (_singleWriter)
        {
            Seam.StoreRelease(ref counter, Seam.LoadOwn(ref counter) + delta); // plain read of its own store: only the one writer counts; release for readers of the statistics
            return -1;
        }

        if (stripe >= 0)
        {
            _writerCounts!.AddAt(stripe, (int)which, delta); // full fence
            return stripe;
        }

        return _writerCounts!.Add((int)which, delta); // full fence, as the Interlocked.Add on the field it replaces
    }

    /// <summary>Many writers: the striped overflow counters (test seam); null with one writer.</summary>
    internal StripedCounterSet? WriterCountsForTests => _writerCounts;

    /// <summary>A snapshot of a counter <see cref="CountWriterEvent"/> keeps: the field with one writer, the stripes' sum with many (acquire loads).</summary>
    private long ReadWriterCount(ref long counter, WriterCount which) =>
        _singleWriter ? Seam.LoadAcquire(ref counter) : _writerCounts!.Sum((int)which); // acquire

    /// <summary>The overflow counters of a many-writer buffer, by their index in <see cref="_writerCounts"/>.</summary>
    private enum WriterCount
    {
        DroppedIncoming,
        Evicted,
        EvictionsInFlight,
        Rejected,
    }

    /// <summary>
    /// Little's law: at the drain rate measured over the last second or so, one slot frees every 1/rate
    /// seconds. Reads the clock only here, on the rejection path (a rejection answered to its caller, never a waiting
    /// writer's attempt); a clock that throws gives no estimate (<see cref="Timeout.InfiniteTimeSpan"/>), counted and
    /// reported through <see cref="ClockFailed"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // never inlined into a write: its clock reads are P/Invokes, whose inlined frame setup would land in the caller's prolog
    private TimeSpan EstimateRetryAfter()
    {
        // On the system clock a burst of rejections reuses the last estimate for up to one coarse tick
        // (Environment.TickCount64, ~1-16 ms, a few ns to read) instead of reading the precise clock (~26 ns)
        // each time. Benign races: the cache is two independent words; a reader may pair a fresh tick with an
        // older hint, which is as good an estimate. Any other TimeProvider computes every time (tests control time).
        long tick = 0;
        if (_cacheRetryAfter)
        {
            tick = Environment.TickCount64;
            if (Seam.LoadAcquire(ref _retryAfterTick) == tick) // acquire: pairs with the release below
            {
                return new TimeSpan(Seam.LoadAcquire(ref _retryAfterTicks));
            }
        }

        TimeSpan hint = ComputeRetryAfterOrNone();
        if (_cacheRetryAfter)
        {
            Seam.StoreRelease(ref _retryAfterTicks, hint.Ticks);
            Seam.StoreRelease(ref _retryAfterTick, tick); // release: publishes the hint stored above
        }

        return hint;
    }

    /// <summary>
    /// <see cref="ComputeRetryAfter"/>, or no estimate (<see cref="Timeout.InfiniteTimeSpan"/>) when the clock throws:
    /// the rejection is decided (the item stays with the caller), so the clock's failure must not turn it into an
    /// exception (before, session 10, the write threw and its caller could not tell it was rejected); counted and
    /// reported. Out of line, so the cached path above carries no exception-handling region.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TimeSpan ComputeRetryAfterOrNone()
    {
        try
        {
            return ComputeRetryAfter();
        }
        catch (Exception error)
        {
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, error);
            return Timeout.InfiniteTimeSpan;
        }
    }

    /// <summary>
    /// The drain rate over the span since the older of two marks, which move up once a rejection finds the newer one a
    /// window old: so the span holds at least the last window (once the buffer is that old) and at most about two (with
    /// rejections at least once per window; after a quiet spell, everything since the mark the last rejections left).
    /// Before, the window restarted at a rejection and the next ones measured only the moments since: nothing drained
    /// there, so they answered Infinite ("stalled") right after every restart though the reader never stopped; and the
    /// first rejection only opened the window, answering Infinite after any amount of draining.
    /// </summary>
    private TimeSpan ComputeRetryAfter()
    {
        long now = _time.GetTimestamp();
        long dequeued = _positions.DequeuedPositions;
        // Benign races: concurrent rejections may move the marks twice, or read a timestamp and a count of different
        // marks; either gives an estimate over a nearby span, and a negative or zero span or drain answers Infinite.
        long since = Seam.LoadAcquire(ref _rateTimestamp);
        long drainedFrom = Seam.LoadAcquire(ref _rateDequeued);
        long markTime = Seam.LoadAcquire(ref _rateMarkTimestamp);
        if (_time.GetElapsedTime(markTime, now).TotalSeconds >= RateWindowSeconds)
        {
            Seam.StoreRelease(ref _rateDequeued, Seam.LoadAcquire(ref _rateMarkDequeued));
            Seam.StoreRelease(ref _rateTimestamp, markTime);
            Seam.StoreRelease(ref _rateMarkDequeued, dequeued);
            Seam.StoreRelease(ref _rateMarkTimestamp, now);
        }

        double elapsed = _time.GetElapsedTime(since, now).TotalSeconds;
        long drained = dequeued - drainedFrom;
        if (elapsed <= 0 || drained <= 0)
        {
            return Timeout.InfiniteTimeSpan; // nothing drained lately: the reader may be stalled
        }

        return TimeSpan.FromSeconds(Math.Min(elapsed / drained, MaxRetryAfterSeconds));
    }

    private void ValidatePolicy(OverflowPolicy policy)
    {
        if ((uint)policy > (uint)OverflowPolicy.DropOldest) // a range check: Enum.IsDefined costs more than the write it guards
        {
            throw new ArgumentOutOfRangeException(nameof(policy), policy, "Not an OverflowPolicy value.");
        }

        if (policy == OverflowPolicy.DropOldest && !_canEvict)
        {
            ThrowHelper.ThrowInvalidOperation("DropOldest needs a buffer that writers may read from: create it with FullMode = DropOldest or SingleReader = false.");
        }
    }

    private void ThrowIfDisposed()
    {
        if (Seam.LoadAcquire(ref _disposed) != 0)
        {
            throw new ObjectDisposedException(GetType().Name);
        }
    }

    /// <summary>The shortest span the drain rate is measured over once the buffer is that old (see <see cref="ComputeRetryAfter"/>).</summary>
    private const double RateWindowSeconds = 1.0;

    /// <summary>The longest retry hint given for a draining buffer (a slower drain is reported as this).</summary>
    private const double MaxRetryAfterSeconds = 60.0;

    /// <summary>Bits of <see cref="_afterWrite"/> and <see cref="_afterRead"/>: work after a queue operation.</summary>
    [Flags]
    private enum AfterWork
    {
        /// <summary>Watermarks are configured: check the depth.</summary>
        Watermarks = 1,

        /// <summary>The other side has parked at least once: ask its gate whether anyone waits.</summary>
        Parked = 2,

        /// <summary>The buffer is completed: a read may have drained it; with one writer, a write in flight at the completion finishes it (see InWriteMark).</summary>
        Completed = 4,
    }

    /// <summary>Which queue engine <see cref="_queue"/> is, so the hot paths call it without interface dispatch.</summary>
    private enum EngineKind : byte
    {
        Spsc,
        Mpsc,
        Spmc,
        Mpmc,
        Stamping,
    }

    private sealed class CompletionState(Exception? error)
    {
        public Exception? Error { get; } = error;
    }
}
