using System.Diagnostics.CodeAnalysis;

namespace LockFree.Backpressure;

// Design: the parked waiters of one condition ("an item is available" or "there is room"), and their pool.
//
// The fast paths never touch this lock: a writer that has published an item reads Count plainly and calls
// in here only when someone waits. Lost wake-ups are excluded by an asymmetric Dekker handshake: a waiter
// links itself (Count > 0), then issues Interlocked.MemoryBarrierProcessWide(), then rechecks its
// condition. The process-wide barrier forces every other thread's pending stores out, so either the
// writer's publish is visible to the recheck, or the writer's later read of Count sees the waiter. The
// expensive barrier (microseconds) is paid only by a thread about to park, which costs as much anyway; the
// hot path pays nothing (Lê et al.'s "asymmetric fences"; Linux membarrier).
//
// The lock guards only the list and the pool: it is held for a few pointer writes, never while a waiter
// completes, and never while user code runs.
internal sealed class WaiterList
{
    /// <summary>Pooled waiters kept for reuse; more are created on demand and dropped when returned past this.</summary>
    private const int PoolLimit = 64;

    private readonly object _lock = new();
    private Waiter? _head;
    private Waiter? _tail;
    private Waiter? _pool;
    private int _pooled;
    private int _count;

    /// <summary>The error a completed wait reports through <c>WaitTo*Async</c> (the buffer's completion error), if any.</summary>
    public Exception? CompletionError { get; set; }

    /// <summary>Whether any waiter is linked: a plain read for the signalling fast path (see the design note).</summary>
    public bool HasWaiters => Volatile.Read(ref _count) != 0;

    /// <summary>Takes a reset waiter from the pool (or a new one) and links it at the tail.</summary>
    public Waiter RentAndLink(bool synchronous)
    {
        Waiter waiter;
        lock (_lock)
        {
            waiter = _pool ?? new Waiter(this);
            if (_pool is not null)
            {
                _pool = waiter.Next;
                _pooled--;
            }

            waiter.Next = null;
        }

        waiter.Reset(synchronous);
        lock (_lock)
        {
            waiter.Previous = _tail;
            waiter.Next = null;
            if (_tail is null)
            {
                _head = waiter;
            }
            else
            {
                _tail.Next = waiter;
            }

            _tail = waiter;
            waiter.IsLinked = true;
            _count++;
        }

        // Full fence on every core: pairs with the signallers' plain read of Count after their publish.
        Interlocked.MemoryBarrierProcessWide();
        return waiter;
    }

    /// <summary>Removes a waiter that is still linked (cancelled, timed out, or abandoned after a successful recheck).</summary>
    public void Unlink(Waiter waiter)
    {
        lock (_lock)
        {
            if (!waiter.IsLinked)
            {
                return;
            }

            if (waiter.Previous is null)
            {
                _head = waiter.Next;
            }
            else
            {
                waiter.Previous.Next = waiter.Next;
            }

            if (waiter.Next is null)
            {
                _tail = waiter.Previous;
            }
            else
            {
                waiter.Next.Previous = waiter.Previous;
            }

            waiter.Previous = null;
            waiter.Next = null;
            waiter.IsLinked = false;
            _count--;
        }
    }

    /// <summary>Gives a finished waiter back to the pool.</summary>
    public void Return(Waiter waiter)
    {
        lock (_lock)
        {
            if (_pooled >= PoolLimit)
            {
                return;
            }

            waiter.Next = _pool;
            _pool = waiter;
            _pooled++;
        }
    }

    /// <summary>Wakes the oldest waiter that is still waiting, if any.</summary>
    public void SignalOne()
    {
        while (TryPop(out Waiter? waiter, out int generation))
        {
            if (waiter.TryFinish(WaitStatus.Signaled, generation))
            {
                return; // otherwise it was cancelled or timed out meanwhile: wake the next one
            }
        }
    }

    /// <summary>
    /// Ends the waits linked when the call starts with <paramref name="status"/> (a signal, or completion).
    /// Waiters that link meanwhile may be ended too, which is harmless: they recheck and wait again.
    /// </summary>
    public void FinishAll(WaitStatus status)
    {
        for (int budget = Volatile.Read(ref _count); budget > 0 && TryPop(out Waiter? waiter, out int generation); budget--)
        {
            waiter.TryFinish(status, generation);
        }
    }

    /// <summary>Unlinks the oldest waiter and the generation of its wait, read under the lock (so a recycled waiter is never ended by mistake).</summary>
    private bool TryPop([NotNullWhen(true)] out Waiter? waiter, out int generation)
    {
        lock (_lock)
        {
            waiter = _head;
            if (waiter is null)
            {
                generation = 0;
                return false;
            }

            _head = waiter.Next;
            if (_head is null)
            {
                _tail = null;
            }
            else
            {
                _head.Previous = null;
            }

            waiter.Next = null;
            waiter.Previous = null;
            waiter.IsLinked = false;
            _count--;
            generation = waiter.Generation;
            return true;
        }
    }
}
