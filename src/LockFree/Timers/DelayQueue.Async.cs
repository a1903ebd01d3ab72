using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Timers;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

/// <content>Asynchronous enqueue (the Wait policy), dequeue and the <see cref="IAsyncEnumerable{T}"/> reader.</content>
public sealed partial class DelayQueue<T>
{
    /// <summary>
    /// Dequeues the next due item, waiting asynchronously until one is due. No thread is blocked while it waits, and
    /// in steady state nothing is allocated (pooled waiters and operations, whatever thread takes the result). A cancelled
    /// wait leaves no trace.
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

            (bool found, item) = await DequeueOrFinishAsync(cancellationToken).ConfigureAwait(false); // a pooled operation
            if (!found)
            {
                yield break; // completed and drained
            }

            yield return item!;
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
                else if (due == long.MaxValue || Seam.LoadAcquire(ref _armedFor) != due) // MaxValue is "nothing armed": a root really due then always arms
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
