using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using LockFree.Internal;

namespace LockFree.Backpressure;

// Design: a hand-written async state machine on a pooled object, for the slow paths that wait (the buffer's parked
// WriteAsync and ReadAsync, the channel adapter's ReadAsync). Before (session 12) these were async methods on
// PoolingAsyncValueTaskMethodBuilder, whose boxes are cached per thread: a box rented by the calling thread went back
// to the cache of the thread that took the result (in an await loop, whichever pool thread ran the continuation), so
// the calling thread rented a new one now and then (0 to a few KB per 100,000 items; one box per wait when the result
// is always taken on another thread). An operation here comes from its owner's OperationPool and goes back there when
// its result is taken, whatever the thread: a steady stream of waits allocates nothing.
//
// What the async method did, kept: the operation runs on the caller's thread until it must wait (Start), and, as the
// builder's Start, an AsyncLocal or SynchronizationContext set by code its first steps reach (a retry's action) does not
// leak into the caller (Start puts the caller's back; review s12-rev: it leaked before); a wait that
// is already complete goes on inline (as an await of a completed awaiter); an exception, before or after a wait, faults
// the returned task (an OperationCanceledException cancels it: ManualResetValueTaskSourceCore reports it as canceled, as
// the builder's box does) and is never thrown by the call itself; a result reached without waiting is returned as a
// plain value (no source). The steps after a wait run under the ExecutionContext captured when the operation parked
// (the builder's flow: user code they reach, a TimeProvider or a metrics listener, sees the caller's AsyncLocals), on
// the thread that ended the wait (the waits are awaited with ConfigureAwait(false)), and the caller's continuation is
// invoked inline when the operation completes, honouring the contexts the caller's await captured (the core's flags).
//
// Thread roles: one logical thread of control at a time. Advance runs on the caller's thread, then on the thread that
// ended each wait; the registration of the continuation hands the object over (its CAS publishes the fields written
// before it), and the code that registered touches nothing after it.

/// <summary>A pooled asynchronous operation presented as a <see cref="ValueTask{TResult}"/>; see the design note.</summary>
/// <typeparam name="TResult">The operation's result.</typeparam>
internal abstract class PooledOperation<TResult> : IValueTaskSource<TResult>
{
    private static readonly ContextCallback ResumeInContext = static state => ((PooledOperation<TResult>)state!).Resume();

    private readonly Action _waitCompleted; // one delegate per pooled instance (Park), not per wait
    private readonly bool _blockingReadWaits; // a read of the result before completion blocks until it completes (see GetResult)
    private ManualResetValueTaskSourceCore<TResult> _core; // mutable struct: never copy. Continuations inline, as the builder's box
    private ExecutionContext? _context; // captured when the operation parks; the steps after the wait run in it

    /// <summary>Creates an operation; the derived type pools it.</summary>
    /// <param name="blockingReadWaits">
    /// Whether a read of the result before the operation completed (<c>.Result</c>, <c>GetAwaiter().GetResult()</c> on the
    /// pending <see cref="ValueTask{TResult}"/>) blocks the reader until it completes, as a <see cref="Task{TResult}"/>-backed
    /// value task does, instead of throwing <see cref="InvalidOperationException"/>. For a drop-in replacement of a BCL API
    /// whose value tasks are <see cref="Task{TResult}"/>-backed (the rate limiter's queued leases).
    /// </param>
    protected PooledOperation(bool blockingReadWaits = false)
    {
        _waitCompleted = OnWaitCompleted;
        _blockingReadWaits = blockingReadWaits;
    }

    /// <summary>
    /// Runs the operation on the calling thread until it completes or parks: a value when it completed without parking
    /// (the operation is released at once), else this source (pending, or faulted by an exception of the first steps).
    /// </summary>
    protected ValueTask<TResult> Start()
    {
        short version = _core.Version;

        // As the builder's Start: the code the first steps reach (a retry's action, a user's clock) runs on the caller's
        // thread, and an AsyncLocal or SynchronizationContext it sets must not leak into the caller (review s12-rev: it
        // did). Both are thread-static reads, no allocation, unless flow is suppressed (see CaptureSuppressed).
        ExecutionContext? callerContext = ExecutionContext.Capture();
        bool suppressed = callerContext is null && CaptureSuppressed(out callerContext);
        SynchronizationContext? callerSync = SynchronizationContext.Current;
        TResult result;
        try
        {
            if (!Advance(resumed: false, out result))
            {
                return new ValueTask<TResult>(this, version);
            }
        }
        catch (Exception error)
        {
            _core.SetException(error); // as the builder: the call returns a faulted (or canceled) task, it does not throw
            return new ValueTask<TResult>(this, version);
        }
        finally
        {
            RestoreCallerContexts(callerContext, suppressed, callerSync); // touches only the thread, never this operation (it may be another's by now)
        }

        Release();
        return new ValueTask<TResult>(result);
    }

    /// <summary>
    /// The caller's context when its flow is suppressed (<see cref="ExecutionContext.Capture"/> answers null then): flow
    /// restored for the capture and suppressed again, as the caller had it (its own <see cref="AsyncFlowControl"/> still
    /// undoes it). The builder's Start saves and restores the thread's context whether or not flow is suppressed; before
    /// (review s13) an AsyncLocal set by the first steps under suppressed flow leaked into the caller
    /// (PooledOperationSuppressedFlowTests). Allocates a context copy or two, on this rare path only.
    /// </summary>
    private static bool CaptureSuppressed([NotNullWhen(true)] out ExecutionContext? callerContext)
    {
        callerContext = null;
        if (!ExecutionContext.IsFlowSuppressed())
        {
            return false;
        }

        ExecutionContext.RestoreFlow();
        callerContext = ExecutionContext.Capture()!;
        ExecutionContext.SuppressFlow(); // the AsyncFlowControl is not needed: the caller's undoes this suppression
        return true;
    }

    /// <summary>Puts back the caller's ExecutionContext (and its suppressed flow) and SynchronizationContext when the first steps changed them.</summary>
    private static void RestoreCallerContexts(ExecutionContext? callerContext, bool suppressed, SynchronizationContext? callerSync)
    {
        if (suppressed)
        {
            // Whether the steps changed it cannot be read under suppressed flow: put it back in any case (the restored
            // copy flows, so suppressing it again cannot throw).
            ExecutionContext.Restore(callerContext!);
            ExecutionContext.SuppressFlow();
        }
        else if (callerContext is not null && !ReferenceEquals(ExecutionContext.Capture(), callerContext))
        {
            ExecutionContext.Restore(callerContext);
        }

        if (!ReferenceEquals(SynchronizationContext.Current, callerSync))
        {
            SynchronizationContext.SetSynchronizationContext(callerSync);
        }
    }

    /// <summary>An operation that failed before it started: the task is faulted (canceled by an <see cref="OperationCanceledException"/>).</summary>
    protected ValueTask<TResult> Faulted(Exception error)
    {
        short version = _core.Version;
        _core.SetException(error);
        return new ValueTask<TResult>(this, version);
    }

    /// <summary>
    /// Runs the operation's next steps: from its start (<paramref name="resumed"/> false) or after the wait it parked on.
    /// True with the result when it completed; false when it parked (<see cref="TryParkOn{TAtomics}"/> or a Park, the last thing it
    /// did).
    /// Throws to fault the operation.
    /// </summary>
    protected abstract bool Advance(bool resumed, out TResult result);

    /// <summary>Clears the operation's fields (so the pool holds no item, token or owner state) and returns it to its pool.</summary>
    protected abstract void Release();

    /// <summary>
    /// Parks on a linked and armed hand-off <paramref name="waiter"/> (see <see cref="Waiter{TAtomics}"/>): true when the rest
    /// of the operation became the waiter's continuation (the caller returns false from <see cref="Advance"/> and touches
    /// nothing after); false when the wait already ended: the caller consumes it at once
    /// (<see cref="Waiter{TAtomics}.ConsumeHandoff"/>). It never allocates (an await of the waiter's value task would
    /// register on its core, which queues a pool work item when the wait ended just before the registration).
    /// </summary>
    /// <typeparam name="TAtomics">The waiter's atomics seam.</typeparam>
    protected bool TryParkOn<TAtomics>(Waiter<TAtomics> waiter)
        where TAtomics : struct, IAtomics
    {
        _context = ExecutionContext.Capture(); // before the registration publishes it
        if (waiter.TryAwait(WaiterCompleted, this))
        {
            return true;
        }

        _context = null;
        return false;
    }

    /// <summary>
    /// Parks on <paramref name="wait"/>, a pending value task (another pooled operation's, or a user's; the caller keeps
    /// it, to consume it when resumed): the rest of the operation becomes its continuation, without context. Returns false, for
    /// <see cref="Advance"/> to return; the caller touches nothing after it. Unlike <see cref="TryParkOn{TAtomics}"/>, a wait that
    /// ends just before the registration makes the core queue a pool work item (an allocation, rare: the window is the
    /// few instructions after the caller's completion check).
    /// </summary>
    protected bool Park<TWait>(ValueTask<TWait> wait)
    {
        _context = ExecutionContext.Capture(); // before the registration publishes it
        wait.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_waitCompleted); // a source-backed wait: no allocation
        return false;
    }

    /// <summary>As <see cref="Park{TWait}(ValueTask{TWait})"/>, on a pending task (a registration on a task allocates nothing).</summary>
    protected bool Park(Task wait)
    {
        _context = ExecutionContext.Capture(); // before the registration publishes it
        wait.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_waitCompleted);
        return false;
    }

    /// <summary>
    /// Before parking on a wait the operation owns itself (a retry's backoff: its own timer and token registration, no
    /// task): captures the ExecutionContext the steps after the wait run in, as <see cref="Park(Task)"/> does. Call it
    /// before the step that publishes the park (after it, the wait's ender may resume the operation at once); when the
    /// wait turns out to have ended already, <see cref="AbandonOwnPark"/> and go on inline.
    /// </summary>
    protected void PrepareOwnPark() => _context = ExecutionContext.Capture();

    /// <summary>The own wait ended before the operation parked on it: it goes on inline, in its own context.</summary>
    protected void AbandonOwnPark() => _context = null;

    /// <summary>The ender of a wait the operation owns (see <see cref="PrepareOwnPark"/>): runs its next steps on this thread, in the captured context.</summary>
    protected void ResumeOwnPark() => OnWaitCompleted();

    private static readonly Action<object?> WaiterCompleted = static state => ((PooledOperation<TResult>)state!).OnWaitCompleted();

    /// <inheritdoc/>
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    /// <inheritdoc/>
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>
    /// Takes the result once, then resets the operation and returns it to its pool (on whatever thread this runs). A read
    /// before completion throws, or with <c>blockingReadWaits</c> blocks until completion (a misuse of a value task that a
    /// <see cref="Task{TResult}"/>-backed one tolerates); a second read finds the token stale and throws, for the misuser
    /// only: the operation it read is pooled again, maybe another caller's by then, and is left alone.
    /// </summary>
    public TResult GetResult(short token)
    {
        if (_core.GetStatus(token) == ValueTaskSourceStatus.Pending) // validates the token first
        {
            if (!_blockingReadWaits)
            {
                throw new InvalidOperationException("The operation has not completed: await the ValueTask instead of reading its result.");
            }

            WaitForCompletion(token);
        }

        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset(); // the old token is stale from here on
            Release();
        }
    }

    /// <summary>
    /// Blocks until the operation completes: the reader's own continuation sets an event (created here: this misuse path
    /// alone allocates). The caller holds the only reference to the pending value task and reads it instead of awaiting
    /// it, so no other continuation is registered (a caller that does both gets the core's InvalidOperationException). The
    /// event is not disposed: its Set may still be returning when the Wait does.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WaitForCompletion(short token)
    {
        var completed = new ManualResetEventSlim(false);
        _core.OnCompleted(static state => ((ManualResetEventSlim)state!).Set(), completed, token, ValueTaskSourceOnCompletedFlags.None);
        completed.Wait();
    }

    private void OnWaitCompleted()
    {
        ExecutionContext? context = _context;
        _context = null;
        if (context is null)
        {
            Resume();
        }
        else
        {
            ExecutionContext.Run(context, ResumeInContext, this); // restores the pool thread's context after
        }
    }

    private void Resume()
    {
        TResult result;
        try
        {
            if (!Advance(resumed: true, out result))
            {
                return; // parked again
            }
        }
        catch (Exception error)
        {
            _core.SetException(error);
            return;
        }

        _core.SetResult(result);
    }
}
