using LockFree.Backpressure;

#if LOCKFREE_COMPOSED_TESTS
namespace LockFree.Tests.Concurrency.Composed;
#else
namespace LockFree;
#endif

/// <content>
/// The waiting part of <see cref="ReceiveAsync"/> as a pooled operation (<see cref="PooledOperation{TResult}"/>), pooled
/// per queue, so a parked receive allocates nothing whatever thread takes its result. Before (session 12) it was an
/// async method on <c>PoolingAsyncValueTaskMethodBuilder</c>, whose boxes are cached per thread (acceptance audit, gap A):
/// a result taken on another thread than the call's allocated a box per receive (208 B).
/// </content>
public sealed partial class AckQueue<T>
{
    private readonly OperationPool<ReceiveOperation> _receiveOperations = new();

    /// <summary>The waiting part of <see cref="ReceiveAsync"/>: the ready queue's next due message, registered as in flight.</summary>
    private ValueTask<Delivery<T>> ReceiveAsyncSlow(CancellationToken cancellationToken)
    {
        ReceiveOperation operation = _receiveOperations.Rent() ?? new ReceiveOperation(this);
        operation.Set(cancellationToken);
        return operation.Run();
    }

    /// <summary>
    /// A parked receive: waits on the ready delay queue's own pooled dequeue, then registers the message as in flight. A
    /// disposal is reported as this queue's (not its inner delay queue's) <see cref="ObjectDisposedException"/>.
    /// </summary>
    private sealed class ReceiveOperation(AckQueue<T> queue) : PooledOperation<Delivery<T>>
    {
        private CancellationToken _token;
        private ValueTask<Envelope> _wait; // the ready queue's pending dequeue while parked

        public void Set(CancellationToken token) => _token = token;

        public ValueTask<Delivery<T>> Run() => Start();

        protected override bool Advance(bool resumed, out Delivery<T> result)
        {
            Envelope envelope;
            try
            {
                ValueTask<Envelope> wait;
                if (resumed)
                {
                    wait = _wait;
                    _wait = default;
                }
                else
                {
                    wait = queue._ready.DequeueAsync(_token);
                    if (!wait.IsCompleted)
                    {
                        _wait = wait;
                        result = default;
                        return Park(wait);
                    }
                }

                envelope = wait.GetAwaiter().GetResult(); // returns the delay queue's operation to its pool
            }
            catch (ObjectDisposedException)
            {
                ObjectDisposedException.ThrowIf(true, queue); // name this queue, not its inner delay queue
                throw;
            }

            result = queue.Register(envelope);
            return true;
        }

        protected override void Release()
        {
            _token = default;
            _wait = default;
            queue._receiveOperations.Return(this);
        }
    }
}
