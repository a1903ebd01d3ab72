using LockFree.Backpressure;
using LockFree.Internal;

namespace LockFree.Tests.Concurrency.PlantedBugs;

// Design: planted bugs, the single-writer completion of src/LockFree/Backpressure/InWriteMark.cs as it was before and
// with one step of it wrong. tests/Concurrency/Backpressure/ForeignCompletionTests.cs shows the exploration finds each
// and passes the real mark (the third planted step, the completer's barrier, is dropped through PlantedBug).

/// <summary>
/// Planted: no mark at all, the code before session 9: the completer always takes the writer as idle and anyone may
/// finish a drained buffer. A completion between the writer's completed-check and its publish finishes the buffer empty;
/// the consumer ends; the write lands and answers Accepted, and nobody reads it.
/// </summary>
internal struct NoInWriteMark<TAtomics> : IInWriteMark
    where TAtomics : struct, IAtomics
{
    public void Enter()
    {
        // planted: the write is not announced
    }

    public void Exit()
    {
    }

    public bool WriterIdle() => true; // planted: nothing to look at

    public void SetDone()
    {
    }

    public bool IsDone() => true; // planted: every finisher trusts the drained check alone
}

/// <summary>
/// Planted: a finisher reads Done without the fence. A reader that took the last item (its head store still buffered)
/// reads Done as 0 and leaves; the writer sets Done and reads the stale head (not drained) and leaves too: nobody
/// finishes the buffer, and a drain-style consumer waits for ever.
/// </summary>
internal struct UnfencedDoneMark<TAtomics> : IInWriteMark
    where TAtomics : struct, IAtomics
{
    private InWriteMark<TAtomics> _mark;
    private long _done;

    public void Enter() => _mark.Enter();

    public void Exit() => _mark.Exit();

    public bool WriterIdle() => _mark.WriterIdle();

    public void SetDone() => TAtomics.CompareExchange(ref _done, 1, 0);

    public bool IsDone() => TAtomics.LoadAcquire(ref _done) != 0; // planted: no store-load fence before the read
}
