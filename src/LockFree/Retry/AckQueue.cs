using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using LockFree.Internal;
using LockFree.Timers;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

// Design: processing with acknowledgement (at-least-once), on a DelayQueue plus an in-flight table.
//
// Ready and delayed messages live in a DelayQueue<Envelope> (lock-free producers; a nack with a delay, or a retry,
// is an enqueue with that delay). A receive takes a due envelope and registers it in the in-flight table: a slot
// holding the envelope, a version and a visibility deadline. The Delivery carries (slot, version); ack, nack and
// dead-letter end the delivery only if the slot is still in flight at that version, so exactly one of {ack, nack,
// dead-letter, visibility timeout} ends each delivery, and an ack that arrives after a redelivery is refused.
//
// The lock and the shared words go through the atomics seam (SeamLock<Seam>, Seam.TryEnterLock): in the library the
// Monitor with interrupt deferral and the raw instructions; in the concurrency tests' composed build (this file compiled
// again on the test atomics) a lock and accesses the controlled scheduler runs (tests/Concurrency/Composed).
//
// The in-flight table is guarded by one short lock (index arithmetic and a few field writes, no user code, no
// allocation). Deadlines are receive time + one fixed timeout, read under the lock, so they are non-decreasing in
// receive order (as timestamps of a clock that may wrap past long.MaxValue: every comparison is the sign of a
// difference, Timestamps.IsBefore; before session 11 plain comparisons timed out nothing across a wrap): the in-flight slots form a FIFO (an intrusive doubly linked list) ordered by deadline, with O(1)
// insert, O(1) removal on ack, and expiry from the head. The slots on their last delivery (MaxDeliveries) are also
// linked in a sub-FIFO of their own (same order), whose head gives a rejection's retry hint in O(1). That hint answers
// "retry now" while room is free or on its way back: an ack returns its room before its unlink, and a move out of the
// table that returns room or makes the message ready at once (the dead letters, a nack without delay, an expiry) is
// counted in _settling from before its unlink until it ends, so the hint never reads a table whose message left while
// its room is still out (s12).
// One wake-up (the Wakeups seam) is armed for the head's deadline; its callback moves every expired message back to the DelayQueue (due at once, delivery count kept,
// raised on the next receive), or to the dead letters past MaxDeliveries.
//
// At-least-once: a message leaves the queue only through an ack or the dead letters (one that took it in: a disposed
// dead-letter queue takes nothing, and the message stays here, in flight or ready). Until then it is in exactly one
// of: the DelayQueue (ready or delayed), or one in-flight slot whose deadline is in the FIFO; the wake-up covers the
// FIFO's head, and each expiry re-arms it for the next head, so every unacknowledged delivery comes back.
//
// Bound: _count (ready + delayed + in flight) <= Capacity, reserved with a CAS before the DelayQueue enqueue, so
// neither the DelayQueue (capacity Capacity) nor the table (Capacity slots) can be full when used.

/// <summary>
/// A bounded queue with acknowledgement: a consumer receives a message, then acks it (done) or nacks it (retry, now
/// or after a delay); a message not acked within the visibility timeout becomes visible again with its delivery
/// count raised (at-least-once). Messages past <see cref="AckQueueOptions{T}.MaxDeliveries"/>, or dead-lettered by
/// the consumer, move to a <see cref="DeadLetterQueue{T}"/> with their metadata.
/// </summary>
/// <typeparam name="T">The message type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}, VisibilityTimeout = {VisibilityTimeout}")]
public sealed partial class AckQueue<T> : IDisposable
{
    private const int None = -1;

    /// <summary>Longest wait before an expiry pass that failed (its clock threw) is retried: a transient failure delays timeouts by about this much at most.</summary>
    private static readonly TimeSpan MaxExpiryRetryDelay = TimeSpan.FromSeconds(1);

    private ITimer? _fallback; // a TimeProvider.System timer running the expiry pass while the clock's own timer cannot be armed (guarded by _lock)
    private long _fallbackRetryTicks; // its back-off, 0 after an arming of the clock's timer that worked (guarded by _lock)

    private readonly DelayQueue<Envelope> _ready;
    private readonly Slot[] _slots;
    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private readonly long _timeoutTimestamps;
    private readonly DeadLetterQueue<T>? _deadLetters;
    private readonly int _maxDeliveries;
    private readonly string _name;
    private readonly IWakeup _wakeup;

    private long _count;
    private int _free;        // head of the free-slot list (linked through Next); under the lock
    private int _oldest = None; // head of the in-flight FIFO (earliest deadline); under the lock
    private int _newest = None; // tail of the in-flight FIFO; under the lock
    private int _oldestLast = None; // head of the sub-FIFO of in-flight slots on their last delivery (earliest such deadline); under the lock
    private int _newestLast = None; // its tail; under the lock
    private long _inFlight;    // under the lock
    private long _lastDeliveriesInFlight; // in-flight messages at MaxDeliveries (their timeout frees room); written under the lock, read lock-free by the retry hint
    private long _settling; // messages out of the table whose move (to the dead letters, or back to the ready queue due at once) has not ended: raised under the lock before the unlink, lowered after the move; a rejection meanwhile hints "retry now" (RoomComing)
    private long _armedFor = long.MaxValue; // under the lock
    private long _enqueued;
    private long _acked;
    private long _nacked;
    private long _expired;
    private long _deadLettered;
    private long _dropped;
    private long _rejected;
    private long _failedCallbacks;
    private long _disposed;

    /// <summary>Creates an acknowledgement queue with the given options.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or its time provider or name is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of its documented range.</exception>
    /// <exception cref="ArgumentException">
    /// <see cref="AckQueueOptions{T}.MaxDeliveries"/> is set without <see cref="AckQueueOptions{T}.DeadLetters"/>, or
    /// <see cref="AckQueueOptions{T}.TimerWheel"/> reads another clock than <see cref="AckQueueOptions{T}.TimeProvider"/>.
    /// </exception>
    public AckQueue(AckQueueOptions<T> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        ArgumentNullException.ThrowIfNull(options.Name, "options.Name");
        Wakeups.ValidateWheel(options.TimerWheel, options.TimeProvider, nameof(options));
        if (options.Capacity < 1 || options.Capacity > QueueCapacity.Max)
        {
            ThrowHelper.ThrowCapacityOutOfRange(options.Capacity);
        }

        if (options.VisibilityTimeout <= TimeSpan.Zero || options.VisibilityTimeout > Wakeups.MaxDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.VisibilityTimeout, $"VisibilityTimeout must be in (0, {Wakeups.MaxDelay}].");
        }

        if (options.FullMode is not (OverflowPolicy.Reject or OverflowPolicy.DropIncoming))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.FullMode, "FullMode must be Reject or DropIncoming.");
        }

        if (options.MaxDeliveries < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxDeliveries, "MaxDeliveries must be 0 (no limit) or positive.");
        }

        if (options.MaxDeliveries > 0 && options.DeadLetters is null)
        {
            throw new ArgumentException("MaxDeliveries needs DeadLetters: where else would the message go?", nameof(options));
        }

        Capacity = options.Capacity;
        VisibilityTimeout = options.VisibilityTimeout;
        FullMode = options.FullMode;
        _time = options.TimeProvider;
        _deadLetters = options.DeadLetters;
        _maxDeliveries = options.MaxDeliveries;
        _name = options.Name;
        _ready = new DelayQueue<Envelope>(Capacity, new DelayQueueOptions<Envelope> { FullMode = OverflowPolicy.Reject, TimeProvider = _time, TimerWheel = options.TimerWheel });
        _ready.ClockFailed += (_, error) => ReportCallbackFailure(error); // a rejection's retry hint, or a move back due at once, whose clock threw (see FailedCallbackCount)
        _timeoutTimestamps = _ready.ToTimestamps(VisibilityTimeout);
        _slots = new Slot[Capacity];
        for (int i = 0; i < _slots.Length; i++)
        {
            _slots[i].Next = i + 1 < _slots.Length ? i + 1 : None;
        }

        _free = 0;
        _wakeup = Wakeups.Create(_time, options.TimerWheel, static state => ((AckQueue<T>)state!).OnVisibilityTimeout(), this);
    }

    /// <summary>The most messages held, ready, delayed and in flight together.</summary>
    public int Capacity { get; }

    /// <summary>How long a received message stays invisible before it is redelivered.</summary>
    public TimeSpan VisibilityTimeout { get; }

    /// <summary>What an enqueue does when the queue is full.</summary>
    public OverflowPolicy FullMode { get; }

    /// <summary>Messages held (ready, delayed and in flight): a snapshot.</summary>
    public int Count => (int)Seam.LoadAcquire(ref _count);

    /// <summary>Messages received and not yet acked, nacked, dead-lettered or timed out: a snapshot.</summary>
    public int InFlightCount => (int)Seam.LoadAcquire(ref _inFlight);

    /// <summary>
    /// Exceptions caught on the queue's timer thread: thrown by the dead-letter queue (its
    /// <see cref="DeadLetterQueueOptions{T}.ItemDropped"/> callback) while an expiry pass moved a message there, or by
    /// the pass itself (a failing <see cref="AckQueueOptions{T}.TimeProvider"/>); also a visibility timer that threw
    /// while a receive armed it (the receive still delivers; the next receive arms again); and the
    /// <see cref="AckQueueOptions{T}.TimeProvider"/> throwing while a rejected <see cref="TryEnqueue"/> computed its retry
    /// hint (the inner delay queue's, or the in-flight one when all the room is in flight; on the enqueuing thread; the enqueue still answers rejected, with <see cref="Timeout.InfiniteTimeSpan"/> as
    /// its hint: before, session 10, it threw); and the clock throwing while a message was put back in the ready queue due
    /// at once (a new message enqueued without a delay, a nack without one, an expired message, one a dead-letter queue
    /// did not take: the message is put in all the same, visible at once; before, session 11, that failure left no trace). Each is also raised through <see cref="CallbackFailed"/>. Other exceptions on the callers' paths (<see cref="Nack"/>, <see cref="DeadLetter"/>)
    /// reach those callers instead and are not counted here.
    /// </summary>
    public long FailedCallbackCount => Seam.LoadAcquire(ref _failedCallbacks);

    /// <summary>
    /// Raised on the timer's thread (a <see cref="AckQueueOptions{T}.TimeProvider"/> timer, or the driving thread of
    /// <see cref="AckQueueOptions{T}.TimerWheel"/>), on the receiving thread for a visibility timer that failed to arm, or on
    /// the enqueuing thread for a rejection's retry hint whose clock threw, or on the thread that put a message back in the
    /// ready queue due at once while the clock threw (an enqueue without a delay, a receive whose reading failed, a nack, an
    /// expiry pass; the message is in all the same), for each exception counted in <see cref="FailedCallbackCount"/>.
    /// Exceptions thrown by the handler itself are swallowed: nothing escapes the timer thread, which would end the process.
    /// </summary>
    public event EventHandler<Exception>? CallbackFailed;

    /// <summary>Enqueues a message, visible after <paramref name="delay"/> (default at once).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative or above <see cref="DelayQueue{T}.MaxDelay"/>.</exception>
    /// <exception cref="ObjectDisposedException">The queue has been disposed.</exception>
    public WriteResult TryEnqueue(T message, TimeSpan delay = default)
    {
        Wakeups.ValidateDelay(delay, nameof(delay));

        ObjectDisposedException.ThrowIf(Seam.LoadAcquire(ref _disposed) != 0, this);
        if (!TryReserve())
        {
            if (FullMode == OverflowPolicy.DropIncoming)
            {
                Seam.Add(ref _dropped, 1);
                return WriteResult.DroppedIncoming;
            }

            Seam.Add(ref _rejected, 1);
            return WriteResult.Rejected(RejectReason.Full, EstimateRetryAfter());
        }

        try
        {
            Requeue(new Envelope(message, 0, 0), delay);
        }
        catch (Exception)
        {
            Release(); // the clock failed: nothing entered (the inner queue returned its own unit); the caller keeps the message
            throw;
        }

        Seam.Add(ref _enqueued, 1);
        return WriteResult.Accepted;
    }

    /// <summary>Receives a visible message without waiting; false when none is visible.</summary>
    public bool TryReceive(out Delivery<T> delivery)
    {
        if (!_ready.TryDequeue(out Envelope envelope))
        {
            delivery = default;
            return false;
        }

        delivery = Register(envelope);
        return true;
    }

    /// <summary>
    /// Receives the next visible message, waiting asynchronously (no thread blocked, no allocation in steady state).
    /// A cancelled wait leaves no trace; a message taken before the cancellation is delivered.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The queue was disposed.</exception>
    public ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Delivery<T>>(cancellationToken);
        }

        return TryReceive(out Delivery<T> delivery) ? new ValueTask<Delivery<T>>(delivery) : ReceiveAsyncSlow(cancellationToken);
    }

    /// <summary>Acknowledges a delivery: the message is done and leaves the queue. False for a stale delivery (it already ended: acked, nacked, timed out) or one this queue did not make (another queue's, or <c>default</c>).</summary>
    public bool Ack(in Delivery<T> delivery)
    {
        if (!TryEnd(delivery, out _, EndKind.Ack, out _))
        {
            return false;
        }

        Seam.Add(ref _acked, 1); // its room came back in TryEnd, before the unlink (see RoomComing)
        return true;
    }

    /// <summary>
    /// Gives a delivery back: the message becomes visible again after <paramref name="delay"/> (default at once), or
    /// goes to the dead letters when it has reached <see cref="AckQueueOptions{T}.MaxDeliveries"/>. False for a stale delivery.
    /// When the clock throws while a <paramref name="delay"/> is timed, the delivery has ended: the message is back,
    /// visible at once, and the clock's exception propagates.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative or above <see cref="DelayQueue{T}.MaxDelay"/>.</exception>
    /// <exception cref="ObjectDisposedException">
    /// The queue has been disposed, or the message would go to a disposed <see cref="AckQueueOptions{T}.DeadLetters"/>
    /// (the delivery is left as it was; a dead-letter queue disposed during the call puts the message back, visible at once).
    /// </exception>
    public bool Nack(in Delivery<T> delivery, TimeSpan? delay = null, Exception? exception = null)
    {
        TimeSpan wait = delay ?? TimeSpan.Zero;
        Wakeups.ValidateDelay(wait, nameof(delay));
        ObjectDisposedException.ThrowIf(Seam.LoadAcquire(ref _disposed) != 0, this); // before the delivery ends: nothing is lost

        if (!TryEnd(delivery, out Envelope envelope, wait == TimeSpan.Zero ? EndKind.Nack : EndKind.NackDelayed, out bool settling))
        {
            return false;
        }

        try
        {
            Seam.Add(ref _nacked, 1);
            if (_maxDeliveries > 0 && envelope.Deliveries >= _maxDeliveries)
            {
                MoveToDeadLetters(envelope, "MaxDeliveries", exception);
            }
            else
            {
                try
                {
                    Requeue(envelope, wait);
                }
                catch (Exception) when (wait != TimeSpan.Zero)
                {
                    // The clock failed, so the delay cannot be timed; the delivery has ended: keep the message, visible at
                    // once (a requeue due at once needs no clock reading), and tell the caller.
                    Requeue(envelope, TimeSpan.Zero);
                    throw;
                }
            }
        }
        finally
        {
            if (settling)
            {
                EndSettling();
            }
        }

        return true;
    }

    /// <summary>Moves a delivery's message to the dead letters with its metadata (source, reason, exception, delivery count, first and last delivery times). False for a stale delivery.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="reason"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The queue has no <see cref="AckQueueOptions{T}.DeadLetters"/>.</exception>
    /// <exception cref="ObjectDisposedException">
    /// The <see cref="AckQueueOptions{T}.DeadLetters"/> queue was disposed: the delivery is left as it was (or, disposed
    /// during the call, the message is back in this queue, visible at once).
    /// </exception>
    public bool DeadLetter(in Delivery<T> delivery, string reason, Exception? exception = null)
    {
        ArgumentNullException.ThrowIfNull(reason);
        if (_deadLetters is null)
        {
            ThrowHelper.ThrowInvalidOperation("This queue has no DeadLetters configured.");
        }

        if (!TryEnd(delivery, out Envelope envelope, EndKind.DeadLetter, out _))
        {
            return false;
        }

        try
        {
            MoveToDeadLetters(envelope, reason, exception);
        }
        finally
        {
            EndSettling();
        }

        return true;
    }

    /// <summary>A snapshot of the accounting.</summary>
    public AckQueueStatistics GetStatistics() => new(
        Seam.LoadAcquire(ref _enqueued), Seam.LoadAcquire(ref _acked), Seam.LoadAcquire(ref _nacked), Seam.LoadAcquire(ref _expired),
        Seam.LoadAcquire(ref _deadLettered), Seam.LoadAcquire(ref _dropped), Seam.LoadAcquire(ref _rejected), Count, InFlightCount);

    /// <summary>
    /// Stops the visibility wake-up and the inner delay queue; waiting receivers see <see cref="ObjectDisposedException"/>.
    /// Nothing held is lost: messages left ready or delayed (including one that an enqueue, nack or expiry racing with
    /// the Dispose moves back) stay readable with <see cref="TryReceive"/>; messages in flight can still be acked or
    /// dead-lettered, but no longer time out, and <see cref="Nack"/> throws.
    /// </summary>
    public void Dispose()
    {
        if (Seam.CompareExchange(ref _disposed, 1, 0) != 0) // a 0/1 flag: the CAS is the exchange
        {
            return;
        }

        using (SeamLock<Seam>.Enter(_lock))
        {
            _wakeup.Dispose();
            _fallback?.Dispose();
        }

        _ready.Dispose();
    }

    private bool TryReserve() => BoundedCount.TryReserve<Seam>(ref _count, Capacity);

    /// <summary>Whether a delivery is the message's last: past MaxDeliveries its timeout or nack dead-letters it (room comes back).</summary>
    private bool IsLastDelivery(in Envelope envelope) => _maxDeliveries > 0 && envelope.Deliveries >= _maxDeliveries;

    /// <summary>
    /// The retry hint of a rejection. Room comes back only when a message leaves: an ack, or the dead letters. While
    /// messages wait ready or delayed, the inner delay queue's hint (the time until the earliest is due: receivers that
    /// keep up take it then and ack; it only tries the delay queue's consumer lock, so a storm of rejected producers
    /// never queues up behind, or holds up, the receivers). When the ready queue is empty every unit of room is in
    /// flight, and that hint would answer zero ("retry now", wrong: nothing frees room now): see
    /// <see cref="EstimateInFlightRetryAfter"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a rejection's path: kept out of TryEnqueue
    private TimeSpan EstimateRetryAfter() => _ready.Count != 0 ? _ready.EstimateRetryAfter() : EstimateInFlightRetryAfter();

    /// <summary>
    /// The retry hint when all the room is in flight: the time until the earliest visibility deadline whose expiry frees
    /// room by itself (a message on its last delivery goes to the dead letters then). <see cref="Timeout.InfiniteTimeSpan"/>
    /// (no estimate, as <see cref="WriteResult.RetryAfter"/> defines it) when no timeout frees room (without
    /// MaxDeliveries, or no message on its last delivery: only an ack, which no clock foresees, gives room back; an
    /// expired message comes back to the ready queue and keeps its unit), when the clock throws (counted in
    /// <see cref="FailedCallbackCount"/>, as the delay queue's own hint failures are), or when a receiver holds the
    /// table's lock (the hint never waits on the receivers). Before (session 11) this case answered
    /// <see cref="TimeSpan.Zero"/>: a caller honouring it retried at once, again and again. It answers
    /// <see cref="TimeSpan.Zero"/> ("retry now") only when room came back since the reservation failed, or is coming back as
    /// soon as a move under way ends (<see cref="RoomComing"/>): checked before the estimate and again after it, so an
    /// ack, nack, dead-letter or expiry racing with the rejection never leaves it answering the deadline of a message no
    /// longer in flight (s12: before, it answered that stale deadline, or no estimate while the room was on its way back).
    /// </summary>
    private TimeSpan EstimateInFlightRetryAfter()
    {
        long lastDeliveries = Seam.LoadAcquire(ref _lastDeliveriesInFlight); // acquire: pairs with the release in Register/Unlink; a snapshot
        if (RoomComing()) // after that read: an unlink it saw has its room (or move) visible here
        {
            return TimeSpan.Zero;
        }

        if (lastDeliveries == 0)
        {
            return Timeout.InfiniteTimeSpan;
        }

        if (!Seam.TryEnterLock(_lock)) // never blocks (never waits on a receiver, never throws an interrupt)
        {
            return Timeout.InfiniteTimeSpan;
        }

        long deadline = 0;
        bool found = false;
        try
        {
            // The slots on their last delivery form a sub-FIFO of the in-flight one, in the same (deadline) order: its head
            // has the earliest such deadline. O(1) under the lock (s11-rev: before, a walk of the in-flight FIFO from its
            // head to the first such slot, O(messages in flight) under the table's lock at every rejection: about 80 ms with
            // a million in flight, receivers and acks blocked meanwhile).
            if (_oldestLast != None)
            {
                deadline = _slots[_oldestLast].Deadline;
                found = true;
            }
        }
        finally
        {
            Seam.ExitLock(_lock, interrupted: false);
        }

        if (!found)
        {
            return RoomComing() ? TimeSpan.Zero : Timeout.InfiniteTimeSpan; // the last deliveries left since the first check
        }

        long now;
        try
        {
            now = _time.GetTimestamp();
        }
        catch (Exception error)
        {
            ReportCallbackFailure(error);
            return Timeout.InfiniteTimeSpan;
        }

        TimeSpan hint = ToTimeSpan(unchecked(deadline - now)); // a difference: the clock may wrap
        return RoomComing() ? TimeSpan.Zero : hint; // that message may have left (acked, dead-lettered) since the lock: its deadline is stale
    }

    /// <summary>
    /// Whether room is free now (an ack or a dead-lettering gave it back since the reservation failed), or coming back as
    /// soon as a move under way ends: a message out of the table on its way to the dead letters (its room then returns),
    /// or back to the ready queue due at once (receivers take it at once). Both answer "retry now" honestly, and neither
    /// lasts: <see cref="_settling"/> is lowered when each move ends, whatever it throws. Reads <see cref="_settling"/>
    /// first: a move lowers it after returning the room, so seeing it lowered means seeing the room.
    /// </summary>
    private bool RoomComing() =>
        Seam.LoadAcquire(ref _settling) != 0 // acquire: pairs with the Interlocked raise before the unlink and the lowering after the move
        || Seam.LoadAcquire(ref _count) < Capacity; // acquire: an ack returns its room before its unlink (TryEnd), a move before lowering _settling

    /// <summary>Ends a move counted in <see cref="_settling"/> (after its room came back or it was requeued, or it threw).</summary>
    private void EndSettling() => Seam.Add(ref _settling, -1); // full fence: after the move's Release or requeue

    /// <summary>A span of timestamps (a difference: wrap-safe) as time, rounded up; zero when not positive.</summary>
    private TimeSpan ToTimeSpan(long timestamps) =>
        timestamps <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)Math.Ceiling(timestamps * (TimeSpan.TicksPerSecond / (double)_time.TimestampFrequency)));

    private void Release() => Seam.Add(ref _count, -1);

    /// <summary>
    /// Puts a message (new, nacked or expired; its unit of _count already held) into the ready queue. Restore, not
    /// TryEnqueue: a Dispose racing with an enqueue, a nack or an expiry pass must not make the message vanish (or
    /// throw after the delivery ended); it stays readable with TryReceive, like the messages a Dispose leaves.
    /// </summary>
    private void Requeue(Envelope envelope, TimeSpan delay) => _ready.Restore(envelope, delay);

    /// <summary>
    /// Registers the delivery of a message just taken from the ready queue. A clock that throws puts the message back,
    /// visible at once with its delivery count unchanged (a receive that failed is no delivery), and the exception
    /// propagates to the receiver: before the review of 2026-11-23 the message was lost (out of the ready queue, never
    /// in flight) and its unit of room held for good.
    /// </summary>
    private Delivery<T> Register(Envelope envelope)
    {
        Envelope taken = envelope;
        envelope = envelope with { Deliveries = envelope.Deliveries + 1 };
        int slot = None;
        long stamp = 0;
        Exception? armFailure = null;
        ExceptionDispatchInfo? clockFailure = null;
        using (SeamLock<Seam>.Enter(_lock))
        {
            long now = 0;
            try
            {
                now = _time.GetTimestamp(); // first: nothing in the table has changed yet
            }
            catch (Exception error)
            {
                clockFailure = ExceptionDispatchInfo.Capture(error); // nothing changed; the message goes back after the lock
            }

            if (clockFailure is null)
            {
                armFailure = Insert(ref envelope, now, out slot, out stamp);
            }
        }

        if (clockFailure is not null)
        {
            // Due at once needs no reading. After the lock (since session 11): when the clock throws again there, the put-back
            // reports it through the delay queue's ClockFailed, which raises CallbackFailed (user code), never under the lock.
            Requeue(taken, TimeSpan.Zero);
            clockFailure.Throw();
        }

        if (armFailure is not null)
        {
            ReportCallbackFailure(armFailure);
            ArmFallbackExpiry(); // else the messages in flight would time out only after another receive
        }

        return new Delivery<T>(this, envelope.Message, envelope.Deliveries, slot, stamp);
    }

    /// <summary>
    /// Puts a delivery received at <paramref name="now"/> in a free slot at the FIFO's tail, and arms the wake-up when
    /// nothing earlier is armed. Under the lock. Returns the arming's exception (the delivery stands), or null.
    /// </summary>
    private Exception? Insert(ref Envelope envelope, long now, out int slot, out long stamp)
    {
        if (envelope.Deliveries == 1)
        {
            envelope = envelope with { FirstDelivery = now };
        }

        slot = _free;
        Debug.Assert(slot != None, "the count bounds the in-flight table");
        ref Slot s = ref _slots[slot];
        _free = s.Next;
        s.Envelope = envelope;
        if (IsLastDelivery(envelope))
        {
            Seam.StoreRelease(ref _lastDeliveriesInFlight, Seam.LoadOwn(ref _lastDeliveriesInFlight) + 1); // release: a snapshot for EstimateInFlightRetryAfter's lock-free check
            s.PreviousLast = _newestLast; // the sub-FIFO's tail: deadlines are non-decreasing in receive order
            s.NextLast = None;
            if (_newestLast == None)
            {
                _oldestLast = slot;
            }
            else
            {
                _slots[_newestLast].NextLast = slot;
            }

            _newestLast = slot;
        }

        stamp = ++s.Version;
        s.InFlight = true;
        s.Deadline = unchecked(now + _timeoutTimestamps); // may wrap past long.MaxValue: compared by differences only
        s.LastDelivery = now;
        s.Previous = _newest;
        s.Next = None;
        if (_newest == None)
        {
            _oldest = slot;
        }
        else
        {
            _slots[_newest].Next = slot;
        }

        _newest = slot;
        _inFlight++;

        // Arms for the head when nothing earlier is armed: a new head of an empty table, normally; also the first
        // registration after an arming that failed (below, or in an expiry pass), which left nothing armed.
        long headDeadline = _slots[_oldest].Deadline;
        if ((_armedFor == long.MaxValue || Timestamps.IsBefore(headDeadline, _armedFor)) && Seam.LoadAcquire(ref _disposed) == 0) // wrap-safe; a disposed timer is never re-armed
        {
            _armedFor = headDeadline;
            try
            {
                _wakeup.Arm(headDeadline, _oldest == slot ? VisibilityTimeout : ToTimeSpan(unchecked(headDeadline - now)));
            }
            catch (Exception ex)
            {
                // The timer failed (user code: its TimeProvider's ITimer). The delivery stands: the receiver gets it, and
                // the failure is reported (after the lock) instead. Before the review of 2026-11-23 the exception reached
                // the receiver, who never got the delivery, while _armedFor claimed an arming: the message stayed in
                // flight, owned by nobody, and it and every later one never timed out.
                _armedFor = long.MaxValue;
                return ex;
            }
        }

        return null;
    }

    /// <summary>
    /// Ends a delivery of this queue still in flight at its stamp: unlinks and frees its slot. False when stale or
    /// foreign. When the message would go to a disposed dead-letter queue (a dead-letter, or a nack past MaxDeliveries),
    /// throws <see cref="ObjectDisposedException"/> instead and leaves the delivery in flight. An ack returns the
    /// message's room here, before the unlink; a move that returns room or makes the message ready at once (the dead
    /// letters, a nack without delay) is counted in <see cref="_settling"/> (<paramref name="settling"/>: the caller
    /// ends it with <see cref="EndSettling"/> once the move is done), so a rejection's hint never sees the message gone
    /// and its room not yet back (<see cref="RoomComing"/>).
    /// </summary>
    private bool TryEnd(in Delivery<T> delivery, out Envelope envelope, EndKind kind, out bool settling)
    {
        settling = false;
        using (SeamLock<Seam>.Enter(_lock))
        {
            // A (slot, stamp) means something only in the table that issued it: another queue's delivery (or a
            // default one) may match one of our slots and must not end that unrelated message.
            int slot = delivery.Slot;
            if (!ReferenceEquals(delivery.Owner, this) || (uint)slot >= (uint)_slots.Length || !_slots[slot].InFlight || (_slots[slot].Version != delivery.Stamp && !Seam.IsPlanted(PlantedFault.AckIgnoresVersion)))
            {
                envelope = default;
                return false;
            }

            envelope = _slots[slot].Envelope;
            bool toDeadLetters = kind == EndKind.DeadLetter
                || ((kind is EndKind.Nack or EndKind.NackDelayed) && _maxDeliveries > 0 && envelope.Deliveries >= _maxDeliveries);
            if (toDeadLetters && _deadLetters!.IsDisposed)
            {
                ThrowDeadLettersDisposed(); // before the delivery ends: the caller still owns it, nothing is lost
            }

            envelope = envelope with { LastDelivery = _slots[slot].LastDelivery };
            if (kind == EndKind.Ack)
            {
                Release(); // before the unlink (a full fence): a hint that sees the message gone sees its room back
            }
            else if (toDeadLetters || kind == EndKind.Nack)
            {
                Seam.Add(ref _settling, 1); // full fence, before the unlink: as above, for a move still to come
                settling = true;
            }

            Unlink(slot);
            return true;
        }
    }

    /// <summary>Removes a slot from the in-flight FIFO and frees it. Under the lock.</summary>
    private void Unlink(int slot)
    {
        ref Slot s = ref _slots[slot];
        if (s.Previous == None)
        {
            _oldest = s.Next;
        }
        else
        {
            _slots[s.Previous].Next = s.Next;
        }

        if (s.Next == None)
        {
            _newest = s.Previous;
        }
        else
        {
            _slots[s.Next].Previous = s.Previous;
        }

        if (IsLastDelivery(s.Envelope))
        {
            Seam.StoreRelease(ref _lastDeliveriesInFlight, Seam.LoadOwn(ref _lastDeliveriesInFlight) - 1); // release: as in Register
            if (s.PreviousLast == None)
            {
                _oldestLast = s.NextLast;
            }
            else
            {
                _slots[s.PreviousLast].NextLast = s.NextLast;
            }

            if (s.NextLast == None)
            {
                _newestLast = s.PreviousLast;
            }
            else
            {
                _slots[s.NextLast].PreviousLast = s.PreviousLast;
            }

            s.PreviousLast = None;
            s.NextLast = None;
        }

        s.Envelope = default;
        s.InFlight = false;
        s.Version++; // the delivery's stamp is stale from now on
        s.Previous = None;
        s.Next = _free;
        _free = slot;
        _inFlight--;
    }

    /// <summary>
    /// The wake-up's callback, on the timer's thread: nothing may escape it (an exception there ends the process), so
    /// every failure is counted and reported instead (<see cref="FailedCallbackCount"/>, <see cref="CallbackFailed"/>).
    /// </summary>
    private void OnVisibilityTimeout()
    {
        try
        {
            ExpireDue();
        }
        catch (Exception ex)
        {
            ReportCallbackFailure(ex); // the pass itself failed (the clock) before moving anything or re-arming
            RetryExpiry();
        }
    }

    /// <summary>
    /// The expiry pass failed under the lock (a clock reading, or the re-arm, which the pass catches itself, after moving its expired messages) after it had dropped its armed time: arm a
    /// retry, else the messages in flight would never time out (a receive re-arms only for a new head of an empty table).
    /// </summary>
    private void RetryExpiry()
    {
        try
        {
            using (SeamLock<Seam>.Enter(_lock))
            {
                if (_oldest != None && Seam.LoadAcquire(ref _disposed) == 0)
                {
                    long deadline = _slots[_oldest].Deadline; // already past: a wheel wake-up fires at its next advance
                    _armedFor = deadline;
                    try
                    {
                        _wakeup.Arm(deadline, VisibilityTimeout < MaxExpiryRetryDelay ? VisibilityTimeout : MaxExpiryRetryDelay);
                    }
                    catch (Exception)
                    {
                        _armedFor = long.MaxValue; // nothing armed: the next registration arms for the head (Register)
                        throw;
                    }
                }
            }
        }
        catch (Exception ex)
        {
            ReportCallbackFailure(ex); // the re-arm failed too: reported, and the pass retried on a system timer
            ArmFallbackExpiry();
        }
    }

    /// <summary>
    /// The clock's timer could not be armed (on a receive, or twice in an expiry pass): runs the expiry pass on a timer of
    /// <see cref="TimeProvider.System"/> instead (real time, created once, disposed with the queue), after a back-off of
    /// 1 ms doubling to 1 s, until an arming of the clock's timer works again. The pass still reads the queue's clock.
    /// Before (session 10), nothing retried until the next receive: with no receive, messages in flight never timed out.
    /// A failure here (the runtime's own timer: out of memory) is reported; the next receive re-arms, as before.
    /// </summary>
    private void ArmFallbackExpiry()
    {
        try
        {
            using (SeamLock<Seam>.Enter(_lock))
            {
                if (Seam.LoadAcquire(ref _disposed) != 0 || _oldest == None)
                {
                    return;
                }

                TimeSpan delay = FailureReport.NextRetry(ref _fallbackRetryTicks);
                UnflowedTimer.ArmSystemFallback(ref _fallback, static state => ((AckQueue<T>)state!).OnVisibilityTimeout(), this, delay);
            }
        }
        catch (Exception ex)
        {
            ReportCallbackFailure(ex);
        }
    }

    /// <summary>The expiry pass's system-timer fallback, once created (tests: <see cref="Dispose"/> disposes it, and nothing creates it after).</summary>
    internal ITimer? FallbackTimer
    {
        get
        {
            using (SeamLock<Seam>.Enter(_lock))
            {
                return _fallback;
            }
        }
    }

    /// <summary>Counts a failure caught on the timer's thread and raises <see cref="CallbackFailed"/> (the handler's own exceptions are swallowed).</summary>
    private void ReportCallbackFailure(Exception exception) => FailureReport.Raise(ref _failedCallbacks, CallbackFailed, this, exception);

    /// <summary>Moves every expired delivery back to the ready queue, or to the dead letters past MaxDeliveries, and re-arms the wake-up for the next head.</summary>
    private void ExpireDue()
    {
        List<Envelope>? expired = null;
        Exception? armFailure = null;
        using (SeamLock<Seam>.Enter(_lock))
        {
            _armedFor = long.MaxValue;
            long now = _time.GetTimestamp(); // may throw: nothing unlinked yet (OnVisibilityTimeout reports and retries)
            while (_oldest != None && Timestamps.IsAtOrBefore(_slots[_oldest].Deadline, now)) // wrap-safe (before session 11: <=, wrong across a wrap)
            {
                int slot = _oldest;
                (expired ??= new()).Add(_slots[slot].Envelope with { LastDelivery = _slots[slot].LastDelivery });
                Seam.Add(ref _settling, 1); // before the unlink: its move (MoveExpired) ends it
                Unlink(slot);
            }

            if (_oldest != None && Seam.LoadAcquire(ref _disposed) == 0)
            {
                long deadline = _slots[_oldest].Deadline;
                _armedFor = deadline;
                try
                {
                    _wakeup.Arm(deadline, ToTimeSpan(unchecked(deadline - now)));
                    _fallbackRetryTicks = 0; // the clock's timer works: a later failure backs off from 1 ms again
                }
                catch (Exception ex)
                {
                    // The timer failed (user code). The expired messages are already out of the table: they must still be
                    // moved below (before the bug hunt of session 10 this exception left the pass first, and they were lost,
                    // their room held for good). Reported and retried after the moves.
                    _armedFor = long.MaxValue;
                    armFailure = ex;
                }
            }
        }

        if (expired is not null)
        {
            MoveExpired(expired);
        }

        if (armFailure is not null)
        {
            ReportCallbackFailure(armFailure);
            RetryExpiry(); // else the messages still in flight would never time out
        }
    }

    /// <summary>Moves expired messages (out of the table) back to the ready queue, or to the dead letters past MaxDeliveries.</summary>
    private void MoveExpired(List<Envelope> expired)
    {
        // Every expired message is moved, whatever the dead-letter queue throws (its drop callback is user code): each
        // failure is reported and the batch goes on, so none of the others is stranded out of the table. (Before, the
        // first failure was rethrown on the timer's thread, which ends the process on a TimeProvider.System timer.)
        foreach (Envelope envelope in expired)
        {
            Seam.Add(ref _expired, 1);
            try
            {
                if (_maxDeliveries > 0 && envelope.Deliveries >= _maxDeliveries)
                {
                    MoveToDeadLetters(envelope, "VisibilityTimeout after MaxDeliveries", null);
                }
                else
                {
                    Requeue(envelope, TimeSpan.Zero);
                }
            }
            catch (Exception ex)
            {
                ReportCallbackFailure(ex); // the message is accounted: dead-lettered, or back in the ready queue
            }
            finally
            {
                EndSettling(); // raised in ExpireDue at its unlink
            }
        }
    }

    /// <summary>
    /// Hands a message that has left the table to the dead letters. Once the dead-letter queue took it in, it leaves
    /// this queue whatever that queue does with it (accepts, evicts, drops, rejects, or throws from its drop
    /// callback): counted and its room returned first, then the callback's exception, if any, propagates. When it was
    /// not taken in (the dead-letter queue is disposed, or a clock failed first) the message is not lost: it goes
    /// back to the ready queue, visible at once with its delivery count kept, and the exception propagates
    /// (<see cref="ObjectDisposedException"/> naming the dead-letter queue for a disposed one).
    /// </summary>
    private void MoveToDeadLetters(Envelope envelope, string reason, Exception? exception)
    {
        bool added;
        Exception? dropFailure;
        try
        {
            DateTimeOffset utcNow = _time.GetUtcNow();
            DateTimeOffset first = utcNow - _time.GetElapsedTime(envelope.FirstDelivery);
            DateTimeOffset last = utcNow - _time.GetElapsedTime(envelope.LastDelivery);
            added = _deadLetters!.TryAddUnlessDisposed(new DeadLetter<T>(envelope.Message, _name, reason, exception, envelope.Deliveries, first, last), out _, out dropFailure);
        }
        catch (Exception)
        {
            Requeue(envelope, TimeSpan.Zero); // a clock failed before the dead-letter queue took it: keep it here
            throw;
        }

        if (!added)
        {
            Requeue(envelope, TimeSpan.Zero); // disposed after the check in TryEnd (or an expiry): keep it here
            ThrowDeadLettersDisposed();
        }

        Seam.Add(ref _deadLettered, 1);
        Release();
        if (dropFailure is not null)
        {
            ExceptionDispatchInfo.Throw(dropFailure);
        }
    }

    [DoesNotReturn]
    private void ThrowDeadLettersDisposed() =>
        throw new ObjectDisposedException(_deadLetters!.GetType().FullName, "The dead-letter queue was disposed: the message was not moved and stays in this queue.");

    /// <summary>How a delivery ends (<see cref="TryEnd"/>): what it checks and how its room is settled.</summary>
    private enum EndKind
    {
        /// <summary>Acked: the room comes back at once.</summary>
        Ack,

        /// <summary>Nacked without a delay: back to the ready queue due at once, or past MaxDeliveries to the dead letters (checked).</summary>
        Nack,

        /// <summary>Nacked with a delay: back to the ready queue later (no room comes back), or past MaxDeliveries to the dead letters (checked).</summary>
        NackDelayed,

        /// <summary>Dead-lettered by the consumer (checked).</summary>
        DeadLetter,
    }

    /// <summary>A message with its delivery history, as it travels through the ready queue and the table.</summary>
    private readonly record struct Envelope(T Message, int Deliveries, long FirstDelivery)
    {
        public long LastDelivery { get; init; }
    }

    /// <summary>One in-flight slot; every field guarded by the lock.</summary>
    private struct Slot
    {
        public Envelope Envelope;
        public long Version;
        public long Deadline;
        public long LastDelivery;
        public int Previous;
        public int Next;
        public int PreviousLast; // the sub-FIFO of slots on their last delivery (valid while in flight on it)
        public int NextLast;
        public bool InFlight;
    }
}
