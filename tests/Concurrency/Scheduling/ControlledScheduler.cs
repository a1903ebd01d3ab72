using LockFree.Internal;
using System.Text;

namespace LockFree.Tests.Concurrency.Scheduling;

// Design: a systematic concurrency tester in the style of Coyote (Deligiannis et al., "Uncovering bugs in
// distributed storage systems during testing (not in production!)", FAST 2016) and loom / CHESS (Musuvathi
// et al., "Finding and reproducing heisenbugs in concurrent programs", OSDI 2008).
//
// Execution model: each logical thread of a scenario is a real OS thread (kept in a WorkerPool across the
// iterations of one exploration), but only the thread holding the baton runs. Every access through
// TestAtomics is a scheduling point: the running thread asks the Strategy which enabled thread runs next and,
// if it is another one, releases that thread's SemaphoreSlim and waits on its own. So an iteration is a
// sequentially consistent interleaving fully determined by the strategy's choices, which is what makes a seed
// (or a choice list) replay it exactly. The handoff through a semaphore is a full fence, so the plain fields
// of the scheduler need no further synchronisation: exactly one thread touches them at a time, except during
// an abort, which takes _gate.
//
// Thread states: runnable (includes not yet started: the first handoff to a thread starts its body),
// blocked (on a ControlledEventCount), finished. A thread that calls SpinOnce waits for another thread, so
// the scheduler switches away from it (a free switch, not a preemption) to an enabled thread that is not
// itself parked in a spin when there is one, else to any other enabled thread, and tells the strategy (PCT
// demotes it). This is the fairness assumption of CHESS/Coyote for yields: spinner-to-spinner handoffs are
// not explored, so a livelock among spinners is reported only when no non-spinning thread can run.
//
// Fairness among spinners (Musuvathi & Qadeer, "Fair stateless model checking", PLDI 2008, restricted to
// spin yields): "parked in a spin" is only the thread's latest scheduling point, so a parked spinner's
// condition may have come true since. When every other enabled thread is parked, a spinner that yields
// again hands the baton only to a thread that has not run since its own previous yield, if there is one
// (the strategy still picks among those). Without this, a strategy that always takes the same option (the
// bounded search's choice 0 = the lowest thread id) let two spinners hand the baton to each other forever
// while a third, whose condition was already true, never ran: a livelock report for a program that ends
// under every fair schedule. Why it is enough: once no thread is preempted any more (the bounded search
// after its budget; a thread then runs from the handoff to its next yield, block or end), let p(i) be the
// step of the previous yield of the i-th yielder. The next yielder was picked among threads that had not run
// since p(i), so its own previous yield lies before p(i): p strictly decreases after each thread's first
// yield, which can go on only finitely long; then the starved thread is the only one left and runs. Random
// walk is fair with probability 1, and PCT's demotion of every spinner ranks the starved thread first at
// the next point where it is a candidate. What it leaves out: only the order in which parked spinners
// re-check, and only when one of them was passed over; every thread still runs, with the strategy's choice
// among those that are due.
//
// Failures: an exception in a thread body (assertions included), a data race from the RaceDetector, a
// deadlock (no runnable thread while some are blocked), a livelock (the step bound is exceeded) or a hang (a
// thread did not reach its next scheduling point within HangTimeout, e.g. a loop that bypasses the seam).
// The failing thread records the failure and starts an abort: every other started thread is released and
// throws the private ScheduleAbort at its scheduling point, so the iteration tears down without leaving threads
// behind. Every real wait has a timeout; a pool that hangs is abandoned (its threads are background threads and
// exit at their next scheduling point or idle poll).
//
// Happens-before edges for the RaceDetector: the init part (setup) happens-before every thread; every thread
// happens-before the post part (check). Setup and check run on the controlling thread, outside the scheduler.
internal sealed class ControlledScheduler
{
    [ThreadStatic]
    private static ControlledScheduler? t_current;

    [ThreadStatic]
    private static int t_thread;

    private const int TraceLength = 40;

    private readonly WorkerPool _pool;
    private readonly Action[] _bodies; // index = thread id (1-based); [0] unused
    private readonly Strategy _strategy;
    private readonly ExploreOptions _options;
    private readonly ThreadState[] _state;
    private readonly bool[] _started;
    private readonly object?[] _blockedOn;
    private readonly bool[] _parkedInSpin; // the thread's latest scheduling point was SpinOnce
    private readonly long[] _lastRan;      // step of the thread's latest scheduling point (0: not yet)
    private readonly long[] _lastSpin;     // step of the thread's latest SpinOnce (0: none yet)
    private readonly (long Step, int Thread, string Op)[] _trace = new (long, int, string)[TraceLength];
    private readonly SemaphoreSlim _done = new(0);
    private readonly object _gate = new();
    private readonly int _threadCount;
    private long _step;
    private long _virtualTimestamp = 1L << 40; // the virtual clock (Stopwatch ticks): moved only by a timed wait's timeout
    private int _live;
    private volatile bool _aborting;
    private Exception? _failure;
    private int[] _candidates;

    internal ControlledScheduler(WorkerPool pool, Action[] bodies, Strategy strategy, ExploreOptions options)
    {
        _pool = pool;
        _bodies = bodies;
        _threadCount = bodies.Length - 1;
        _strategy = strategy;
        _options = options;
        _state = new ThreadState[bodies.Length];
        _started = new bool[bodies.Length];
        _blockedOn = new object?[bodies.Length];
        _parkedInSpin = new bool[bodies.Length];
        _lastRan = new long[bodies.Length];
        _lastSpin = new long[bodies.Length];
        _candidates = new int[bodies.Length];
        Races = options.DetectRaces ? new RaceDetector(_threadCount) : null;
        Buffers = options.StoreBuffers ? new StoreBuffers(_threadCount, options.StoreBufferDrainOdds, guardMoves: options.HoldObjectsStill) : null;
    }

    private enum ThreadState
    {
        Runnable,
        Blocked,
        Finished,
    }

    /// <summary>The scheduler controlling the calling thread, or null outside a controlled run.</summary>
    internal static ControlledScheduler? Current => t_current;

    /// <summary>The calling logical thread's id (1-based) inside a controlled run.</summary>
    internal static int CurrentThread => t_thread;

    /// <summary>The global step counter of the current run (0 outside one): a clock for operation histories.</summary>
    internal static long Now => t_current?._step ?? 0;

    /// <summary>
    /// The running thread's store buffer drains, with no scheduling point: what a locked instruction does on x86, in the
    /// seam's own members (a direct store keeps TSO's store order this way) or in code outside it (the test clock's
    /// monitor), and what a return timestamp needs. Outside a controlled run, or without store buffers, nothing.
    /// </summary>
    internal static void DrainRunningThread() => t_current?.Buffers?.DrainAll(t_thread);

    /// <summary>
    /// An operation's return timestamp for a history. With store buffers on, the running thread's pending stores drain
    /// first: a store still buffered when the call returns becomes visible to other threads only later, so the
    /// operation's effect would appear after its recorded return and a linearizability check would reject correct code
    /// (a real-thread recorder fences before its return timestamp for the same reason). No scheduling point and no
    /// race-detector edge, so nothing else changes.
    /// </summary>
    /// <param name="windowFirst">
    /// With stores still buffered, a scheduling point before the drain: the other threads may run while the operation's
    /// last stores are not yet visible, as on hardware, where the call has returned and its stores drain later (a fence
    /// missing near the end of an operation has its window). The timestamp is still taken after the drain.
    /// </param>
    internal static long ReturnTime(bool windowFirst = false)
    {
        if (windowFirst && t_current is { Buffers: { } buffers } s && buffers.HasPending(t_thread))
        {
            s.SchedulingPoint("Return (stores buffered)");
        }

        DrainRunningThread();
        return Now;
    }

    internal RaceDetector? Races { get; }

    internal StoreBuffers? Buffers { get; }

    internal PlantedBug Bugs => _options.Bugs;

    internal PlantedFault Faults => _options.Faults;

    internal long Steps => _step;

    /// <summary>The run's virtual clock, in <see cref="System.Diagnostics.Stopwatch"/> ticks (see <see cref="TestAtomics.GetTimestamp"/>).</summary>
    internal long VirtualTimestamp => _virtualTimestamp;

    /// <summary>Moves the virtual clock on by <paramref name="by"/>, rounded up to whole Stopwatch ticks: a timeout that passed.</summary>
    internal void AdvanceClock(TimeSpan by) => _virtualTimestamp += StopwatchTicks(by);

    /// <summary><paramref name="span"/> in <see cref="System.Diagnostics.Stopwatch"/> ticks, rounded up.</summary>
    internal static long StopwatchTicks(TimeSpan span) =>
        (long)Math.Ceiling(span.Ticks * (double)System.Diagnostics.Stopwatch.Frequency / TimeSpan.TicksPerSecond);

    /// <summary>A choice among <paramref name="count"/> ways for the running thread, made by the strategy (replayable).</summary>
    internal int PickChoice(int count) => _strategy.PickChoice(count);

    internal Exception? Failure => _failure;

    /// <summary>Runs one iteration to completion or failure. Returns false when it hung (the pool is then unusable).</summary>
    internal bool Run()
    {
        for (int t = 1; t <= _threadCount; t++)
        {
            _state[t] = ThreadState.Runnable;
        }

        _pool.Current = this;
        int first = _strategy.PickThread(-1, Enabled(), 0);
        lock (_gate)
        {
            _started[first] = true;
            _live++;
        }

        _pool.Batons[first].Release();
        if (_done.Wait(_options.HangTimeout * 2))
        {
            _pool.Current = null;
            return true;
        }

        Fail(new TimeoutException($"hang: the iteration did not finish within {_options.HangTimeout * 2}; a thread is stuck outside the scheduling points."), 0);
        _done.Wait(TimeSpan.FromSeconds(2));
        _pool.Current = null;
        return false;
    }

    /// <summary>Body of worker <paramref name="thread"/> once it gets the baton for the first time.</summary>
    internal void RunThread(int thread)
    {
        t_current = this;
        t_thread = thread;
        try
        {
            if (_aborting)
            {
                throw new ScheduleAbort();
            }

            Races?.ThreadStart(thread);
            _bodies[thread]();
        }
        catch (ScheduleAbort)
        {
            // torn down by a failure elsewhere, or by our own failure already recorded
        }
        catch (Exception ex)
        {
            Fail(ex, thread);
        }
        finally
        {
            t_current = null;
            t_thread = 0;
            Finish(thread);
        }
    }

    /// <summary>A scheduling point before an access of kind <paramref name="op"/> by the running thread.</summary>
    internal void SchedulingPoint(string op, bool spinning = false)
    {
        int me = t_thread;
        if (_aborting)
        {
            throw new ScheduleAbort();
        }

        _step++;
        _trace[_step % TraceLength] = (_step, me, op);
        _lastRan[me] = _step;
        if (_step > _options.MaxSteps)
        {
            Fail(new LivelockException($"livelock: more than {_options.MaxSteps} steps (threads spinning: {SpinReport()})."), me);
            throw new ScheduleAbort();
        }

        Buffers?.MaybeDrain(_strategy, Enabled());

        ReadOnlySpan<int> candidates = Enabled();
        int current = me;
        _parkedInSpin[me] = spinning;
        if (spinning)
        {
            // A spinner waits for someone else: switch (freely) to a thread that is not itself parked in a spin,
            // else to another parked spinner, fairly: one that has not run since this thread's previous spin, if
            // any (see Fairness among spinners above); else keep spinning.
            _strategy.OnSpin(me);
            long previousSpin = _lastSpin[me];
            _lastSpin[me] = _step;
            int[] progress = Filter(candidates, t => !_parkedInSpin[t]);
            int[] others = Filter(candidates, t => t != me);
            if (progress.Length > 0)
            {
                candidates = progress;
                current = -1;
            }
            else
            {
                // Every enabled thread spins: what they wait for may be a store still in a buffer, and real store
                // buffers drain in bounded time. Without this a strategy that never picks the drain (bounded-preemption
                // search takes the first choice) would spin for ever on a store that was made.
                Buffers?.DrainEveryone();
                if (others.Length > 0)
                {
                    int[] due = previousSpin > 0 ? Filter(others, t => _lastRan[t] < previousSpin) : [];
                    candidates = due.Length > 0 ? due : others;
                    current = -1;
                }
            }
        }

        int next = _strategy.PickThread(current, candidates, _step);
        if (next != me)
        {
            HandOff(me, next);
        }
    }

    /// <summary>
    /// Blocks the running thread on <paramref name="waitObject"/> until <see cref="WakeAll"/>. Not itself a
    /// scheduling point before blocking, so a caller can test its condition and block in one atomic step.
    /// </summary>
    internal void Block(object waitObject)
    {
        if (_aborting)
        {
            throw new ScheduleAbort();
        }

        int me = t_thread;
        _state[me] = ThreadState.Blocked;
        _blockedOn[me] = waitObject;
        ReadOnlySpan<int> candidates = Enabled();
        if (candidates.IsEmpty)
        {
            Fail(new DeadlockException($"deadlock: no runnable thread; blocked: {BlockedReport()}."), me);
            throw new ScheduleAbort();
        }

        HandOff(me, _strategy.PickThread(-1, candidates, _step));
    }

    /// <summary>Makes every thread blocked on <paramref name="waitObject"/> runnable again.</summary>
    internal void WakeAll(object waitObject)
    {
        for (int t = 1; t <= _threadCount; t++)
        {
            if (_state[t] == ThreadState.Blocked && ReferenceEquals(_blockedOn[t], waitObject))
            {
                _state[t] = ThreadState.Runnable;
                _blockedOn[t] = null;
            }
        }
    }

    /// <summary>Records <paramref name="failure"/> (the first one wins) and tears the iteration down.</summary>
    internal void Fail(Exception failure, int thread)
    {
        lock (_gate)
        {
            _failure ??= failure;
            if (_aborting)
            {
                return;
            }

            _aborting = true;
            for (int t = 1; t <= _threadCount; t++)
            {
                if (t != thread && _started[t] && _state[t] != ThreadState.Finished)
                {
                    _pool.Batons[t].Release();
                }
            }

            if (_live == 0)
            {
                _done.Release();
            }
        }
    }

    /// <summary>The last scheduling points, oldest first, one per line.</summary>
    internal string TraceTail()
    {
        var sb = new StringBuilder();
        for (long s = Math.Max(1, _step - TraceLength + 1); s <= _step; s++)
        {
            var (step, thread, op) = _trace[s % TraceLength];
            sb.Append("    step ").Append(step).Append(": T").Append(thread).Append(' ').AppendLine(op);
        }

        return sb.ToString();
    }

    private void Finish(int thread)
    {
        lock (_gate)
        {
            _state[thread] = ThreadState.Finished;
            _live--;
            if (_aborting)
            {
                if (_live == 0)
                {
                    _done.Release();
                }

                return;
            }
        }

        Buffers?.DrainAll(thread);
        Races?.ThreadEnd(thread);
        ReadOnlySpan<int> candidates = Enabled();
        if (candidates.IsEmpty)
        {
            for (int t = 1; t <= _threadCount; t++)
            {
                if (_state[t] == ThreadState.Blocked)
                {
                    Fail(new DeadlockException($"deadlock: no runnable thread; blocked: {BlockedReport()}."), thread);
                    return;
                }
            }

            _done.Release(); // every thread finished
            return;
        }

        int next = _strategy.PickThread(-1, candidates, _step);
        Start(next);
        _pool.Batons[next].Release();
    }

    private void HandOff(int me, int next)
    {
        Start(next);
        _pool.Batons[next].Release();
        if (!_pool.Batons[me].Wait(_options.HangTimeout))
        {
            Fail(new TimeoutException($"hang: T{me} waited more than {_options.HangTimeout} for the baton."), me);
            throw new ScheduleAbort();
        }

        if (_aborting)
        {
            throw new ScheduleAbort();
        }
    }

    private void Start(int thread)
    {
        if (!_started[thread])
        {
            lock (_gate)
            {
                _started[thread] = true;
                _live++;
            }
        }
    }

    private ReadOnlySpan<int> Enabled()
    {
        int n = 0;
        for (int t = 1; t <= _threadCount; t++)
        {
            if (_state[t] == ThreadState.Runnable)
            {
                _candidates[n++] = t;
            }
        }

        return _candidates.AsSpan(0, n);
    }

    private static int[] Filter(ReadOnlySpan<int> candidates, Func<int, bool> keep)
    {
        var result = new List<int>(candidates.Length);
        foreach (int t in candidates)
        {
            if (keep(t))
            {
                result.Add(t);
            }
        }

        return [.. result];
    }

    private string BlockedReport()
    {
        var parts = new List<string>();
        for (int t = 1; t <= _threadCount; t++)
        {
            if (_state[t] == ThreadState.Blocked)
            {
                parts.Add($"T{t} on {_blockedOn[t]}");
            }
        }

        return string.Join(", ", parts);
    }

    private string SpinReport()
    {
        // The threads spinning in the trace tail, then any other enabled thread (a starved one would show here).
        var inTail = _trace.Where(e => e.Op == "SpinOnce").Select(e => e.Thread).Distinct().ToList();
        string spinning = inTail.Count == 0 ? "none" : string.Join(" ", inTail.Select(t => $"T{t}"));
        var others = new List<string>();
        for (int t = 1; t <= _threadCount; t++)
        {
            if (_state[t] == ThreadState.Runnable && !inTail.Contains(t))
            {
                others.Add($"T{t} (last ran at step {_lastRan[t]}{(_parkedInSpin[t] ? ", parked in a spin" : "")})");
            }
        }

        return others.Count == 0 ? spinning : $"{spinning}; also enabled: {string.Join(", ", others)}";
    }
}

/// <summary>Thrown into a logical thread to unwind it when its iteration is torn down; never escapes the scheduler.</summary>
internal sealed class ScheduleAbort : Exception
{
}

/// <summary>No logical thread can run while some are blocked.</summary>
public sealed class DeadlockException(string message) : Exception(message);

/// <summary>The step bound was exceeded: the threads keep running without finishing.</summary>
public sealed class LivelockException(string message) : Exception(message);

/// <summary>
/// The persistent OS threads of one exploration: worker i waits on <see cref="Batons"/>[i] and runs its body
/// in the iteration <see cref="Current"/> whenever it is released outside one.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    private readonly Thread[] _threads;
    private volatile bool _disposed;

    public WorkerPool(int threadCount)
    {
        Batons = new SemaphoreSlim[threadCount + 1];
        _threads = new Thread[threadCount + 1];
        for (int t = 1; t <= threadCount; t++)
        {
            Batons[t] = new SemaphoreSlim(0);
            int id = t;
            _threads[t] = new Thread(() => Loop(id)) { IsBackground = true, Name = $"controlled-T{id}" };
            _threads[t].Start();
        }
    }

    public SemaphoreSlim[] Batons { get; }

    public volatile ControlledScheduler? Current;

    public void Dispose() => _disposed = true;

    private void Loop(int id)
    {
        while (!_disposed)
        {
            if (!Batons[id].Wait(100))
            {
                continue;
            }

            ControlledScheduler? run = Current;
            if (run is null || _disposed)
            {
                continue;
            }

            run.RunThread(id);
        }
    }
}
