using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;
using LockFree.Internal;

namespace LockFree;

// Design: a bounded ring of dead letters in arrival order under one short lock.
//
// Why a lock here, in a lock-free library: dead-lettering is the failure path, already thinned by the retries and
// their budget, and the operator side (inspect, filter, replay, purge) needs consistent snapshots and removal from
// the middle, which a lock-free ring cannot give cheaply. The lock is held only for array copies and index
// arithmetic: user code (predicates, transforms, replay targets, the drop callback) always runs outside it.
//
// Replay: snapshot under the lock; choose outside it; remove the chosen ones (by reference, those still present)
// under the lock; hand them to the target outside it, in arrival order, stopping at the first refusal; put the
// refused rest back where they were under the lock. Removing before handing over means two concurrent replays never
// deliver the same dead letter twice.
//
// Order: every entry carries its arrival number (the count of adds before it, under the lock), and the ring is kept in
// increasing arrival order: an add appends the newest; a removal (take, remove, a replay's choice) keeps the others'
// order; a put-back merges the refused entries, themselves in arrival order, with those held (the ones the predicate
// left, older or newer, and any added meanwhile, newer than all), so each goes back
// exactly where it was relative to the rest. Before (session 11) the refused ones went back at the front, ahead of
// older letters the predicate had left: the order, the oldest-age metric and DropOldest's victim all changed.
//
// Accounting: Added = Replayed + Removed + Evicted + Count when quiescent (dropped-incoming and rejected beside it).

/// <summary>
/// Where messages go after their last attempt, with their failure metadata (<see cref="DeadLetter{T}"/>): bounded,
/// with an overflow policy; inspect, filter, remove, and replay back into any queue; metrics under the
/// <c>LockFree</c> meter (count, oldest age, and counters whose rate is the dead-letter rate).
/// </summary>
/// <typeparam name="T">The message type.</typeparam>
[DebuggerDisplay("Capacity = {Capacity}, FullMode = {FullMode}")]
public sealed class DeadLetterQueue<T> : IDisposable, IDeadLetterMetricsSource
{
    private readonly object _lock = new();
    private readonly Entry[] _ring;
    private readonly Action<DeadLetter<T>, DropReason>? _itemDropped;
    private readonly TimeProvider _time;
    private int _head; // index of the oldest; under the lock
    private int _count; // under the lock (read lock-free as a snapshot)
    private long _added;
    private long _replayed;
    private long _removed;
    private long _droppedIncoming;
    private long _evicted;
    private long _rejected;
    private int _disposed;

    /// <summary>Creates a dead-letter queue with the given options.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or its time provider is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The capacity is out of range, or the full mode is undefined or <see cref="OverflowPolicy.Wait"/>.</exception>
    public DeadLetterQueue(DeadLetterQueueOptions<T> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        if (options.Capacity < 1 || options.Capacity > QueueCapacity.Max)
        {
            ThrowHelper.ThrowCapacityOutOfRange(options.Capacity);
        }

        if (!Enum.IsDefined(options.FullMode) || options.FullMode == OverflowPolicy.Wait)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.FullMode, "FullMode must be Reject, DropIncoming or DropOldest: dead-lettering never waits.");
        }

        _ring = new Entry[options.Capacity];
        FullMode = options.FullMode;
        Name = options.Name;
        _itemDropped = options.ItemDropped;
        _time = options.TimeProvider;
        if (Name is not null)
        {
            DeadLetterMetrics.Register(this);
        }
    }

    /// <summary>The most dead letters held.</summary>
    public int Capacity => _ring.Length;

    /// <summary>The dead letters held: a snapshot.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>What an add does when the queue is full.</summary>
    public OverflowPolicy FullMode { get; }

    /// <summary>The name the metrics are tagged with, or null.</summary>
    public string? Name { get; }

    /// <summary>
    /// Adds a dead letter under <see cref="FullMode"/>. Its <see cref="DeadLetter{T}.SourceName"/> and
    /// <see cref="DeadLetter{T}.Reason"/> are required and its <see cref="DeadLetter{T}.AttemptCount"/> is 0 or more, as
    /// for <see cref="TryAdd(T, string, string, Exception?, int, DateTimeOffset?, DateTimeOffset?)"/>: a refused one
    /// leaves the queue as it was.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="deadLetter"/>, its <see cref="DeadLetter{T}.SourceName"/> or its <see cref="DeadLetter{T}.Reason"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The dead letter's <see cref="DeadLetter{T}.AttemptCount"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The queue has been disposed.</exception>
    public WriteResult TryAdd(DeadLetter<T> deadLetter)
    {
        ArgumentNullException.ThrowIfNull(deadLetter);

        // The record can be built (or copied with `with`) holding anything: checked here, as the other overload checks
        // its parts (review, 2026-11-23: a null source or a negative count was held, to fail later in an operator's tool).
        ArgumentNullException.ThrowIfNull(deadLetter.SourceName, "deadLetter.SourceName");
        ArgumentNullException.ThrowIfNull(deadLetter.Reason, "deadLetter.Reason");
        ArgumentOutOfRangeException.ThrowIfNegative(deadLetter.AttemptCount, "deadLetter.AttemptCount");
        if (!TryAddUnlessDisposed(deadLetter, out WriteResult result, out Exception? dropFailure))
        {
            ObjectDisposedException.ThrowIf(true, this); // the caller still holds the refused dead letter
        }

        if (dropFailure is not null)
        {
            ExceptionDispatchInfo.Throw(dropFailure); // after the add is complete: the letter is held or counted as dropped
        }

        return result;
    }

    /// <summary>True once <see cref="Dispose"/> ran: adds are refused.</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// <see cref="TryAdd(DeadLetter{T})"/> for a source that must know what became of its message: false (nothing
    /// done) when disposed, instead of an exception that could also have come from the drop callback. An exception of
    /// <see cref="DeadLetterQueueOptions{T}.ItemDropped"/> is handed back in <paramref name="dropFailure"/>, the add
    /// being complete; one from the clock propagates before anything is done.
    /// </summary>
    internal bool TryAddUnlessDisposed(DeadLetter<T> deadLetter, out WriteResult result, out Exception? dropFailure)
    {
        dropFailure = null;
        if (Volatile.Read(ref _disposed) != 0)
        {
            result = default;
            return false;
        }

        result = AddCore(deadLetter, out DeadLetter<T>? evicted, out bool incoming);
        if (evicted is not null && _itemDropped is not null)
        {
            try
            {
                _itemDropped(evicted, incoming ? DropReason.Incoming : DropReason.Oldest);
            }
            catch (Exception ex)
            {
                dropFailure = ex;
            }
        }

        return true;
    }

    private WriteResult AddCore(DeadLetter<T> deadLetter, out DeadLetter<T>? evicted, out bool incoming)
    {
        long now = _time.GetTimestamp();
        evicted = null;
        incoming = false; // a flag, not a reference comparison: the evicted head may be this very instance, re-added
        using (InterruptDeferral.Lock(_lock))
        {
            if (_count == _ring.Length)
            {
                switch (FullMode)
                {
                    case OverflowPolicy.Reject:
                        _rejected++;
                        return WriteResult.Rejected(RejectReason.Full, Timeout.InfiniteTimeSpan);
                    case OverflowPolicy.DropIncoming:
                        _droppedIncoming++;
                        evicted = deadLetter;
                        incoming = true;
                        break;
                    default:
                        evicted = _ring[_head].Letter;
                        _ring[_head] = default;
                        _head = Next(_head);
                        Volatile.Write(ref _count, _count - 1);
                        _evicted++;
                        break;
                }
            }

            if (!incoming)
            {
                _ring[Index(_count)] = new Entry(deadLetter, now, _added); // _added: the arrival number, increasing along the ring
                Volatile.Write(ref _count, _count + 1);
                _added++;
            }
        }

        return evicted is null ? WriteResult.Accepted : incoming ? WriteResult.DroppedIncoming : WriteResult.EvictedOldest;
    }

    /// <summary>Adds a dead letter built from its parts, timed on the queue's clock when <paramref name="firstAttempt"/>/<paramref name="lastAttempt"/> are not given.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="sourceName"/> or <paramref name="reason"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="attemptCount"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The queue has been disposed.</exception>
    public WriteResult TryAdd(T message, string sourceName, string reason, Exception? exception, int attemptCount, DateTimeOffset? firstAttempt = null, DateTimeOffset? lastAttempt = null)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        ArgumentNullException.ThrowIfNull(reason);
        ArgumentOutOfRangeException.ThrowIfNegative(attemptCount);
        DateTimeOffset now = _time.GetUtcNow();
        return TryAdd(new DeadLetter<T>(message, sourceName, reason, exception, attemptCount, firstAttempt ?? now, lastAttempt ?? now));
    }

    /// <summary>Removes the oldest dead letter; false when empty.</summary>
    public bool TryTake([MaybeNullWhen(false)] out DeadLetter<T> deadLetter)
    {
        using (InterruptDeferral.Lock(_lock))
        {
            if (_count == 0)
            {
                deadLetter = null;
                return false;
            }

            deadLetter = _ring[_head].Letter;
            _ring[_head] = default;
            _head = Next(_head);
            Volatile.Write(ref _count, _count - 1);
            _removed++;
            return true;
        }
    }

    /// <summary>A snapshot of the held dead letters, oldest first, optionally filtered (the filter runs outside the lock).</summary>
    public IReadOnlyList<DeadLetter<T>> Snapshot(Func<DeadLetter<T>, bool>? filter = null)
    {
        DeadLetter<T>[] all = CopyLetters();
        return filter is null ? all : Array.FindAll(all, letter => filter(letter));
    }

    /// <summary>Removes the dead letters <paramref name="predicate"/> selects (it runs outside the lock); returns how many were removed.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="predicate"/> is null.</exception>
    public int RemoveWhere(Func<DeadLetter<T>, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        List<DeadLetter<T>> chosen = Choose(predicate);
        int removed = RemoveChosen(chosen).Count;
        using (InterruptDeferral.Lock(_lock))
        {
            _removed += removed;
        }

        return removed;
    }

    /// <summary>
    /// Replays dead letters, oldest first, into <paramref name="sink"/>, which returns whether it took each one; a
    /// taken one leaves this queue. <paramref name="predicate"/> selects which (default all). Stops at the first
    /// refusal and keeps that one and the rest where they were: the queue stays in arrival order, the letters the
    /// predicate left (older or newer) and those added meanwhile included. User code runs outside the lock. When the sink
    /// throws, the one it threw on and the rest are kept the same way and its exception propagates. Refused letters that
    /// no longer fit back (adds filled the queue meanwhile) are dropped (the oldest of the refused go): each is counted in
    /// <see cref="DeadLetterStatistics.Evicted"/>, reported to <see cref="DeadLetterQueueOptions{T}.ItemDropped"/> and
    /// counted in the result's <see cref="ReplayResult.Dropped"/> (on a sink that threw, the callback and the statistics tell).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="sink"/> is null.</exception>
    /// <exception cref="AggregateException">
    /// The sink threw, and so did <see cref="DeadLetterQueueOptions{T}.ItemDropped"/> for a letter that no longer fitted
    /// on the way back: both exceptions, the sink's first.
    /// </exception>
    public ReplayResult Replay(Func<DeadLetter<T>, bool> sink, Func<DeadLetter<T>, bool>? predicate = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        List<Entry> taken = RemoveChosen(Choose(predicate));
        int replayed = 0;
        try
        {
            while (replayed < taken.Count && sink(taken[replayed].Letter))
            {
                replayed++;
            }
        }
        catch (Exception sinkFailure)
        {
            // The rest go back whatever the sink threw. When the put-back itself throws (a letter that no longer fits
            // goes to a drop callback that throws), both surface; before (bug hunt of session 10) the put-back's
            // exception, thrown from a finally, replaced the sink's, which was lost.
            try
            {
                PutBack(taken, replayed, out _);
            }
            catch (Exception dropFailure)
            {
                throw new AggregateException("The replay's target failed, and so did the drop callback while the rest were put back.", sinkFailure, dropFailure);
            }

            throw;
        }

        int kept = PutBack(taken, replayed, out int dropped);
        return new ReplayResult(replayed, kept, dropped);
    }

    /// <summary>Replays into a bounded queue, optionally transforming each dead letter into the message to send (default: its <see cref="DeadLetter{T}.Message"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="target"/> is null.</exception>
    public ReplayResult Replay(IBoundedQueue<T> target, Func<DeadLetter<T>, bool>? predicate = null, Func<DeadLetter<T>, T>? transform = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        return Replay(letter => target.TryEnqueue(transform is null ? letter.Message : transform(letter)), predicate);
    }

    /// <summary>Replays into a delay queue, each message becoming visible after <paramref name="delay"/>; accepted or evicted-oldest writes count as taken.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="target"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative or above <see cref="DelayQueue{T}.MaxDelay"/>.</exception>
    public ReplayResult Replay(DelayQueue<T> target, TimeSpan delay, Func<DeadLetter<T>, bool>? predicate = null, Func<DeadLetter<T>, T>? transform = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        Timers.Wakeups.ValidateDelay(delay, nameof(delay));
        return Replay(letter => target.TryEnqueue(transform is null ? letter.Message : transform(letter), delay).IsAccepted, predicate);
    }

    /// <summary>A snapshot of the accounting and the oldest dead letter's age.</summary>
    public DeadLetterStatistics GetStatistics()
    {
        using (InterruptDeferral.Lock(_lock))
        {
            TimeSpan age = _count == 0 ? TimeSpan.Zero : _time.GetElapsedTime(_ring[_head].AddedAt);
            return new DeadLetterStatistics(_added, _replayed, _removed, _droppedIncoming, _evicted, _rejected, _count, age);
        }
    }

    /// <summary>
    /// Stops the metrics; adds are refused from now on (<see cref="ObjectDisposedException"/>, nothing taken). Held
    /// dead letters stay readable. An <see cref="AckQueue{T}"/> that meets a disposed dead-letter queue keeps its message.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && Name is not null)
        {
            DeadLetterMetrics.Unregister(this);
        }
    }

    private int Next(int index) => index + 1 == _ring.Length ? 0 : index + 1;

    /// <summary>The ring index of the <paramref name="offset"/>-th oldest held entry. Under the lock.</summary>
    private int Index(int offset)
    {
        int index = _head + offset;
        return index >= _ring.Length ? index - _ring.Length : index;
    }

    private DeadLetter<T>[] CopyLetters()
    {
        using (InterruptDeferral.Lock(_lock))
        {
            var letters = new DeadLetter<T>[_count];
            for (int i = 0; i < letters.Length; i++)
            {
                letters[i] = _ring[Index(i)].Letter;
            }

            return letters;
        }
    }

    private List<DeadLetter<T>> Choose(Func<DeadLetter<T>, bool>? predicate)
    {
        DeadLetter<T>[] all = CopyLetters();
        var chosen = new List<DeadLetter<T>>(all.Length);
        foreach (DeadLetter<T> letter in all)
        {
            if (predicate is null || predicate(letter))
            {
                chosen.Add(letter);
            }
        }

        return chosen;
    }

    /// <summary>Removes the chosen dead letters still held (by reference) and returns their entries, oldest first (kept for a put-back).</summary>
    private List<Entry> RemoveChosen(List<DeadLetter<T>> chosen)
    {
        var taken = new List<Entry>(chosen.Count);
        if (chosen.Count == 0)
        {
            return taken;
        }

        var wanted = new HashSet<DeadLetter<T>>(chosen, ReferenceEqualityComparer.Instance);
        using (InterruptDeferral.Lock(_lock))
        {
            int kept = 0;
            for (int i = 0; i < _count; i++)
            {
                Entry entry = _ring[Index(i)];
                if (wanted.Contains(entry.Letter))
                {
                    taken.Add(entry);
                }
                else
                {
                    _ring[Index(kept++)] = entry;
                }
            }

            for (int i = kept; i < _count; i++)
            {
                _ring[Index(i)] = default;
            }

            Volatile.Write(ref _count, kept);
        }

        return taken;
    }

    /// <summary>
    /// Counts the first <paramref name="replayed"/> as replayed and puts the rest back where they were (merged by arrival
    /// number with the letters held), as far as room allows; returns how many went back (when adds filled the queue
    /// meanwhile, the oldest of the rest do not fit: each is counted as evicted and reported to the drop callback; its
    /// first exception is rethrown once all are reported); <paramref name="dropped"/>: how many did not fit.
    /// </summary>
    private int PutBack(List<Entry> taken, int replayed, out int dropped)
    {
        List<DeadLetter<T>>? overflow = null;
        int back;
        using (InterruptDeferral.Lock(_lock))
        {
            _replayed += replayed;
            back = Math.Min(_ring.Length - _count, taken.Count - replayed);
            int firstBack = taken.Count - back; // taken[replayed, firstBack) do not fit: the oldest refused go, as DropOldest would
            dropped = firstBack - replayed;
            for (int i = firstBack - 1; i >= replayed; i--)
            {
                (overflow ??= new()).Add(taken[i].Letter);
                _evicted++;
            }

            // Merge from the back: the held entries (offsets [0, _count), increasing arrival) and taken[firstBack..] (also
            // increasing) into offsets [0, _count + back). Writing from the highest offset down never overwrites a held
            // entry not yet moved: the write offset stays at or above the next held one (by the refused still to place).
            int held = _count - 1;
            int put = taken.Count - 1;
            for (int write = _count + back - 1; put >= firstBack; write--)
            {
                if (held >= 0 && _ring[Index(held)].Arrival > taken[put].Arrival)
                {
                    _ring[Index(write)] = _ring[Index(held--)];
                }
                else
                {
                    _ring[Index(write)] = taken[put--];
                }
            }

            Volatile.Write(ref _count, _count + back);
            AssertArrivalOrder();
        }

        if (overflow is not null && _itemDropped is not null)
        {
            // Every evicted letter is reported, whatever the callback throws (before, the first exception ended the
            // loop and the rest were counted as evicted but never reported); the first exception is rethrown after.
            ExceptionDispatchInfo? failure = null;
            foreach (DeadLetter<T> letter in overflow)
            {
                try
                {
                    _itemDropped(letter, DropReason.Oldest);
                }
                catch (Exception ex)
                {
                    failure ??= ExceptionDispatchInfo.Capture(ex);
                }
            }

            failure?.Throw();
        }

        return back;
    }

    /// <summary>DEBUG: the held entries are in strictly increasing arrival order (the order every removal and put-back keeps). Under the lock.</summary>
    [Conditional("DEBUG")]
    private void AssertArrivalOrder()
    {
        for (int i = 1; i < _count; i++)
        {
            Debug.Assert(_ring[Index(i - 1)].Arrival < _ring[Index(i)].Arrival, "the dead letters are held in arrival order");
        }
    }

    /// <summary>A held dead letter, when it was added (clock timestamp), and its arrival number (the ring is in increasing arrival order).</summary>
    private readonly record struct Entry(DeadLetter<T> Letter, long AddedAt, long Arrival);
}
