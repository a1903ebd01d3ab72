using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

/// <content>Blocking and asynchronous writes and reads.</content>
public sealed partial class BackpressureBuffer<T>
{
    /// <summary>Spins before a synchronous wait parks: a few microseconds, cheaper than a park when the other side is quick.</summary>
    private const int SpinsBeforePark = 20;

    /// <summary>
    /// Writes under <see cref="FullMode"/>, waiting asynchronously for room under <see cref="OverflowPolicy.Wait"/>
    /// (without a timeout). Allocation-free when it completes synchronously and in steady state when it waits.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the item was not written.</exception>
    /// <exception cref="ObjectDisposedException">The buffer has been (or is, while waiting) disposed.</exception>
    public ValueTask<WriteResult> WriteAsync(T item, CancellationToken cancellationToken = default) =>
        WriteAsyncCore(item, cancellationToken, forChannel: false);

    /// <summary>
    /// The <see cref="System.Threading.Channels.Channel{T}"/> adapter's write: as <see cref="WriteAsync(T, CancellationToken)"/>,
    /// except that a wait that ends with the buffer completed (or rejected, which Wait without a timeout never answers)
    /// faults with the adapter's exception inside the wait's own async method, so the adapter can hand that pooled wait
    /// to its caller, whose thread then consumes it (see LockFreeChannelWriter). Before (acceptance audit, 2026-11-23),
    /// the adapter awaited this write inside an async method of its own: this method's pooled box was consumed, and went
    /// back to the cache, on the pool thread that ended the wait, and a caller taking the result on another thread rented
    /// a new box (168 B) for every parked write.
    /// </summary>
    internal ValueTask<WriteResult> WriteAsyncForChannel(T item, CancellationToken cancellationToken) =>
        WriteAsyncCore(item, cancellationToken, forChannel: true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] // one copy per constant forChannel: the public path is unchanged
    private ValueTask<WriteResult> WriteAsyncCore(T item, CancellationToken cancellationToken, bool forChannel)
    {
        // The general overload without its argument checks: FullMode is valid by construction, the timeout is
        // infinite, and disposal completes the buffer, which WriteOnce answers with ObjectDisposedException.
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<WriteResult>(cancellationToken);
        }

        // The SPSC engine's inlined enqueue first, as TryWrite (a full ring or a completed buffer: the general path answers).
        SpscQueue<T>? spsc = _spsc;
        if (spsc is not null)
        {
            _writeMark.Enter(); // before the completed-check: see InWriteMark
            if (Seam.LoadAcquireReference(ref _completed) is null && spsc.TryEnqueue(item)) // acquire: pairs with the CAS in TryComplete
            {
                _writeMark.Exit(); // release: after the publish; pairs with the completer's acquire in WriterIdle
                if (_afterWrite.Read() != 0) // acquire: after the mark's clear; see "Fast paths"
                {
                    AfterWrite();
                }

                return new ValueTask<WriteResult>(WriteResult.Accepted);
            }
        }

        OverflowPolicy policy = FullMode;
        WriteResult result = WriteOnce(item, policy, countRejection: policy != OverflowPolicy.Wait);
        if (policy != OverflowPolicy.Wait || result.Outcome != WriteOutcome.Rejected)
        {
            return new ValueTask<WriteResult>(result);
        }

        return WriteAsyncSlow(item, Timeout.InfiniteTimeSpan, cancellationToken, forChannel);
    }

    /// <summary>
    /// Writes under <paramref name="policy"/> for this item; under <see cref="OverflowPolicy.Wait"/> waits at most
    /// <paramref name="timeout"/> and then answers rejected with <see cref="RejectReason.TimedOut"/> (wait, then reject).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite) or <paramref name="policy"/> is undefined.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the item was not written.</exception>
    /// <exception cref="ObjectDisposedException">The buffer has been (or is, while waiting) disposed.</exception>
    public ValueTask<WriteResult> WriteAsync(T item, OverflowPolicy policy, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ValidatePolicy(policy);
        ValidateTimeout(timeout);
        ThrowIfDisposed();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<WriteResult>(cancellationToken);
        }

        WriteResult result = WriteOnce(item, policy, countRejection: policy != OverflowPolicy.Wait);
        if (policy != OverflowPolicy.Wait || result.Outcome != WriteOutcome.Rejected)
        {
            return new ValueTask<WriteResult>(result);
        }

        return WriteAsyncSlow(item, timeout, cancellationToken, forChannel: false);
    }

    /// <summary>
    /// Writes under <see cref="FullMode"/>, blocking the calling thread for room under <see cref="OverflowPolicy.Wait"/>
    /// for at most <paramref name="timeout"/> (spin briefly, then park; no CPU is used while parked).
    /// Synchronous timeouts run on the system clock.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the item was not written.</exception>
    /// <exception cref="ObjectDisposedException">The buffer has been (or is, while waiting) disposed.</exception>
    public WriteResult Write(T item, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Write(item, FullMode, timeout, cancellationToken);

    /// <summary>As <see cref="Write(T, TimeSpan, CancellationToken)"/>, under <paramref name="policy"/> for this item.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite) or <paramref name="policy"/> is undefined.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the item was not written.</exception>
    /// <exception cref="ObjectDisposedException">The buffer has been (or is, while waiting) disposed.</exception>
    public WriteResult Write(T item, OverflowPolicy policy, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ValidatePolicy(policy);
        ValidateTimeout(timeout);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        WriteResult result = WriteOnce(item, policy, countRejection: policy != OverflowPolicy.Wait);
        if (policy != OverflowPolicy.Wait || result.Outcome != WriteOutcome.Rejected)
        {
            return result;
        }

        long start = Seam.GetTimestamp(); // the seam's clock: Stopwatch's, or a controlled run's virtual one
        var spinner = default(SpinWait);
        for (int i = 0; i < SpinsBeforePark; i++)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            result = WriteOnce(item, OverflowPolicy.Wait, countRejection: false);
            if (result.Outcome != WriteOutcome.Rejected)
            {
                return result;
            }
        }

        bool signaled = false; // the last wait ended with a read's signal: room this writer owes to the next one
        while (true)
        {
            TimeSpan remaining = Remaining(start, timeout);
            if (remaining == TimeSpan.Zero)
            {
                return TimedOut(forwardSignal: signaled);
            }

            Waiter<Seam> waiter = ParkWriter(synchronous: true);
            result = RecheckLinked(item, waiter); // recheck after the handshake
            if (result.Outcome != WriteOutcome.Rejected)
            {
                _writers.Abandon(waiter, forwardSignal: true);
                RecordWait(Stopwatch.GetElapsedTime(start, Seam.GetTimestamp()));
                return result;
            }

            TimeSpan slice = WaitSlice(remaining);
            waiter.Arm(slice, cancellationToken, _time);
            WaitStatus status = waiter.WaitSynchronously(slice); // a slice that ends short of the deadline answers TimedOut: the loop parks again
            signaled = status == WaitStatus.Signaled;
            switch (status)
            {
                case WaitStatus.Canceled:
                    throw new OperationCanceledException(cancellationToken);
                case WaitStatus.Completed:
                    ThrowIfDisposed();
                    return WriteResult.Completed;
            }

            // Signaled before the deadline: use the room before paying for another handshake. Past the deadline
            // the loop answers TimedOut and passes the signal on (the room belongs to the next writer).
            if (signaled && Remaining(start, timeout) != TimeSpan.Zero)
            {
                result = RetrySignaled(item);
                if (result.Outcome != WriteOutcome.Rejected)
                {
                    RecordWait(Stopwatch.GetElapsedTime(start, Seam.GetTimestamp()));
                    return result;
                }
            }
        }
    }

    /// <summary>
    /// Waits until the buffer may have room (true; another writer may take it first) or is completed (false).
    /// Under a policy other than <see cref="OverflowPolicy.Wait"/> a write never waits, so this answers true at once.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) =>
        WaitToWriteAsync(waitUnderReject: false, cancellationToken);

    /// <summary>
    /// As <see cref="WaitToWriteAsync(CancellationToken)"/>; with <paramref name="waitUnderReject"/> it also waits for
    /// room under <see cref="OverflowPolicy.Reject"/> (the channel adapter: a rejected write fails, so "a write may
    /// succeed" needs room).
    /// </summary>
    internal ValueTask<bool> WaitToWriteAsync(bool waitUnderReject, CancellationToken cancellationToken)
    {
        ValueTask<bool> answer = WaitToWriteCore(waitUnderReject, cancellationToken, out Waiter<Seam>? waiter);
        if (waiter is null)
        {
            return answer;
        }

        short version = waiter.Version;
        waiter.Expose(); // the hand-off wait goes to the caller (Waiter: every asynchronous park of the buffer is one)
        return new ValueTask<bool>(waiter, version);
    }

    /// <summary>
    /// <see cref="WaitToWriteAsync(bool, CancellationToken)"/> up to its park: the answer when it needs no wait
    /// (<paramref name="waiter"/> null), else the linked and armed hand-off probe waiter, which the caller exposes or
    /// awaits itself (the channel adapter's pooled wait).
    /// </summary>
    private ValueTask<bool> WaitToWriteCore(bool waitUnderReject, CancellationToken cancellationToken, out Waiter<Seam>? waiter)
    {
        waiter = null;
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        if (IsCompleted)
        {
            return Seam.LoadAcquire(ref _disposed) != 0
                ? ValueTask.FromException<bool>(new ObjectDisposedException(GetType().Name))
                : new ValueTask<bool>(false);
        }

        bool waits = FullMode == OverflowPolicy.Wait || (waitUnderReject && FullMode == OverflowPolicy.Reject);
        if (!waits || _queue.Count < _queue.Capacity)
        {
            return new ValueTask<bool>(true);
        }

        Waiter<Seam> parked = ParkWriter(synchronous: false, probe: true); // takes nothing when woken: a read's signal goes on past it
        if (IsCompleted || _queue.Count < _queue.Capacity)
        {
            // A signal that reached it went on past it too (WaiterList.SignalOne), but it still passes one on, as a
            // writer does (most likely why it must: a waiter popped before it registered leaves the count low for a
            // moment, a read in that moment asks nobody, and this recheck saw that read's room). Without it a parked
            // WriteAsync slept beside a free slot about once in 10^5-10^6 reads beside a WaitToWriteAsync loop that
            // never writes (measured: the prober test at LOCKFREE_STRESS_SCALE=300 hung in 2 of 3 runs, passes after).
            _writers.Abandon(parked, forwardSignal: true);
            return new ValueTask<bool>(!IsCompleted);
        }

        parked.Arm(Timeout.InfiniteTimeSpan, cancellationToken, _time);
        waiter = parked;
        return default;
    }

    /// <summary>
    /// Waits until an item may be available (true; another reader may take it first), or the buffer is completed
    /// and empty (false; faults with the completion error when it was completed with one).
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<bool> answer = WaitToReadCore(cancellationToken, out Waiter<Seam>? waiter);
        if (waiter is null)
        {
            return answer;
        }

        short version = waiter.Version;
        waiter.Expose(); // the hand-off wait goes to the caller (Waiter: every asynchronous park of the buffer is one)
        return new ValueTask<bool>(waiter, version);
    }

    /// <summary>
    /// <see cref="WaitToReadAsync(CancellationToken)"/> up to its park: the answer when it needs no wait (<paramref name="waiter"/>
    /// null), else the linked and armed hand-off waiter, which the caller exposes or awaits itself (the pooled read).
    /// </summary>
    private ValueTask<bool> WaitToReadCore(CancellationToken cancellationToken, out Waiter<Seam>? waiter)
    {
        waiter = null;
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        if (!_queue.IsEmpty)
        {
            return new ValueTask<bool>(true);
        }

        if (Seam.LoadAcquire(ref _finished) != 0)
        {
            return Finished();
        }

        // Spin (never yield) before parking, for the adaptive budget of the readers' side, as the asynchronous
        // write does.
        AdaptiveSpin.SpinRound spin = _readSpin.Start(_writers);
        while (spin.Pause())
        {
            if (!_queue.IsEmpty)
            {
                _readSpin.Finish(spin, found: true);
                return new ValueTask<bool>(true);
            }
        }

        _readSpin.Finish(spin, found: false);

        Waiter<Seam> parked = ParkReader(synchronous: false);
        if (!Seam.IsPlanted(PlantedFault.ReaderParksWithoutRecheck) && (!_queue.IsEmpty || Seam.LoadAcquire(ref _finished) != 0))
        {
            _readers.Abandon(parked, forwardSignal: false); // readers are woken all at once: nothing to pass on
            // Not "IsEmpty ? Finished()": another reader (or an evicting writer) may have emptied the buffer since
            // the recheck; false is only for a finished buffer.
            return !_queue.IsEmpty || Seam.LoadAcquire(ref _finished) == 0 ? new ValueTask<bool>(true) : Finished();
        }

        parked.Arm(Timeout.InfiniteTimeSpan, cancellationToken, _time);
        waiter = parked;
        return default;
    }

    /// <summary>Reads the oldest item, waiting asynchronously while the buffer is empty.</summary>
    /// <exception cref="InvalidOperationException">The buffer is completed (without an error) and empty.</exception>
    /// <exception cref="Exception">The buffer was completed with an error and is empty: that error is thrown.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        return TryRead(out T? item) ? new ValueTask<T>(item) : ReadAsyncSlow(cancellationToken);
    }

    /// <summary>Reads one item, blocking the calling thread at most <paramref name="timeout"/> while the buffer is empty.</summary>
    /// <returns>False when the timeout passed, or the buffer is completed and empty.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The buffer was disposed and holds no item (as <see cref="ReadAsync"/>; the
    /// blocking <c>Write</c> throws it too). Items left at disposal are still returned first.</exception>
    public bool TryRead([MaybeNullWhen(false)] out T item, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ValidateTimeout(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        long start = Seam.GetTimestamp(); // the seam's clock: Stopwatch's, or a controlled run's virtual one
        var spinner = default(SpinWait);
        for (int i = 0; i <= SpinsBeforePark; i++)
        {
            if (TryRead(out item))
            {
                return true;
            }

            if (Seam.LoadAcquire(ref _finished) != 0)
            {
                return FinishedRead(out item);
            }

            spinner.SpinOnce(sleep1Threshold: -1);
        }

        while (true)
        {
            TimeSpan remaining = Remaining(start, timeout);
            if (remaining == TimeSpan.Zero)
            {
                item = default;
                return false;
            }

            Waiter<Seam> waiter = ParkReader(synchronous: true);
            if (!_queue.IsEmpty || Seam.LoadAcquire(ref _finished) != 0)
            {
                _readers.Abandon(waiter, forwardSignal: false);
            }
            else
            {
                TimeSpan slice = WaitSlice(remaining);
                waiter.Arm(slice, cancellationToken, _time);
                if (waiter.WaitSynchronously(slice) == WaitStatus.Canceled) // a slice short of the deadline: the loop parks again
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }

            if (TryRead(out item))
            {
                return true;
            }

            if (Seam.LoadAcquire(ref _finished) != 0)
            {
                return FinishedRead(out item);
            }
        }
    }

    /// <summary>A blocking read found the buffer finished (completed and empty): false, or disposed: the exception ReadAsync throws.</summary>
    private bool FinishedRead([MaybeNullWhen(false)] out T item)
    {
        ThrowIfDisposed(); // before, a disposed buffer answered false here while ReadAsync threw: one rule for both
        item = default;
        return false;
    }

    /// <summary>Reads every item until the buffer is completed and empty.</summary>
    public async IAsyncEnumerable<T> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (TryRead(out T? item))
            {
                yield return item;
            }
        }
    }

    /// <summary>
    /// For the channel adapter (<paramref name="forChannel"/>), the outcomes its <c>WriteAsync</c> reports as exceptions
    /// are thrown here, inside the wait's pooled operation: <see cref="System.Threading.Channels.ChannelClosedException"/>
    /// (a completion by cancellation stays a cancellation) and the full-under-Reject error. Otherwise the result as is.
    /// </summary>
    private WriteResult Shaped(WriteResult result, bool forChannel)
    {
        if (forChannel)
        {
            switch (result.Outcome)
            {
                case WriteOutcome.Completed:
                    throw ChannelErrors.Closed(CompletionError);
                case WriteOutcome.Rejected:
                    throw ChannelErrors.FullUnderReject();
            }
        }

        return result;
    }

    /// <summary>
    /// A waiting writer's attempt right after it linked its waiter (the recheck after the handshake). With item ages the
    /// attempt reads the user's clock (the stamp); when that throws, the waiter is taken back, passing on a read's signal
    /// that reached it, before the exception leaves. Before (review of 2026-11-23), the waiter stayed linked and was never
    /// awaited: the next read's wake-up was spent on it and the writer parked behind it slept beside a free slot.
    /// </summary>
    private WriteResult RecheckLinked(T item, Waiter<Seam> waiter)
    {
        if (Seam.IsPlanted(PlantedFault.WriterParksWithoutRecheck))
        {
            return WriteResult.Rejected(RejectReason.Full, default); // the planted lost wake-up (tests only; a constant false in production)
        }

        try
        {
            return WriteOnce(item, OverflowPolicy.Wait, countRejection: false);
        }
        catch
        {
            _writers.Abandon(waiter, forwardSignal: true);
            throw;
        }
    }

    /// <summary>
    /// A writer's attempt after its wait ended with a read's signal. With item ages the attempt reads the user's clock
    /// (the stamp); when that throws, the signal is passed on before the exception leaves: the room belongs to the next
    /// parked writer. Before (review of 2026-11-23), the wake-up left with the exception and that writer slept beside the
    /// free slot.
    /// </summary>
    private WriteResult RetrySignaled(T item)
    {
        try
        {
            return WriteOnce(item, OverflowPolicy.Wait, countRejection: false);
        }
        catch
        {
            _writers.SignalOne();
            throw;
        }
    }

    /// <summary>
    /// The user's clock's elapsed time since <paramref name="start"/>, for an asynchronous writer's deadline. When the
    /// clock throws and the writer's last wait ended with a read's signal, the signal is passed on before the exception
    /// leaves: the room belongs to the next parked writer (before, it slept beside the free slot).
    /// </summary>
    private TimeSpan ElapsedPassingOn(long start, bool signaled)
    {
        try
        {
            return _time.GetElapsedTime(start);
        }
        catch
        {
            if (signaled)
            {
                _writers.SignalOne();
            }

            throw;
        }
    }

    /// <summary>
    /// Records an asynchronous write's wait after the item was written. A clock that throws here skips the sample: the
    /// write happened, and an exception would tell its caller otherwise (a retry would write the item twice). The failure
    /// is counted and reported (<see cref="ClockFailed"/>; before session 10 it was dropped without a trace).
    /// </summary>
    private void RecordWaitSince(long start)
    {
        TimeSpan waited;
        try
        {
            waited = _time.GetElapsedTime(start);
        }
        catch (Exception error)
        {
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, error); // after the write (no mark held): see the summary
            return;
        }

        RecordWait(waited);
    }

    /// <summary>
    /// Records a write's wait into the wait-time histogram, after the write happened. A <see cref="System.Diagnostics.Metrics.MeterListener"/>'s
    /// measurement callback runs inside (user code): an exception it throws is counted and reported as a handler's
    /// (<see cref="CallbackFailed"/>), never thrown into the write. Before (review s13) it left the write after its item
    /// was accepted, so the parked <c>WriteAsync</c> faulted, or the blocking <c>Write</c> threw, and a caller that
    /// retried on the exception wrote the item twice.
    /// </summary>
    private void RecordWait(TimeSpan waited)
    {
        try
        {
            BackpressureMetrics.RecordWait(this, waited);
        }
        catch (Exception error)
        {
            ReportCallbackFailure(error);
        }
    }

    private ValueTask<bool> Finished()
    {
        Exception? error = _completed?.Error;
        return error is null ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(error);
    }

    /// <summary>
    /// Answers a write whose deadline passed. A writer woken by a read's signal at or after its deadline does not
    /// use the room it was woken for, so it passes the signal on (as <see cref="WaiterList{TAtomics}.Abandon"/> does); otherwise the
    /// next parked writer would sleep beside a free slot until some later read.
    /// </summary>
    private WriteResult TimedOut(bool forwardSignal = false)
    {
        if (forwardSignal && !Seam.IsPlanted(PlantedFault.TimedOutDropsPassOn))
        {
            _writers.SignalOne();
        }

        CountRejection();
        return WriteResult.Rejected(RejectReason.TimedOut, EstimateRetryAfter());
    }

    private static TimeSpan Remaining(long start, TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return Timeout.InfiniteTimeSpan;
        }

        TimeSpan left = timeout - Stopwatch.GetElapsedTime(start, Seam.GetTimestamp());
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    /// <summary>
    /// The longest single park: <see cref="ManualResetEventSlim.Wait(TimeSpan)"/> takes at most int.MaxValue ms (~24.8
    /// days) and a timer at most 2^32-2 ms. A longer finite timeout (valid: any non-negative one is) is waited in slices;
    /// before, the whole timeout went to the event or timer, which threw ArgumentOutOfRangeException after the waiter
    /// was linked.
    /// </summary>
    private static readonly TimeSpan MaxWaitSlice = TimeSpan.FromMilliseconds(int.MaxValue);

    /// <summary>The part of <paramref name="remaining"/> one park waits: all of it, infinite included, up to <see cref="MaxWaitSlice"/>.</summary>
    private static TimeSpan WaitSlice(TimeSpan remaining) =>
        remaining == Timeout.InfiniteTimeSpan || remaining <= MaxWaitSlice ? remaining : MaxWaitSlice;

    private static void ValidateTimeout(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be non-negative or Timeout.InfiniteTimeSpan.");
        }
    }
}
