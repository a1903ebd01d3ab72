using LockFree.Backpressure;
using LockFree.Internal;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

/// <content>
/// The asynchronous slow paths (a dequeue that must wait for a due item, an enqueue that must wait for room) as pooled
/// operations (<see cref="PooledOperation{TResult}"/>) parked on hand-off waits: per-queue pools, so a parked call
/// allocates nothing whatever thread takes its result. Before (session 12) they were async methods on
/// <c>PoolingAsyncValueTaskMethodBuilder</c>, whose boxes are cached per thread (acceptance audit, gap A): a result
/// taken on another thread than the call's allocated a box per wait (160-180 B).
/// </content>
public sealed partial class DelayQueue<T>
{
    private readonly OperationPool<DequeueOperation> _dequeueOperations = new();
    private readonly OperationPool<DequeueOrFinishOperation> _dequeueOrFinishOperations = new();
    private readonly OperationPool<EnqueueOperation> _enqueueOperations = new();

    /// <summary>The waiting part of <see cref="DequeueAsync"/>: the next due item, or InvalidOperationException once completed and drained.</summary>
    private ValueTask<T> DequeueAsyncSlow(CancellationToken cancellationToken)
    {
        DequeueOperation operation = _dequeueOperations.Rent() ?? new DequeueOperation(this);
        operation.Set(cancellationToken);
        return operation.Run();
    }

    /// <summary>The next due item, waiting for it; (false, default) once the queue is completed and drained.</summary>
    private ValueTask<(bool Found, T? Item)> DequeueOrFinishAsync(CancellationToken cancellationToken)
    {
        DequeueOrFinishOperation operation = _dequeueOrFinishOperations.Rent() ?? new DequeueOrFinishOperation(this);
        operation.Set(cancellationToken);
        return operation.Run();
    }

    /// <summary>The waiting part of <see cref="EnqueueAsync"/> under <see cref="OverflowPolicy.Wait"/>.</summary>
    private ValueTask<WriteResult> EnqueueAsyncSlow(T item, TimeSpan delay, CancellationToken cancellationToken)
    {
        EnqueueOperation operation = _enqueueOperations.Rent() ?? new EnqueueOperation(this);
        operation.Set(item, delay, cancellationToken);
        return operation.Run();
    }

    /// <summary>
    /// A parked dequeue, step for step the async method it replaces: link a waiter, try to take a due item (arming the
    /// wake-up for the root when none is due), answer disposal and completion, else wait; after a wait, take an item or
    /// link again. <see cref="Step"/> is shared by the two result shapes.
    /// </summary>
    private abstract class DequeueOperationBase<TResult>(DelayQueue<T> queue) : PooledOperation<TResult>
    {
        private CancellationToken _token;
        private Waiter<Seam>? _waiter; // the hand-off waiter parked on (set before the park publishes it)

        public void Set(CancellationToken token) => _token = token;

        public ValueTask<TResult> Run() => Start();

        /// <summary>True when the dequeue is over (<paramref name="found"/> with <paramref name="item"/>, or not: completed and drained); false when parked.</summary>
        protected bool Step(bool resumed, out bool found, out T? item)
        {
            while (true)
            {
                bool taken;
                if (!resumed)
                {
                    if (Seam.IsPlanted(PlantedFault.DelayReaderTakesBeforeLinking))
                    {
                        taken = queue.TryTake(out item, armIfNotDue: true); // the planted lost wake-up (tests only; a constant false in production)
                        if (taken)
                        {
                            queue.AfterTake();
                            found = true;
                            return true;
                        }
                    }

                    Waiter<Seam> waiter = queue._readers.RentAndLink(synchronous: false, handoff: true); // link, then fence (the handshake's first half)
                    try
                    {
                        if (Seam.IsPlanted(PlantedFault.DelayReaderTakesBeforeLinking))
                        {
                            taken = false; // the planted twin took before linking (above) and does not take again
                            item = default;
                        }
                        else
                        {
                            taken = queue.TryTake(out item, armIfNotDue: true);
                        }
                    }
                    catch (Exception)
                    {
                        // The clock (or the wake-up's timer: user code) threw; nothing was taken. Before the review of
                        // 2026-11-23 the waiter stayed linked, never awaited: the next signal was spent on it and a parked
                        // reader slept beside a due item. A signal that reached it is passed on.
                        queue._readers.Abandon(waiter, forwardSignal: true);
                        throw;
                    }

                    if (taken)
                    {
                        queue._readers.Abandon(waiter, forwardSignal: true);
                        queue.AfterTake();
                        queue.PassOn();
                        found = true;
                        return true;
                    }

                    // Disposed before finished: Dispose completes the queue, so a queue empty at Dispose is both, and its
                    // readers are told it was disposed (the documented exception), not that it was completed.
                    if (Seam.LoadAcquire(ref queue._disposed) != 0) // set before Dispose wakes the linked readers, so no reader parks past it
                    {
                        queue._readers.Abandon(waiter, forwardSignal: true);
                        queue.ThrowIfDisposed();
                    }

                    if (queue._completion.Task.IsCompleted) // not _finished: set before Completion completes (s11-rev, see TryFinish)
                    {
                        queue._readers.Abandon(waiter, forwardSignal: true);
                        found = false;
                        item = default;
                        return true;
                    }

                    waiter.Arm(Timeout.InfiniteTimeSpan, _token, queue._time);
                    _waiter = waiter;
                    if (TryParkOn(waiter))
                    {
                        found = false;
                        item = default;
                        return false;
                    }
                }

                resumed = false;
                Waiter<Seam> ended = _waiter!;
                _waiter = null;
                ended.ConsumeHandoff(); // recycles the waiter; throws when cancelled

                // Signalled (an item may be due) or completed: take one, or link again and re-arm the wake-up.
                try
                {
                    taken = queue.TryTake(out item, armIfNotDue: false);
                }
                catch (Exception)
                {
                    queue._readers.SignalOne(); // the clock threw, nothing taken: the wake-up this reader consumed goes to the next one
                    throw;
                }

                if (taken)
                {
                    queue.AfterTake();
                    queue.PassOn();
                    found = true;
                    return true;
                }

                queue.ThrowIfDisposed(); // a disposed queue arms no wake-up: its pending items are left to TryDequeue
                if (queue._completion.Task.IsCompleted) // as above
                {
                    found = false;
                    return true;
                }
            }
        }

        /// <summary>Clears the fields; the derived type returns the operation to its pool.</summary>
        protected void Clear()
        {
            _token = default;
            _waiter = null;
        }
    }

    /// <summary>A parked <see cref="DequeueAsync"/>: the item, or InvalidOperationException once completed and drained.</summary>
    private sealed class DequeueOperation(DelayQueue<T> queue) : DequeueOperationBase<T>(queue)
    {
        private readonly DelayQueue<T> _queue = queue;

        protected override bool Advance(bool resumed, out T result)
        {
            if (!Step(resumed, out bool found, out T? item))
            {
                result = default!;
                return false;
            }

            result = found ? item! : throw new InvalidOperationException("The delay queue is completed and empty.");
            return true;
        }

        protected override void Release()
        {
            Clear();
            _queue._dequeueOperations.Return(this);
        }
    }

    /// <summary>A parked read of <see cref="ReadAllAsync"/>: (true, item), or (false, default) once completed and drained.</summary>
    private sealed class DequeueOrFinishOperation(DelayQueue<T> queue) : DequeueOperationBase<(bool Found, T? Item)>(queue)
    {
        private readonly DelayQueue<T> _queue = queue;

        protected override bool Advance(bool resumed, out (bool Found, T? Item) result)
        {
            bool done = Step(resumed, out bool found, out T? item);
            result = (found, item);
            return done;
        }

        protected override void Release()
        {
            Clear();
            _queue._dequeueOrFinishOperations.Return(this);
        }
    }

    /// <summary>
    /// A parked enqueue under <see cref="OverflowPolicy.Wait"/>, step for step the async method it replaces: link a
    /// waiter, recheck, wait; Completed ends it (ObjectDisposedException once disposed), a wake-up retries the write.
    /// </summary>
    private sealed class EnqueueOperation(DelayQueue<T> queue) : PooledOperation<WriteResult>
    {
        private T _item = default!;
        private TimeSpan _delay;
        private CancellationToken _token;
        private Waiter<Seam>? _waiter; // the hand-off waiter parked on (set before the park publishes it)

        public void Set(T item, TimeSpan delay, CancellationToken token)
        {
            _item = item;
            _delay = delay;
            _token = token;
        }

        public ValueTask<WriteResult> Run() => Start();

        protected override bool Advance(bool resumed, out WriteResult result)
        {
            while (true)
            {
                if (!resumed)
                {
                    Waiter<Seam> waiter = queue._writers.RentAndLink(synchronous: false, handoff: true);
                    try
                    {
                        result = queue.WriteOnce(_item, _delay, OverflowPolicy.Wait, countRejection: false); // recheck after the handshake
                    }
                    catch (Exception)
                    {
                        // The user's clock threw in the recheck (the enqueue's reading, which returns its unit with a signal
                        // that may reach this very waiter; since session 10 a waiting attempt computes no retry hint): take the
                        // waiter back, passing on a signal that reached it. Before the review of 2026-11-23 (s9-room) it
                        // stayed linked and never awaited: the next wake-up was spent on it and the writer parked behind it
                        // slept beside a free slot.
                        queue._writers.Abandon(waiter, forwardSignal: true);
                        throw;
                    }

                    if (result.Outcome != WriteOutcome.Rejected)
                    {
                        queue._writers.Abandon(waiter, forwardSignal: true);
                        return true;
                    }

                    waiter.Arm(Timeout.InfiniteTimeSpan, _token, queue._time);
                    _waiter = waiter;
                    if (TryParkOn(waiter))
                    {
                        return false;
                    }
                }

                resumed = false;
                Waiter<Seam> ended = _waiter!;
                _waiter = null;
                WaitStatus status = ended.ConsumeHandoff(); // recycles the waiter; throws when cancelled
                if (status == WaitStatus.Completed)
                {
                    queue.ThrowIfDisposed();
                    result = WriteResult.Completed;
                    return true;
                }

                result = queue.WriteOnce(_item, _delay, OverflowPolicy.Wait, countRejection: false);
                if (result.Outcome != WriteOutcome.Rejected)
                {
                    return true;
                }
            }
        }

        protected override void Release()
        {
            _item = default!;
            _token = default;
            _waiter = null;
            queue._enqueueOperations.Return(this);
        }
    }
}
