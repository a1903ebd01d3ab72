using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Timers;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// The timer wheel's per-thread lanes under the controlled scheduler: lane rings of two entries, so a thread that
/// schedules four timers wraps its ring and, while the driver lags, falls back to the shared inbox; the driver
/// drains lanes and inbox and returns freed nodes through the lanes' Returned rings while two threads cancel
/// queued and linked timers (a cancelled linked timer's notice goes through the canceller's own lane). Post-part
/// checks: every timer fired exactly once or was cancelled by exactly one successful Cancel; nothing left pending;
/// stale handles cancel nothing; the pool audit finds every free node in exactly one place (free list, a lane's
/// cache, a Returned ring). Planted twins: the lane's release publication dropped (the race detector reports the
/// driver's read of an unpublished slot) and the state-word CAS split (a timer both fires and is cancelled).
/// </summary>
public sealed class TimerWheelLaneScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 500;

    private static readonly Func<int, Strategy>[] Strategies = CiStrategies.Seeded;

    [Fact]
    public void Explore_LanesWrapAndOverflow_FiresXorCancelsAndLosesNoNode()
    {
        long schedules = 0;
        int lanes = 0;
        for (int s = 0; s < Strategies.Length; s++)
        {
            ExplorationResult r = Explore(Strategies[s](5100 + s), ExplorationBudget.Schedules(PerStrategy), new ExploreOptions { Name = "wheel lanes" }, scenario => lanes = Math.Max(lanes, scenario.MaxLanes));
            schedules += r.Iterations;
            output.WriteLine($"{r.Strategy}: {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        Assert.True(schedules >= Math.Min(1000, ExplorationBudget.Schedules(PerStrategy)), $"only {schedules} schedules");
        Assert.Equal(2, lanes); // both threads did get a lane: the scenario exercises them, not only the inbox
    }

    [Fact]
    public void Explore_PlantedDroppedReleaseOnLane_IsFoundByTheRaceDetector()
    {
        // The lane's publication (the release store of PublishedTail, and the driver's of ReturnTail) releases
        // nothing: the driver's plain read of the slot is then unordered after the owner's plain write.
        foreach (Func<int, Strategy> make in Strategies[..3])
        {
            Strategy strategy = make(31);
            var failure = Record.Exception(() => Explore(strategy, 300, new ExploreOptions { Name = "wheel lanes, dropped release", Bugs = PlantedBug.DroppedRelease }, null)) as ScheduleFailureException;
            Assert.True(failure is not null, $"{strategy.Name} did not find the dropped release");
            output.WriteLine($"{strategy.Name}: schedule {failure.Iteration + 1}: {failure.InnerException!.Message.Split('\n')[0]}");
        }
    }

    [Fact]
    public void Explore_PlantedSplitCompareExchange_IsFound()
    {
        var found = new List<string>();
        foreach (Func<int, Strategy> make in Strategies[..3])
        {
            Strategy strategy = make(83);
            var failure = Record.Exception(() =>
                Explore(strategy, 1000, new ExploreOptions { Name = "wheel lanes, split CAS", Bugs = PlantedBug.SplitCompareExchange, MaxSteps = 5_000, DetectRaces = false }, null)) as ScheduleFailureException;
            Assert.True(failure is not null, $"{strategy.Name} did not find the split CAS");
            found.Add($"{strategy.Name}: schedule {failure.Iteration + 1} ({failure.InnerException!.GetType().Name})");
        }

        output.WriteLine(string.Join("; ", found));
        Assert.Contains(found, f => f.Contains(nameof(InvalidOperationException), StringComparison.Ordinal));
    }

    internal static ExplorationResult Explore(Strategy strategy, int iterations, ExploreOptions options, Action<Scenario>? observe) =>
        ControlledTest.Explore(
            strategy,
            iterations,
            Scenario.Create,
            [s => s.Driver(), s => s.Scheduler(), s => s.Canceller()],
            s =>
            {
                s.Check();
                observe?.Invoke(s);
            },
            options);

    /// <summary>
    /// Init: the canceller thread's lane does not exist yet; the setup schedules nothing. Parallel: the scheduler
    /// schedules timers 0..3 (0 through the inbox: its first use; 1 and 2 through its lane; 3 through the lane or,
    /// when the driver has not drained yet, the inbox), then cancels 1 and 3. The canceller schedules + cancels
    /// timers 4 and 5 (the second through its lane), then cancels 0 and 2. The driver advances tick by tick to 5
    /// (timers are due two ticks after the tick they were scheduled at, so expiries race the cancels), then, after
    /// both finish, to 20.
    /// </summary>
    internal sealed class Scenario
    {
        private const int Timers = 6;

        private readonly TimerWheelEngine<TestAtomics> _wheel = new(TimeSpan.FromMilliseconds(1), TimeProvider.System, 4096, laneRingSize: 2);
        private readonly TimerHandle[] _handles = new TimerHandle[Timers];
        private readonly long[] _fired = new long[Timers];
        private readonly long[] _cancelled = new long[Timers];
        private long _scheduled; // timers 0..3 published to the canceller
        private long _finished;

        public int MaxLanes { get; private set; }

        public static Scenario Create() => new();

        public void Driver()
        {
            for (int tick = 1; tick <= 5; tick++)
            {
                _wheel.AdvanceTo(tick); // drains race the pushes; expiries race the cancels
            }

            var spinner = default(SpinWait);
            while (TestAtomics.LoadAcquire(ref _finished) != 2)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            MaxLanes = _wheel.LaneCount;
            _wheel.AdvanceTo(20);
        }

        public void Scheduler()
        {
            for (int i = 0; i < 4; i++)
            {
                _handles[i] = _wheel.Schedule(TimeSpan.FromMilliseconds(1), Callback, i);
            }

            TestAtomics.StoreRelease(ref _scheduled, 1);
            Cancel(1);
            Cancel(3);
            TestAtomics.Add(ref _finished, 1);
        }

        public void Canceller()
        {
            for (int i = 4; i < 6; i++)
            {
                _handles[i] = _wheel.Schedule(TimeSpan.FromMilliseconds(1), Callback, i);
                Cancel(i);
            }

            var spinner = default(SpinWait);
            while (TestAtomics.LoadAcquire(ref _scheduled) == 0)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            Cancel(0);
            Cancel(2);
            TestAtomics.Add(ref _finished, 1);
        }

        public void Check()
        {
            for (int i = 0; i < Timers; i++)
            {
                long fired = Volatile.Read(ref _fired[i]), cancelled = Volatile.Read(ref _cancelled[i]);
                if (fired + cancelled != 1)
                {
                    throw new InvalidOperationException($"timer {i}: fired {fired} time(s), cancelled {cancelled} time(s); expected exactly one of the two");
                }
            }

            if (_wheel.PendingCount != 0)
            {
                throw new InvalidOperationException($"{_wheel.PendingCount} timer(s) left pending");
            }

            if (_wheel.AuditPool() is { } problem)
            {
                throw new InvalidOperationException("pool audit: " + problem);
            }

            foreach (TimerHandle old in _handles)
            {
                if (_wheel.Cancel(old))
                {
                    throw new InvalidOperationException($"stale handle {old} cancelled a timer");
                }
            }

            _wheel.Dispose(); // the worker threads persist across iterations: their lists drop this wheel's lanes
        }

        private void Cancel(int i)
        {
            if (_wheel.Cancel(_handles[i]))
            {
                Interlocked.Increment(ref _cancelled[i]);
            }
        }

        private void Callback(object? state) => Interlocked.Increment(ref _fired[(int)state!]);
    }
}
