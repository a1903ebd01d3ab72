using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.WorkStealing;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>Which bug, if any, the fork-join handshake model carries.</summary>
public enum ForkJoinBug
{
    /// <summary>The handshake as WorkStealingTaskScheduler.ForkJoin implements it.</summary>
    None,

    /// <summary>The thief reads the owner's waiting flag before it publishes done (a lost wake-up).</summary>
    ThiefChecksWaitingBeforeDone,

    /// <summary>The owner checks done before it announces waiting, then blocks (a lost wake-up).</summary>
    OwnerChecksDoneBeforeWaiting,

    /// <summary>The thief publishes done before it writes the result (the owner can read a stale result).</summary>
    ResultAfterDone,

    /// <summary>The thief clears the job after publishing done (it corrupts the owner's next use of the pooled job).</summary>
    ThiefClearsJobAfterDone,
}

// Design: a model of WorkStealingTaskScheduler.ForkJoin's owner/thief handshake (WorkStealingTaskScheduler.ForkJoin.cs),
// small enough for schedule exploration. The owner's fork deque is the REAL Chase-Lev engine over TestAtomics; the job
// is one pooled object (its words in a pinned array) reused for every
// fork, as the per-thread pool reuses it; the owner's JoinEvent is a ControlledEventCount whose wait never times out,
// so a lost wake-up is a deadlock here (in the real code it would be a 1 ms stall). Owner, per fork: fill the job
// (plain), push it, notify (a full fence and a load, as NotifyWork), run "first" (a few scheduling points), pop: its own job comes back and runs here, or the deque is
// empty and the owner waits (Reset = take a ticket; exchange waiting; load done; wait) until done; then it reads the
// result and checks it, and "returns" the job to the pool. Thief: tries a few steals; a stolen job runs (reads the
// input, writes the result, plain), then exchange done, load waiting, notify. Checked: each fork ran exactly once, the
// owner read the right result, nobody hangs. Each planted variant is found: the two lost wake-ups as deadlocks, the
// stale result and the thief's late write to a reused job as data races (the race detector reports them before the
// wrong result they cause is checked).
internal sealed class ForkJoinHandshake<TAtomics>
    where TAtomics : struct, IAtomics
{
    private const int Input = 0;
    private const int Result = 1;
    private const int Done = 2;
    private const int Waiting = 3;
    private const int Runs = 4; // then one run counter per fork

    private readonly int _forks;
    private readonly int _stealAttempts;
    private readonly ForkJoinBug _bug;
    private readonly long[] _w;
    private readonly ControlledEventCount _joinEvent = new();
    private ChaseLevDeque<int, TAtomics> _deque = new(4);

    public ForkJoinHandshake(int forks, int stealAttempts, ForkJoinBug bug)
    {
        _forks = forks;
        _stealAttempts = stealAttempts;
        _bug = bug;
        _w = GC.AllocateArray<long>(Runs + forks, pinned: true);
    }

    public int Stolen { get; private set; }

    public int TakenBack { get; private set; }

    public void Owner()
    {
        for (int fork = 0; fork < _forks; fork++)
        {
            // Rent + Prepare: plain writes, published by the push's release store.
            TAtomics.StorePlain(ref _w[Input], (long)fork);
            TAtomics.StorePlain(ref _w[Result], -1L);
            TAtomics.StorePlain(ref _w[Done], 0L);
            TAtomics.StorePlain(ref _w[Waiting], 0L);
            _deque.Push(fork);
            TAtomics.FullFence(); // NotifyWork: the push before the idle-state load
            _ = TAtomics.LoadAcquire(ref _w[Runs]);

            // first(state): some work of the owner's own.
            _ = TAtomics.LoadAcquire(ref _w[Runs]);
            _ = TAtomics.LoadAcquire(ref _w[Runs]);

            if (_deque.TryPop(out int popped))
            {
                if (popped != fork)
                {
                    throw new InvalidOperationException($"fork {fork}: popped job {popped}, not its own");
                }

                Run(); // taken back: runs here, no signalling
                TakenBack++;
            }
            else
            {
                WaitUntilDone();
            }

            long result = TAtomics.LoadPlain(ref _w[Result]); // ordered after the acquire of done
            if (result != Expected(fork))
            {
                throw new InvalidOperationException($"fork {fork}: the owner read result {result}, expected {Expected(fork)}");
            }

            // Return: the job goes back to the pool; the next iteration reuses it.
        }
    }

    public void Thief()
    {
        for (int attempt = 0; attempt < _stealAttempts; attempt++)
        {
            StealResult r = _deque.TrySteal(out _);
            if (r != StealResult.Success)
            {
                continue;
            }

            Stolen++;
            if (_bug == ForkJoinBug.ResultAfterDone)
            {
                long input = TAtomics.LoadPlain(ref _w[Input]);
                TAtomics.Add(ref _w[Done], 1);
                Count(input);
                TAtomics.StorePlain(ref _w[Result], Expected(input));
                if (TAtomics.LoadAcquire(ref _w[Waiting]) != 0)
                {
                    _joinEvent.NotifyAll();
                }

                continue;
            }

            Run();
            if (_bug == ForkJoinBug.ThiefChecksWaitingBeforeDone)
            {
                bool waiting = TAtomics.LoadAcquire(ref _w[Waiting]) != 0;
                TAtomics.Add(ref _w[Done], 1);
                if (waiting)
                {
                    _joinEvent.NotifyAll();
                }

                continue;
            }

            TAtomics.Add(ref _w[Done], 1); // full fence: pairs with the owner's exchange of waiting
            if (TAtomics.LoadAcquire(ref _w[Waiting]) != 0)
            {
                _joinEvent.NotifyAll();
            }

            if (_bug == ForkJoinBug.ThiefClearsJobAfterDone)
            {
                TAtomics.StorePlain(ref _w[Input], 0L); // "returns" the job the owner may already be reusing
            }
        }
    }

    /// <summary>After the run: every fork ran exactly once.</summary>
    public void Check()
    {
        for (int fork = 0; fork < _forks; fork++)
        {
            if (_w[Runs + fork] != 1)
            {
                throw new InvalidOperationException($"fork {fork} ran {_w[Runs + fork]} times");
            }
        }
    }

    private static long Expected(long input) => (input * 10) + 7;

    private void Run()
    {
        // The body's own work: a few steps, so the other side can move while it runs.
        _ = TAtomics.LoadAcquire(ref _w[Runs]);
        _ = TAtomics.LoadAcquire(ref _w[Runs]);
        long input = TAtomics.LoadPlain(ref _w[Input]);
        Count(input);
        TAtomics.StorePlain(ref _w[Result], Expected(input));
    }

    private void Count(long input)
    {
        if (input >= 0 && input < _forks)
        {
            _w[Runs + input]++; // bookkeeping, not part of the protocol (the controlled scheduler runs one thread at a time)
        }
    }

    private void WaitUntilDone()
    {
        while (true)
        {
            if (_bug == ForkJoinBug.OwnerChecksDoneBeforeWaiting)
            {
                long early = _joinEvent.PrepareWait();
                if (TAtomics.LoadAcquire(ref _w[Done]) != 0)
                {
                    return;
                }

                TAtomics.Add(ref _w[Waiting], 1); // announced after the check: a thief in between signals nobody
                _joinEvent.CommitWait(early);
                continue;
            }

            long ticket = _joinEvent.PrepareWait(); // JoinEvent.Reset()
            TAtomics.Add(ref _w[Waiting], 1);       // full fence: pairs with the thief's exchange of done
            if (TAtomics.LoadAcquire(ref _w[Done]) != 0)
            {
                return;
            }

            _joinEvent.CommitWait(ticket);
        }
    }
}
