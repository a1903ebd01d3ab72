using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Timers;

namespace LockFree;

/// <content>Asynchronous enqueue (the Wait policy), dequeue and the <see cref="IAsyncEnumerable{T}"/> reader.</content>
public sealed partial class DelayQueue<T>
{
    /// <summary>
    /// Dequeues the next due item, waiting asynchronously until one is due. No thread is blocked while it waits, and
    /// in steady state nothing is allocated (pooled waiters and state machines). A cancelled wait leaves no trace.
    /// </summary>
    /// <exception cref="InvalidOperationException">The queue is completed (not disposed) and every item has been taken.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; no item was taken.</exception>
    /// <exception cref="ObjectDisposedException">The queue was disposed while no item was due (empty or not).</exception>
    public ValueTask<T> DequeueAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        return TryDequeue(out T? item) ? new ValueTask<T>(item) : DequeueAsyncSlow(cancellationToken);
    }

    /// <summary>
    /// Enqueues under <see cref="FullMode"/>; under <see cref="OverflowPolicy.Wait"/> waits asynchronously for room
    /// (the delay counts from when the item enters the queue). Allocation-free when it completes synchronously and in
    /// steady state when it waits.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative or above <see cref="MaxDelay"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the item was not enqueued.</exception>
    /// <exception cref="ObjectDisposedException">The queue has been disposed.</exception>
    public ValueTask<WriteResult> EnqueueAsync(T item, TimeSpan delay, CancellationToken cancellationToken = default)
    {
        ValidateDelay(delay);
        ThrowIfDisposed();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<WriteResult>(cancellationToken);
        }

        WriteResult result = WriteOnce(item, delay, FullMode, countRejection: FullMode != OverflowPolicy.Wait);
        return FullMode != OverflowPolicy.Wait || result.Outcome != WriteOutcome.Rejected
            ? new ValueTask<WriteResult>(result)
            : EnqueueAsyncSlow(item, delay, cancellationToken);
    }

    /// <summary>
    /// Reads items as they become due, waiting asynchronously between them, until the queue is completed and every
    /// item has been taken (then the sequence ends). Each item is taken once, as by <see cref="DequeueAsync"/>; several
    /// enumerations may run at once and share the items. Cancelling <paramref name="cancellationToken"/> ends the
    /// enumeration with <see cref="OperationCanceledException"/> and takes no item.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The queue was disposed while no item was due.</exception>
    public async IAsyncEnumerable<T> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (TryDequeue(out T? item))
            {
                yield return item;
                continue;
            }

            (bool found, item) = await DequeueOrFinishAsync(cancellationToken).ConfigureAwait(false);
            if (!found)
            {
                yield break; // completed and drained
            }

            yield return item!;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<T> DequeueAsyncSlow(CancellationToken cancellationToken)
    {
        (bool found, T? item) = await DequeueOrFinishAsync(cancellationToken).ConfigureAwait(false);
        return found ? item! : throw new InvalidOperationException("The delay queue is completed and empty.");
    }

    /// <summary>The next due item, waiting for it; (false, default) once the queue is completed and drained.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool Found, T? Item)> DequeueOrFinishAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Waiter waiter = _readers.RentAndLink(synchronous: false); // link, then fence (the handshake's first half)
            bool taken;
            T? item;
            try
            {
                taken = TryTake(out item, armIfNotDue: true);
            }
            catch (Exception)
            {
                // The clock (or the wake-up's timer: user code) threw; nothing was taken. Before the review of 2026-11-23
                // the waiter stayed linked, never awaited: the next signal was spent on it and a parked reader slept
                // beside a due item. A signal that reached it is passed on.
                _readers.Abandon(waiter, forwardSignal: true);
                throw;
            }

            if (taken)
            {
                _readers.Abandon(waiter, forwardSignal: true);
                AfterTake();
                PassOn();
                return (true, item);
            }

            // Disposed before finished: Dispose completes the queue, so a queue empty at Dispose is both, and its
            // readers are told it was disposed (the documented exception), not that it was completed.
            if (Volatile.Read(ref _disposed) != 0) // set before Dispose wakes the linked readers, so no reader parks past it
            {
                _readers.Abandon(waiter, forwardSignal: true);
                ThrowIfDisposed();
            }

            if (_completion.Task.IsCompleted) // not _finished: set before Completion completes (s11-rev, see TryFinish)
            {
                _readers.Abandon(waiter, forwardSignal: true);
                return (false, default);
            }

            waiter.Arm(Timeout.InfiniteTimeSpan, cancellationToken, _time);
            await new ValueTask<WaitStatus>(waiter, waiter.Version).ConfigureAwait(false); // throws when cancelled

            // Signalled (an item may be due) or completed: take one, or link again and re-arm the wake-up.
            try
            {
                taken = TryTake(out item, armIfNotDue: false);
            }
            catch (Exception)
            {
                _readers.SignalOne(); // the clock threw, nothing taken: the wake-up this reader consumed goes to the next one
                throw;
            }

            if (taken)
            {
                AfterTake();
                PassOn();
                return (true, item);
            }

            ThrowIfDisposed(); // a disposed queue arms no wake-up: its pending items are left to TryDequeue
            if (_completion.Task.IsCompleted) // as above
            {
                return (false, default);
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<WriteResult> EnqueueAsyncSlow(T item, TimeSpan delay, CancellationToken cancellationToken)
    {
        while (true)
        {
            Waiter waiter = _writers.RentAndLink(synchronous: false);
            WriteResult result;
            try
            {
                result = WriteOnce(item, delay, OverflowPolicy.Wait, countRejection: false); // recheck after the handshake
            }
            catch (Exception)
            {
                // The user's clock threw in the recheck (the enqueue's reading, which returns its unit with a signal that
                // may reach this very waiter; since session 10 a waiting attempt computes no retry hint): take the waiter back, passing on a
                // signal that reached it. Before the review of 2026-11-23 (s9-room) it stayed linked and never awaited:
                // the next wake-up was spent on it and the writer parked behind it slept beside a free slot.
                _writers.Abandon(waiter, forwardSignal: true);
                throw;
            }

            if (result.Outcome != WriteOutcome.Rejected)
            {
                _writers.Abandon(waiter, forwardSignal: true);
                return result;
            }

            waiter.Arm(Timeout.InfiniteTimeSpan, cancellationToken, _time);
            WaitStatus status = await new ValueTask<WaitStatus>(waiter, waiter.Version).ConfigureAwait(false);
            if (status == WaitStatus.Completed)
            {
                ThrowIfDisposed();
                return WriteResult.Completed;
            }

            result = WriteOnce(item, delay, OverflowPolicy.Wait, countRejection: false);
            if (result.Outcome != WriteOutcome.Rejected)
            {
                return result;
            }
        }
    }

    /// <summary>
    /// After a parked reader took an item, for the readers still parked (one wake-up, several items): when the new
    /// root is due, wake one (it takes it and passes on in turn); when it is not, arm the wake-up for it, so no reader
    /// is woken just to find nothing due. An item arriving during the arming wakes one to re-evaluate.
    /// </summary>
    private void PassOn()
    {
        if (!_readers.HasWaiters) // fences first: a reader linking later rechecks by itself
        {
            return;
        }

        bool signal = false;
        Exception? clockFailure = null;
        _core.Enter();
        try
        {
            _core.DrainInbox();
            if (_core.HeapCount > 0)
            {
                long now = _time.GetTimestamp();
                long due = _core.PeekDue;
                if (due == Timestamps.DueNow || Timestamps.IsAtOrBefore(due, now)) // wrap-safe
                {
                    signal = true;
                }
                else if (due == long.MaxValue || Volatile.Read(ref _armedFor) != due) // MaxValue is "nothing armed": a root really due then always arms
                {
                    ArmWakeup(due, unchecked(due - now));
                    signal = !_core.InboxIsEmpty; // the handshake's recheck: a producer may have judged against the old time
                }
            }
        }
        catch (Exception error)
        {
            // The clock (or the wake-up's timer) threw after this reader's take. Never thrown into that reader: its item is
            // taken (before the review of 2026-11-23 it was lost with the exception). A parked reader is woken instead;
            // it judges the next item itself (and meets the failure, if it lasts, with nothing taken). Counted and
            // reported below, outside the lock (before session 10 it was dropped without a trace).
            signal = true;
            clockFailure = error;
        }
        finally
        {
            _core.Exit();
        }

        if (signal)
        {
            _readers.SignalOne();
        }

        if (clockFailure is not null)
        {
            FailureReport.Raise(ref _clockFailures, ClockFailed, this, clockFailure); // user code: after the lock and the wake-up
        }
    }
}
