using LockFree.Backpressure;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

/// <content>
/// The asynchronous slow paths (a write that must wait for room, a read that must wait for an item) as pooled operations
/// (<see cref="PooledOperation{TResult}"/>): per-buffer pools, so a parked call allocates nothing whatever thread takes
/// its result. Before (session 12) they were async methods on <c>PoolingAsyncValueTaskMethodBuilder</c>, whose boxes
/// are cached per thread (acceptance audit, gap A).
/// </content>
public sealed partial class BackpressureBuffer<T>
{
    private readonly OperationPool<WriteOperation> _writeOperations = new();
    private readonly OperationPool<ReadOperation> _readOperations = new();

    /// <summary>
    /// The waiting part of an asynchronous write under <see cref="OverflowPolicy.Wait"/>, after its first attempt was
    /// rejected: spin, then park until room, the deadline (<paramref name="timeout"/>, from the call), cancellation or
    /// completion. With <paramref name="forChannel"/> the outcomes the channel adapter reports as exceptions are thrown
    /// (see <see cref="Shaped"/>). The spin runs before an operation is rented: a write that finds room while spinning
    /// (most, when the reader keeps up) pays no rent. As in the async method it replaces, an exception faults the
    /// returned task (an <see cref="OperationCanceledException"/> cancels it) and is never thrown by the call.
    /// </summary>
    private ValueTask<WriteResult> WriteAsyncSlow(T item, TimeSpan timeout, CancellationToken cancellationToken, bool forChannel)
    {
        long start;
        try
        {
            start = _time.GetTimestamp();

            // Spin (never yield) first, for the adaptive budget of the writers' side (see AdaptiveSpin): a reader
            // that is running frees room within tens of nanoseconds, and a park costs a thread-pool hop.
            AdaptiveSpin.SpinRound spin = _writeSpin.Start(_readers);
            while (spin.Pause())
            {
                WriteResult attempt = WriteOnce(item, OverflowPolicy.Wait, countRejection: false);
                if (attempt.Outcome != WriteOutcome.Rejected)
                {
                    _writeSpin.Finish(spin, found: true);
                    return new ValueTask<WriteResult>(Shaped(attempt, forChannel));
                }
            }

            _writeSpin.Finish(spin, found: false);
        }
        catch (Exception error)
        {
            return RentWrite().Fail(error);
        }

        WriteOperation operation = RentWrite();
        operation.Set(item, timeout, cancellationToken, forChannel, start);
        return operation.Run();
    }

    private WriteOperation RentWrite() => _writeOperations.Rent() ?? new WriteOperation(this);

    /// <summary>The waiting part of an asynchronous read, after its first attempt found the buffer empty.</summary>
    private ValueTask<T> ReadAsyncSlow(CancellationToken cancellationToken) => ReadAsyncSlow(cancellationToken, forChannel: false);

    /// <summary>
    /// The channel adapter's parked read: as <see cref="ReadAsync"/>'s waiting part, except that a buffer found completed
    /// and drained throws <see cref="System.Threading.Channels.ChannelClosedException"/> (inner: the completion error; a
    /// completion by cancellation stays a cancellation) instead of <see cref="InvalidOperationException"/>, and a wait
    /// faulted with the completion error counts as "completed".
    /// </summary>
    internal ValueTask<T> ReadAsyncForChannel(CancellationToken cancellationToken) => ReadAsyncSlow(cancellationToken, forChannel: true);

    /// <summary>
    /// Waits for an item (<see cref="WaitToReadCore"/>: spin, then park) and takes it, looping when another reader took it
    /// first. The first wait runs before an operation is rented: a read whose spin finds the item pays no rent.
    /// </summary>
    private ValueTask<T> ReadAsyncSlow(CancellationToken cancellationToken, bool forChannel)
    {
        ValueTask<bool> answer;
        Waiter<Seam>? waiter;
        try
        {
            answer = WaitToReadCore(cancellationToken, out waiter);
            if (waiter is null && answer.IsCompletedSuccessfully && answer.Result && TryRead(out T? item))
            {
                return new ValueTask<T>(item);
            }
        }
        catch (Exception error)
        {
            return RentRead().Fail(error);
        }

        ReadOperation operation = RentRead();
        operation.Set(cancellationToken, forChannel, answer, waiter);
        return operation.Run();
    }

    private ReadOperation RentRead() => _readOperations.Rent() ?? new ReadOperation(this);

    /// <summary>
    /// The channel adapter's <c>WaitToWriteAsync</c>: as <see cref="WaitToWriteAsync(bool, CancellationToken)"/> with room
    /// awaited under Reject too, except that a completed buffer answers false only when it was completed without an error
    /// and faults with the completion error otherwise (a completion by cancellation cancels). A parked wait is a pooled
    /// operation on the buffer (before session 12, an async method of the adapter on <c>PoolingAsyncValueTaskMethodBuilder</c>,
    /// whose boxes are cached per thread: gap A). Throws as the buffer's method does (synchronously) before it parks.
    /// </summary>
    internal ValueTask<bool> WaitToWriteAsyncForChannel(CancellationToken cancellationToken)
    {
        ValueTask<bool> answer = WaitToWriteCore(waitUnderReject: true, cancellationToken, out Waiter<Seam>? waiter);
        if (waiter is null)
        {
            return !answer.IsCompletedSuccessfully || answer.Result ? answer
                : CompletionError is { } error ? ValueTask.FromException<bool>(error)
                : new ValueTask<bool>(false);
        }

        WaitToWriteOperation operation = _waitToWriteOperations.Rent() ?? new WaitToWriteOperation(this);
        operation.Set(waiter);
        return operation.Run();
    }

    private readonly OperationPool<WaitToWriteOperation> _waitToWriteOperations = new();

    /// <summary>
    /// A parked asynchronous write: the former async method after its spin (<see cref="WriteAsyncSlow"/>), step for step. A
    /// loop: answer TimedOut past the deadline (passing on a read's signal that woke it), link a waiter, recheck, arm the
    /// timeout slice and the token, wait; after a wait, Completed ends it, a read's signal before the deadline retries the
    /// write before paying for another handshake.
    /// </summary>
    private sealed class WriteOperation(BackpressureBuffer<T> buffer) : PooledOperation<WriteResult>
    {
        private T _item = default!;
        private TimeSpan _timeout;
        private CancellationToken _token;
        private bool _forChannel;
        private long _start;      // the user's clock at the start, for the deadline and the wait metric
        private bool _signaled;   // the last wait ended with a read's signal: room this writer owes to the next one
        private Waiter<Seam>? _waiter; // the hand-off waiter parked on (set before the park publishes it)

        public void Set(T item, TimeSpan timeout, CancellationToken token, bool forChannel, long start)
        {
            _item = item;
            _timeout = timeout;
            _token = token;
            _forChannel = forChannel;
            _start = start;
            _signaled = false;
        }

        public ValueTask<WriteResult> Run() => Start();

        public ValueTask<WriteResult> Fail(Exception error) => Faulted(error);

        protected override bool Advance(bool resumed, out WriteResult result)
        {
            if (resumed && AfterWait(out result))
            {
                return true;
            }

            while (true)
            {
                TimeSpan remaining = _timeout == Timeout.InfiniteTimeSpan
                    ? Timeout.InfiniteTimeSpan
                    : _timeout - buffer.ElapsedPassingOn(_start, _signaled);
                if (remaining != Timeout.InfiniteTimeSpan && remaining <= TimeSpan.Zero)
                {
                    result = buffer.Shaped(buffer.TimedOut(forwardSignal: _signaled), _forChannel);
                    return true;
                }

                Waiter<Seam> waiter = buffer.ParkWriter(synchronous: false);
                WriteResult recheck = buffer.RecheckLinked(_item, waiter); // recheck after the handshake
                if (recheck.Outcome != WriteOutcome.Rejected)
                {
                    buffer._writers.Abandon(waiter, forwardSignal: true);
                    buffer.RecordWaitSince(_start);
                    result = buffer.Shaped(recheck, _forChannel);
                    return true;
                }

                try
                {
                    waiter.Arm(WaitSlice(remaining), _token, buffer._time); // a slice short of the deadline times out into the loop, which parks again
                }
                catch
                {
                    // The user's clock failed to create the timeout timer: take the waiter back (passing on a read's signal
                    // that reached it first) so the exception leaves no waiter linked to swallow the next signal.
                    buffer._writers.Abandon(waiter, forwardSignal: true);
                    throw;
                }

                _waiter = waiter;
                if (TryParkOn(waiter))
                {
                    result = default;
                    return false;
                }

                if (AfterWait(out result))
                {
                    return true;
                }

                // Still full, or past the deadline: loop (it turns a passed deadline into a rejection).
            }
        }

        protected override void Release()
        {
            _item = default!;
            _token = default;
            _waiter = null;
            buffer._writeOperations.Return(this);
        }

        /// <summary>Consumes the ended wait of <see cref="_waiter"/>: true with the result when the write is over, false to loop.</summary>
        private bool AfterWait(out WriteResult result)
        {
            Waiter<Seam> waiter = _waiter!;
            _waiter = null;
            WaitStatus status = waiter.ConsumeHandoff(); // recycles the waiter; a cancelled wait throws OperationCanceledException
            _signaled = status == WaitStatus.Signaled;
            if (status == WaitStatus.Completed)
            {
                buffer.ThrowIfDisposed();
                result = buffer.Shaped(WriteResult.Completed, _forChannel);
                return true;
            }

            // Signaled before the deadline: use the room before paying for another handshake. Past the deadline
            // the loop answers TimedOut and passes the signal on (the room belongs to the next writer).
            if (_signaled && (_timeout == Timeout.InfiniteTimeSpan || buffer.ElapsedPassingOn(_start, _signaled) < _timeout))
            {
                WriteResult attempt = buffer.RetrySignaled(_item);
                if (attempt.Outcome != WriteOutcome.Rejected)
                {
                    buffer.RecordWaitSince(_start);
                    result = buffer.Shaped(attempt, _forChannel);
                    return true;
                }
            }

            result = default;
            return false;
        }
    }

    /// <summary>
    /// The channel adapter's parked <c>WaitToWriteAsync</c> (<see cref="WaitToWriteAsyncForChannel"/>): one wait on a probe
    /// waiter, answered as the adapter's async method answered it.
    /// </summary>
    private sealed class WaitToWriteOperation(BackpressureBuffer<T> buffer) : PooledOperation<bool>
    {
        private Waiter<Seam>? _waiter; // the hand-off probe waiter (set before the park publishes it)

        public void Set(Waiter<Seam> waiter) => _waiter = waiter;

        public ValueTask<bool> Run() => Start();

        protected override bool Advance(bool resumed, out bool result)
        {
            if (!resumed && TryParkOn(_waiter!))
            {
                result = false;
                return false;
            }

            Waiter<Seam> waiter = _waiter!;
            _waiter = null;
            WaitStatus status = waiter.ConsumeHandoff(); // recycles the waiter; a cancelled wait throws OperationCanceledException
            if (status == WaitStatus.Signaled)
            {
                result = true;
                return true;
            }

            // Completed: the buffer's own wait throws the writers' completion error (ObjectDisposedException once
            // disposed); the adapter's then faults with the completion error, else answers false.
            if (buffer._writers.CompletionError is { } disposed)
            {
                throw disposed;
            }

            result = buffer.CompletionError is { } error ? throw error : false;
            return true;
        }

        protected override void Release()
        {
            _waiter = null;
            buffer._waitToWriteOperations.Return(this);
        }
    }

    /// <summary>
    /// A parked asynchronous read (<see cref="ReadAsyncSlow(CancellationToken, bool)"/>): wait for an item (as
    /// <see cref="WaitToReadAsync(CancellationToken)"/>, which spins and parks), then try to take it, looping when another
    /// reader took it first.
    /// </summary>
    private sealed class ReadOperation(BackpressureBuffer<T> buffer) : PooledOperation<T>
    {
        private CancellationToken _token;
        private bool _forChannel;
        private Waiter<Seam>? _waiter; // the hand-off waiter parked on (set before the park publishes it)

        private ValueTask<bool> _answer; // the first wait's answer when it needed no park (set by ReadAsyncSlow)

        public void Set(CancellationToken token, bool forChannel, ValueTask<bool> answer, Waiter<Seam>? waiter)
        {
            _token = token;
            _forChannel = forChannel;
            _answer = answer;
            _waiter = waiter;
        }

        public ValueTask<T> Run() => Start();

        public ValueTask<T> Fail(Exception error) => Faulted(error);

        protected override bool Advance(bool resumed, out T result)
        {
            bool first = !resumed; // the first wait was started by ReadAsyncSlow: its answer or its waiter is set
            while (true)
            {
                bool more;
                if (resumed)
                {
                    resumed = false;
                    more = More();
                }
                else
                {
                    ValueTask<bool> answer;
                    Waiter<Seam>? waiter;
                    if (first)
                    {
                        first = false;
                        answer = _answer;
                        _answer = default;
                        waiter = _waiter;
                    }
                    else
                    {
                        answer = buffer.WaitToReadCore(_token, out waiter); // spins, then parks
                    }

                    if (waiter is null)
                    {
                        more = More(answer);
                    }
                    else
                    {
                        _waiter = waiter;
                        if (TryParkOn(waiter))
                        {
                            result = default!;
                            return false;
                        }

                        more = More();
                    }
                }

                if (!more)
                {
                    throw _forChannel
                        ? ChannelErrors.Closed(buffer.CompletionError)
                        : new InvalidOperationException("The buffer is completed and empty.", buffer.CompletionError);
                }

                if (buffer.TryRead(out T? item))
                {
                    result = item;
                    return true;
                }
            }
        }

        protected override void Release()
        {
            _token = default;
            _answer = default;
            _waiter = null;
            buffer._readOperations.Return(this);
        }

        /// <summary>
        /// The answer of a wait that needed no park; for the channel, a wait faulted with the completion error is
        /// "completed" (false).
        /// </summary>
        private bool More(ValueTask<bool> answer)
        {
            if (!_forChannel)
            {
                return answer.GetAwaiter().GetResult();
            }

            try
            {
                return answer.GetAwaiter().GetResult();
            }
            catch (Exception error) when (ReferenceEquals(error, buffer.CompletionError))
            {
                return false; // completed with an error and drained: reported as closed
            }
        }

        /// <summary>
        /// Consumes the ended wait of <see cref="_waiter"/>, answering as <see cref="WaitToReadAsync(CancellationToken)"/>'s
        /// value task would (true when signalled; a completion with an error throws it), with the channel's reading of
        /// the completion error as in <see cref="More(ValueTask{bool})"/>.
        /// </summary>
        private bool More()
        {
            Waiter<Seam> waiter = _waiter!;
            _waiter = null;
            WaitStatus status = waiter.ConsumeHandoff(); // recycles the waiter; a cancelled wait throws OperationCanceledException
            if (status == WaitStatus.Signaled)
            {
                return true;
            }

            if (status == WaitStatus.Completed && buffer._readers.CompletionError is { } error
                && !(_forChannel && ReferenceEquals(error, buffer.CompletionError)))
            {
                throw error; // as the waiter's own GetResult: the completion error (or ObjectDisposedException)
            }

            return false;
        }
    }
}
