using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Timers;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>Thrown when a timer-wheel history is not linearizable or its bookkeeping is off.</summary>
public sealed class TimerWheelCheckException(string message) : Exception(message);

/// <summary>
/// Linearizability of <see cref="TimerWheelEngine{TAtomics}"/> over the test atomics against <see cref="TimerWheelSpec"/>,
/// explored under the controlled scheduler with <see cref="CiStrategies.Standard"/>: a driver advancing one tick at a time
/// while other threads schedule (dueIn 0, 1 tick, or far beyond the scenario) and cancel timers, queued and linked ones,
/// their own and the setup's, some twice and some after they fired (stale handles, whose nodes a later schedule may
/// reuse). Every callback is a Fire operation of the history; a post part advances past every due tick, cancels every
/// timer again (all stale but the far ones) and schedules and cancels a fresh timer. Planted bugs: a Cancel answering from
/// its first read of the state word (check-then-act; the engine itself intact), found as a non-linearizable history by
/// every strategy; the split compare-and-swap (<see cref="PlantedBug.SplitCompareExchange"/>: Cancel and the driver can
/// both win a timer), found as a non-linearizable history by the randomized strategies and as a livelock by the
/// exhaustive one.
/// </summary>
public sealed class TimerWheelLinearizabilityTests(ITestOutputHelper output)
{
    private const int Budget = 300;
    private const int PlantedBudget = 1000;

    /// <summary>Far: beyond every advance of a scenario, so the timer never fires (only a Cancel ends it).</summary>
    private const long Far = 1000;

    private static readonly WheelScenario[] Scenarios =
    [
        // Cancels race the expiry of queued (#2, due 1) and linked (#0, #1, due 2) timers; #0 is cancelled twice; a
        // canceller's own timers are scheduled concurrently with the advances and cancelled, or left to fire.
        new("cancel races expiry", Setup: [S(0, 1), S(1, 1), A(0), S(2, 0), S(3, Far)],
            Driver: [1, 2, 3], Threads: [[C(0), C(2), S(4, 0), C(4), C(3)], [C(0), C(1), S(5, 1), C(2), C(5)]]),

        // Schedules race the advances that publish the tick their due time is computed from; stale cancels after firing,
        // and node reuse (a schedule after a timer was freed) under a stale handle.
        new("schedule races advance", Setup: [S(0, 0)],
            Driver: [1, 2, 3], Threads: [[S(1, 0), S(2, 1), C(1), C(0)], [S(3, 0), C(3), S(4, Far), C(0), C(4)]]),

        // Cross-thread cancels: each thread's second schedule gets it a lane, so a cancel of a linked timer sends its notice
        // through the canceller's lane; a thread may read the other's handle before it is stored (a default handle: false).
        new("cross-thread cancels on lanes", Setup: [],
            Driver: [1, 2, 3], Threads: [[S(0, 1), S(1, 0), S(2, Far), C(3), C(1)], [S(3, 1), S(4, 0), C(0), C(2), C(4)]]),
    ];

    /// <summary>The planted bugs' scenario: three timers due at tick 1, still queued when the driver's advance to 1 takes them in and fires them, against one thread cancelling each (nothing else pushes: fewer ways for a split CAS to end in a livelock).</summary>
    private static readonly WheelScenario PlantedScenario =
        new("cancel vs expiry", Setup: [S(0, 0), S(1, 0), S(2, 0)], Driver: [1], Threads: [[C(0), C(1), C(2)]]);

    [Fact]
    public void Engine_ControlledSchedules_AreLinearizable()
    {
        var coverage = new Coverage();
        foreach (WheelScenario scenario in (WheelScenario[])[.. Scenarios, PlantedScenario])
        {
            foreach (Func<Strategy> make in CiStrategies.Standard(83))
            {
                ExplorationResult r = Explore(scenario, make(), ExplorationBudget.Schedules(Budget), PlantedBug.None, coverage: coverage);
                output.WriteLine($"{scenario.Name}: {r.Strategy}: {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
            }
        }

        // The races the spec is about did happen: cancels lost to a fire and won against a due timer within an advance, and
        // schedules whose tick read an advance overtook (one spanning a whole advance).
        output.WriteLine($"coverage: {coverage}");
        Assert.True(coverage.CancelsLostToFire > 0 && coverage.CancelsWonDuringAdvance > 0 && coverage.SchedulesSpanningAdvance > 0, coverage.ToString());
    }

    [Fact]
    public void Planted_CancelAnsweringFromItsFirstRead_IsFoundByEveryStrategy()
    {
        // Check-then-act: Cancel reads the state word, and when it names a pending timer answers true whatever its CAS
        // then does. The engine stays intact (the CAS is the real one), so only the answer is wrong: a timer that fired
        // after the read is reported cancelled. Only the linearizability check sees it (no count changes).
        var found = new List<string>();
        foreach (Func<Strategy> make in CiStrategies.Standard(83))
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(PlantedScenario, strategy, PlantedBudget, PlantedBug.None, staleAnswer: true));
            Assert.IsType<TimerWheelCheckException>(failure.InnerException);
            Assert.StartsWith("not linearizable", failure.InnerException!.Message, StringComparison.Ordinal);
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1}");
            if (found.Count == 1)
            {
                output.WriteLine(failure.Message);
            }
        }

        output.WriteLine("stale-read Cancel found by " + string.Join("; ", found));
    }

    [Fact]
    public void Planted_SplitCompareExchange_IsFoundAsNonLinearizable()
    {
        // "Cancel without CAS": every compare-and-swap becomes a read, a scheduling point, then a write, so a Cancel and the
        // driver's claim can both win a timer: a history with its Fire and a Cancel answering true. A split CAS can also
        // corrupt a list a thread then walks forever (found as a livelock), so each randomized strategy tries a few seeds
        // until the linearizability check itself reports the bug; every strategy, the exhaustive one included, must find
        // some failure with its first seed. The exhaustive search runs with one preemption (the bug needs one, between the
        // halves of a split CAS); its depth-first order meets a livelock first (around schedule 40), so it counts as
        // finding the bug but not as reaching the linearizability check.
        Func<int, Strategy>[] strategies = [.. CiStrategies.Seeded[..^1], _ => Strategy.BoundedPreemption(1)];
        var found = new List<string>();
        var nonLinearizable = 0;
        for (int s = 0; s < strategies.Length; s++)
        {
            for (int attempt = 0; attempt < 4; attempt++)
            {
                Strategy strategy = strategies[s](83 + s + (100 * attempt));
                var failure = Record.Exception(() => Explore(PlantedScenario, strategy, PlantedBudget, PlantedBug.SplitCompareExchange)) as ScheduleFailureException;
                Assert.True(failure is not null || attempt > 0, $"{strategy.Name} did not find the split CAS in {PlantedBudget} schedules");
                bool linearizabilityFailure = failure?.InnerException is TimerWheelCheckException check && check.Message.StartsWith("not linearizable", StringComparison.Ordinal);
                found.Add($"{strategy.Name} seed {attempt + 1}: {(failure is null ? "nothing" : $"schedule {failure.Iteration + 1} ({(linearizabilityFailure ? "not linearizable" : failure.InnerException!.GetType().Name)})")}");
                if (linearizabilityFailure)
                {
                    if (nonLinearizable++ == 0)
                    {
                        output.WriteLine(failure!.Message);
                    }

                    break;
                }

                if (strategy.Name.StartsWith("Bounded", StringComparison.Ordinal))
                {
                    break; // deterministic: no seed to vary
                }
            }
        }

        output.WriteLine("split CAS: " + string.Join("; ", found));
        Assert.True(nonLinearizable >= strategies.Length - 1, "the randomized strategies must each reach a non-linearizable history: " + string.Join("; ", found));
    }

    [Fact]
    public void Spec_RejectsFireAndCancel_StaleCancel_EarlyFire_MissedFire()
    {
        var spec = new TimerWheelSpec();
        // Due at tick 1 (scheduled at tick 0 with dueIn 0): fires in the advance to 1, after which Cancel is stale.
        Assert.True(Check(spec, (S(0, 0), true), (F(0, 1), true), (A(1), true), (C(0), false)).IsLinearizable);
        Assert.False(Check(spec, (S(0, 0), true), (F(0, 1), true), (A(1), true), (C(0), true)).IsLinearizable);   // stale handle cancelled
        Assert.False(Check(spec, (S(0, 0), true), (C(0), true), (F(0, 1), true), (A(1), true)).IsLinearizable);   // cancelled and fired
        Assert.False(Check(spec, (S(0, 0), true), (F(0, 1), true), (F(0, 1), true), (A(1), true)).IsLinearizable); // fired twice
        Assert.False(Check(spec, (S(0, 1), true), (F(0, 1), true), (A(1), true)).IsLinearizable);                 // fired early (due 2)
        Assert.False(Check(spec, (S(0, 0), true), (A(1), true)).IsLinearizable);                                  // missed by the advance
        Assert.False(Check(spec, (S(0, 0), true), (C(0), false), (A(0), true)).IsLinearizable);                   // pending, yet "false"
        Assert.True(Check(spec, (S(0, 0), true), (A(0), true), (C(0), true), (A(1), true), (C(0), false)).IsLinearizable);
        Assert.True(Check(spec, (A(1), true), (S(0, 1), true), (A(2), true), (F(0, 3), true), (A(3), true)).IsLinearizable); // due 1 + 1 + 1
    }

    [Fact]
    public void Spec_ConcurrentCancelMayLoseEarlyInTheSweepAndWinLater()
    {
        // Timers 0 and 1 both due at tick 1: the sweep claims 0; a canceller then finds 0 fired (false) and wins 1 before the
        // sweep reaches it. Linearizable per timer; an atomic "AdvanceTo fired {0}" could not explain it.
        var history = new List<Operation<TimerInput, bool>>
        {
            new(0, S(0, 0), true, 0, 1),
            new(0, S(1, 0), true, 2, 3),
            new(0, A(1), true, 10, 30),
            new(0, F(0, 1), true, 10, 29),
            new(1, C(0), false, 12, 13),
            new(1, C(1), true, 14, 15),
        };
        Assert.True(LinearizabilityChecker.Check(new TimerWheelSpec(), history).IsLinearizable);
        history[5] = history[5] with { Output = false };
        Assert.False(LinearizabilityChecker.Check(new TimerWheelSpec(), history).IsLinearizable); // then no one ended timer 1
    }

    [Fact]
    public void Spec_SchedulesReadingTheTickBeforeThePublish_FireAtTheNextAdvance()
    {
        // The history a real-thread run found (CI, s11's last stop): inside the advance to 2, one thread schedules a dueIn 0
        // and then a dueIn 1 timer, both reading tick 1 before the publish and pushed after the drain; the engine fires both
        // at 3 (due 2, already past; due 3). Timer 0, due at 2 from before, fires at 2.
        List<Operation<TimerInput, bool>> History(bool split, long secondFiresAt)
        {
            var history = new List<Operation<TimerInput, bool>> { new(0, A(1), true, 0, 1), new(0, S(0, 0), true, 2, 3) };
            history.AddRange(split
                ? [new(0, TimerInput.Drain(2), true, 10, 30), new(0, TimerInput.Publish(2), true, 10, 30)]
                : [new(0, A(2), true, 10, 30)]);
            history.AddRange(
            [
                new(0, F(0, 2), true, 10, 29),
                new(1, S(1, 0), true, 12, 13),
                new(1, S(2, 1), true, 14, 15),
                new(0, F(1, 3), true, 40, 45),
                new(0, F(2, secondFiresAt), true, 40, 46),
            ]);
            history.AddRange(split
                ? [new(0, TimerInput.Drain(3), true, 40, 50), new(0, TimerInput.Publish(3), true, 40, 50)]
                : [new(0, A(3), true, 40, 50)]);
            history.Add(new(0, A(4), true, 60, 61));
            return history;
        }

        var spec = new TimerWheelSpec();
        Assert.True(LinearizabilityChecker.Check(spec, History(split: true, secondFiresAt: 3)).IsLinearizable);
        Assert.False(LinearizabilityChecker.Check(spec, History(split: false, secondFiresAt: 3)).IsLinearizable); // the atomic advance's verdict

        // The split keeps what must stay rejected: a timer scheduled before the advance and missed by it, one fired early,
        // a late timer left past the next advance, and a drain or publish out of order.
        Assert.False(Check(spec, (A(1), true), (S(0, 0), true), (TimerInput.Drain(2), true), (TimerInput.Publish(2), true)).IsLinearizable);
        Assert.False(Check(spec, (A(1), true), (TimerInput.Drain(2), true), (S(0, 1), true), (F(0, 2), true), (TimerInput.Publish(2), true)).IsLinearizable);
        Assert.True(Check(spec, (A(1), true), (TimerInput.Drain(2), true), (S(0, 0), true), (TimerInput.Publish(2), true), (F(0, 3), true), (A(3), true)).IsLinearizable);
        Assert.True(Check(spec, (A(1), true), (TimerInput.Drain(2), true), (S(0, 0), true), (F(0, 2), true), (TimerInput.Publish(2), true)).IsLinearizable);
        Assert.False(Check(spec, (A(1), true), (TimerInput.Drain(2), true), (S(0, 0), true), (TimerInput.Publish(2), true), (A(3), true)).IsLinearizable);
        Assert.False(Check(spec, (TimerInput.Drain(1), true), (TimerInput.Drain(1), true)).IsLinearizable);
        Assert.False(Check(spec, (TimerInput.Publish(1), true)).IsLinearizable);
        Assert.False(Check(spec, (TimerInput.Drain(1), true), (TimerInput.Publish(2), true)).IsLinearizable);
    }

    private static TimerInput S(int id, long dueIn) => TimerInput.Schedule(id, dueIn);

    private static TimerInput C(int id) => TimerInput.Cancel(id);

    private static TimerInput F(int id, long tick) => TimerInput.Fire(id, tick);

    private static TimerInput A(long tick) => TimerInput.Advance(tick);

    private static LinearizabilityResult Check(TimerWheelSpec spec, params (TimerInput Input, bool Output)[] sequential) =>
        LinearizabilityChecker.Check(spec, sequential.Select((op, i) => new Operation<TimerInput, bool>(0, op.Input, op.Output, 2 * i, (2 * i) + 1)).ToList());

    private static ExplorationResult Explore(WheelScenario scenario, Strategy strategy, int budget, PlantedBug bugs, bool staleAnswer = false, Coverage? coverage = null, bool tso = false) =>
        ControlledTest.Explore(
            strategy,
            budget,
            () => new WheelRun(scenario, staleAnswer, coverage),
            [run => run.Driver(), .. scenario.Threads.Select((_, t) => (Action<WheelRun>)(run => run.RunThread(t)))],
            run => run.Check(),
            new ExploreOptions
            {
                Name = $"timer wheel: {scenario.Name}{(bugs != PlantedBug.None ? " (planted: split CAS)" : staleAnswer ? " (planted: Cancel answers from its first read)" : string.Empty)}",
                Bugs = bugs,
                MaxSteps = bugs != PlantedBug.None ? 5_000 : 20_000,
                DetectRaces = bugs == PlantedBug.None, // planted: the history check itself must find it
            }.WithTso(tso));

    /// <summary>
    /// <see cref="Engine_ControlledSchedules_AreLinearizable"/> under x86-TSO (session 20): store buffers, each schedule in a
    /// no-GC region. Called from <see cref="TimerWheelTsoScheduleTests"/>, whose collection runs alone.
    /// </summary>
    internal static void ExploreAllUnderTso(Action<string> output, int budget)
    {
        foreach (WheelScenario scenario in (WheelScenario[])[.. Scenarios, PlantedScenario])
        {
            foreach (Func<Strategy> make in CiStrategies.Standard(84))
            {
                ExplorationResult r = Explore(scenario, make(), budget, PlantedBug.None, tso: true);
                output($"{scenario.Name} (TSO): {r.Strategy}: {r.Iterations} schedules, max {r.MaxSteps} steps");
            }
        }
    }

    /// <summary>
    /// A scenario: setup operations (sequential; advances allowed), the driver's advances (one tick each) made while the
    /// threads run (then, once every thread has finished, one more), and each thread's schedules and cancels. Timer ids are
    /// unique. A thread may cancel another's timer: a cancel that finds the handle not stored yet is not recorded (it names
    /// no timer).
    /// </summary>
    private sealed record WheelScenario(string Name, TimerInput[] Setup, long[] Driver, TimerInput[][] Threads);

    /// <summary>How often the explored histories contain the races the spec must judge (parallel part only: positive call times).</summary>
    private sealed class Coverage
    {
        public long CancelsLostToFire { get; private set; }

        public long CancelsWonDuringAdvance { get; private set; }

        public long SchedulesSpanningAdvance { get; private set; }

        public void Count(List<Operation<TimerInput, bool>> history)
        {
            var advances = history.Where(o => o.Input.Kind == TimerOpKind.Publish && o.Call >= 0).ToList();
            var fired = history.Where(o => o.Input.Kind == TimerOpKind.Fire).ToDictionary(o => o.Input.Id);
            foreach (Operation<TimerInput, bool> op in history.Where(o => o.Call >= 0 && o.Return < long.MaxValue))
            {
                bool duringAdvance = advances.Any(a => a.Call < op.Return && op.Call < a.Return);
                if (op.Input.Kind == TimerOpKind.Cancel && duringAdvance)
                {
                    if (!op.Output && fired.TryGetValue(op.Input.Id, out var fire) && op.Call < fire.Return)
                    {
                        CancelsLostToFire++; // its timer's fire was in flight when it began
                    }
                    else if (op.Output)
                    {
                        CancelsWonDuringAdvance++;
                    }
                }
                else if (op.Input.Kind == TimerOpKind.Schedule && advances.Any(a => op.Call < a.Call && a.Return < op.Return))
                {
                    SchedulesSpanningAdvance++;
                }
            }
        }

        public override string ToString() =>
            $"cancels lost to a fire in flight {CancelsLostToFire}, cancels won during an advance {CancelsWonDuringAdvance}, schedules spanning a whole advance {SchedulesSpanningAdvance}";
    }

    /// <summary>One schedule's state: the engine, the handles, the recorded history (one logical thread runs at a time).</summary>
    private sealed class WheelRun
    {
        private const int DriverThread = 0;

        private readonly WheelScenario _scenario;
        private readonly TimerWheelEngine<TestAtomics> _wheel = new(TimeSpan.FromMilliseconds(1), TimeProvider.System, 4096);
        private readonly TimerHandle[] _handles = new TimerHandle[16];
        private readonly List<Operation<TimerInput, bool>> _history = [];
        private readonly Action<object?> _callback;
        private readonly bool _staleAnswer;
        private readonly Coverage? _coverage;
        private long _finished;
        private long _tick;
        private long _advanceCall;
        private int _advanceThread;
        private int _callbacks;
        private bool _advanceSynthetic;

        public WheelRun(WheelScenario scenario, bool staleAnswer, Coverage? coverage)
        {
            _coverage = coverage;
            _scenario = scenario;
            _staleAnswer = staleAnswer;
            _callback = OnFire;
            long t = -1_000_000;
            foreach (TimerInput input in scenario.Setup)
            {
                t = Run(DriverThread, input, t, synthetic: true);
            }
        }

        public void Driver()
        {
            foreach (long tick in _scenario.Driver)
            {
                Advance(DriverThread, tick, ControlledScheduler.Now, synthetic: false);
            }

            var spinner = default(SpinWait);
            while (TestAtomics.LoadAcquire(ref _finished) != _scenario.Threads.Length)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            Advance(DriverThread, _tick + 1, ControlledScheduler.Now, synthetic: false); // whatever is due by now
        }

        public void RunThread(int thread)
        {
            foreach (TimerInput input in _scenario.Threads[thread])
            {
                Run(thread + 1, input, ControlledScheduler.Now, synthetic: false);
            }

            TestAtomics.Add(ref _finished, 1);
        }

        public void Check()
        {
            // Post part, single-threaded: past every due tick of the scenario (every schedule returned before the last parallel advance began, so its due tick is at most one past it),
            // every timer cancelled again (stale but the far ones), a fresh timer (it may reuse a freed node) and its cancel.
            long t = _history.Max(o => o.Return) + 1;
            t = Run(DriverThread, A(_tick + 1), t, synthetic: true);
            int ids = _history.Max(o => o.Input.Kind is TimerOpKind.Schedule ? o.Input.Id : 0) + 1;
            t = Run(DriverThread, S(ids, 0), t, synthetic: true);
            for (int id = 0; id <= ids; id++)
            {
                t = Run(DriverThread, C(id), t, synthetic: true);
            }

            Run(DriverThread, A(_tick + 1), t, synthetic: true);
            if (_wheel.PendingCount != 0)
            {
                throw new TimerWheelCheckException($"{_wheel.PendingCount} timer(s) left linked");
            }

            LinearizabilityResult result = LinearizabilityChecker.Check(new TimerWheelSpec(), _history);
            if (!result.IsLinearizable)
            {
                throw new TimerWheelCheckException("not linearizable: " + result.Explanation);
            }

            _coverage?.Count(_history); // after the check: a linearizable history fires each timer at most once
        }

        /// <summary>
        /// Runs one operation on logical thread <paramref name="thread"/>. In the setup and post parts (<paramref name="synthetic"/>)
        /// <paramref name="call"/> is a clock of their own, each operation taking [call, call + 1]; returns the next call time.
        /// </summary>
        private long Run(int thread, TimerInput input, long call, bool synthetic)
        {
            switch (input.Kind)
            {
                case TimerOpKind.Schedule:
                    _handles[input.Id] = _wheel.Schedule(TimeSpan.FromMilliseconds(input.DueIn), _callback, input.Id);
                    break;
                case TimerOpKind.Cancel:
                    TimerHandle handle = _handles[input.Id];
                    bool cancelled = _staleAnswer ? CancelFromFirstRead(handle) : _wheel.Cancel(handle);
                    if (!handle.IsAllocated)
                    {
                        // The other thread's Schedule has not stored the handle yet: this cancelled no timer, and is no Cancel
                        // of timer #id (whose Schedule may already have taken effect: a tick published since depends on it).
                        if (cancelled)
                        {
                            throw new TimerWheelCheckException("Cancel(default) answered true");
                        }

                        return call + 2;
                    }

                    _history.Add(new Operation<TimerInput, bool>(thread, input, cancelled, call, synthetic ? call + 1 : ControlledScheduler.ReturnTime(windowFirst: true)));
                    return call + 2;
                case TimerOpKind.Advance:
                    return Advance(thread, input.Tick, call, synthetic);
                default:
                    throw new ArgumentOutOfRangeException(nameof(input));
            }

            _history.Add(new Operation<TimerInput, bool>(thread, input, true, call, synthetic ? call + 1 : ControlledScheduler.ReturnTime(windowFirst: true)));
            return call + 2;
        }

        private long Advance(int thread, long tick, long call, bool synthetic)
        {
            _tick = tick;
            _advanceSynthetic = synthetic;
            _advanceCall = call;
            _advanceThread = thread;
            _callbacks = 0;
            int fired = _wheel.AdvanceTo(tick);
            if (fired != _callbacks)
            {
                throw new TimerWheelCheckException($"AdvanceTo({tick}) reported {fired} fired, {_callbacks} callback(s) ran");
            }

            // Two operations spanning the call: the drain opens the advance, the publish closes it (TimerWheelSpec).
            long returned = synthetic ? call + 1 : ControlledScheduler.ReturnTime(windowFirst: true);
            _history.Add(new Operation<TimerInput, bool>(thread, TimerInput.Drain(tick), true, call, returned));
            _history.Add(new Operation<TimerInput, bool>(thread, TimerInput.Publish(tick), true, call, returned));
            return call + 2;
        }

        /// <summary>The planted Cancel: true when its first read of the state word names this pending timer, whatever the real Cancel then answers.</summary>
        private bool CancelFromFirstRead(TimerHandle handle)
        {
            if (!handle.IsAllocated)
            {
                return false;
            }

            long word = TestAtomics.LoadAcquire(ref _wheel.Node(handle.Index).StateWord);
            long status = word & 0xFFFF_FFFFL;
            bool pending = (word >>> 32) == handle.Generation && status is TimerNodeStatus.Queued or TimerNodeStatus.Linked;
            return _wheel.Cancel(handle) | pending;
        }

        /// <summary>A callback: runs on the advancing thread, after the gate; its Fire spans from the advance's call to now.</summary>
        private void OnFire(object? state)
        {
            _callbacks++;
            _history.Add(new Operation<TimerInput, bool>(_advanceThread, F((int)state!, _tick), true, _advanceCall, _advanceSynthetic ? _advanceCall + 1 : ControlledScheduler.ReturnTime(windowFirst: true)));
        }
    }
}
