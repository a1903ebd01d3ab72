using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Timers;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// The timer wheel engine instantiated with <see cref="TestAtomics"/>, explored under the controlled scheduler:
/// a driver advancing (drain, link, fire) against two threads cancelling the same timers (queued ones and linked
/// ones, one of them twice) and scheduling + cancelling their own. Post-part checks: every timer fired exactly once
/// or was cancelled by exactly one successful Cancel, never both; nothing is left pending; stale handles cancel
/// nothing. The planted bug (compare-and-swap split into a read and a write: "cancel without CAS") must be found.
/// </summary>
public sealed class TimerWheelScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 700;

    private static readonly Func<int, Strategy>[] Strategies = CiStrategies.Seeded;

    [Fact]
    public void Explore_ConcurrentCancelScheduleAdvance_FiresXorCancelsEachTimer()
    {
        long schedules = 0;
        for (int s = 0; s < Strategies.Length; s++)
        {
            ExplorationResult r = Explore(Strategies[s](4200 + s), ExplorationBudget.Schedules(PerStrategy), new ExploreOptions { Name = "wheel fire-xor-cancel" });
            schedules += r.Iterations;
            output.WriteLine($"{r.Strategy}: {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        Assert.True(schedules >= Math.Min(1000, ExplorationBudget.Schedules(PerStrategy)), $"only {schedules} schedules");
    }

    [Fact]
    public void Explore_PlantedSplitCompareExchange_IsFound()
    {
        // "Cancel without CAS": the state-word CAS becomes a read, a scheduling point, then a write, so Cancel
        // and the driver can both win. Every strategy must find a failing schedule within the CI budget. The
        // exhaustive search runs with one preemption (the bug needs one: between the halves of a split CAS);
        // with two, its depth-first order spends the 1000 schedules on the tail of the scenario. Race detection is
        // off, so the post-part check (or the livelock bound, when a split CAS corrupts a stack) must find it.
        var found = new List<string>();
        Func<int, Strategy>[] strategies = [.. Strategies[..^1], _ => Strategy.BoundedPreemption(1)];
        for (int s = 0; s < strategies.Length; s++)
        {
            // A split CAS often corrupts a lock-free stack first (a livelock); a few more seeds per strategy look for
            // the fire-and-cancel outcome itself.
            for (int attempt = 0; attempt < 4; attempt++)
            {
                Strategy strategy = strategies[s](77 + s + (100 * attempt));
                var failure = Record.Exception(() =>
                    Explore(strategy, 1000, new ExploreOptions { Name = "wheel with split CAS", Bugs = PlantedBug.SplitCompareExchange, MaxSteps = 5_000, DetectRaces = false })) as ScheduleFailureException;
                Assert.True(failure is not null, $"{strategy.Name} did not find the split CAS in 1000 schedules");
                found.Add($"{strategy.Name}: schedule {failure.Iteration + 1} ({failure.InnerException!.GetType().Name})");
                if (found.Count == 1)
                {
                    output.WriteLine(failure.Message);
                }

                if (failure.InnerException is InvalidOperationException || strategy.Name.StartsWith("Bounded", StringComparison.Ordinal))
                {
                    break; // found it; the exhaustive search is deterministic (no seed)
                }
            }
        }

        output.WriteLine("split CAS found by " + string.Join("; ", found));
        Assert.Contains(found, f => f.Contains(nameof(InvalidOperationException), StringComparison.Ordinal)); // the fire-xor-cancel check itself, not only a livelock
    }

    internal static ExplorationResult Explore(Strategy strategy, int iterations, ExploreOptions options) =>
        ControlledTest.Explore(
            strategy,
            iterations,
            Scenario.Create,
            [s => s.Driver(), s => s.Canceller(0), s => s.Canceller(1)],
            s => s.Check(),
            options);

    /// <summary>
    /// Init: timers 0 and 1 scheduled and linked by an advance to tick 0 (due at tick 2), timer 2 scheduled and
    /// left on the inbox (due at tick 1). Parallel: the driver advances to 1 and 2 (the expiries race the cancels:
    /// a sweep may meet a node a Cancel has just claimed), then to 4 after both cancellers finish;
    /// canceller 0 cancels timers 0 and 2 and schedules + cancels timer 3; canceller 1 cancels timers 0 and 1 and
    /// schedules timer 4 (due at once) and tries to cancel it.
    /// </summary>
    internal sealed class Scenario
    {
        private const int Timers = 5;

        private readonly TimerWheelEngine<TestAtomics> _wheel = new(TimeSpan.FromMilliseconds(1), TimeProvider.System, 4096);
        private readonly TimerHandle[] _handles = new TimerHandle[Timers];
        private readonly long[] _fired = new long[Timers];
        private readonly long[] _cancelled = new long[Timers];
        private long _finished;

        public static Scenario Create()
        {
            var s = new Scenario();
            s._handles[0] = s._wheel.Schedule(TimeSpan.FromMilliseconds(1), s.Callback, 0);
            s._handles[1] = s._wheel.Schedule(TimeSpan.FromMilliseconds(1), s.Callback, 1);
            s._wheel.AdvanceTo(0);
            s._handles[2] = s._wheel.Schedule(TimeSpan.Zero, s.Callback, 2);
            return s;
        }

        public void Driver()
        {
            _wheel.AdvanceTo(1); // timer 2 expires: its claim races canceller 0
            _wheel.AdvanceTo(2); // timers 0 and 1 expire: their claims race the cancels of linked timers
            var spinner = default(SpinWait);
            while (TestAtomics.LoadAcquire(ref _finished) != 2)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            _wheel.AdvanceTo(4); // whatever the cancellers scheduled and did not cancel
        }

        public void Canceller(int id)
        {
            if (id == 0)
            {
                Cancel(0);
                Cancel(2);
                _handles[3] = _wheel.Schedule(TimeSpan.FromMilliseconds(1), Callback, 3); // own slot of the array: no race
                Cancel(3);
            }
            else
            {
                Cancel(0);
                Cancel(1);
                _handles[4] = _wheel.Schedule(TimeSpan.Zero, Callback, 4);
                Cancel(4);
            }

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

            // Every node is back in the pool; a new timer reuses one, and no old handle may touch it.
            TimerHandle fresh = _wheel.Schedule(TimeSpan.FromMilliseconds(1), static _ => { }, null);
            foreach (TimerHandle old in _handles)
            {
                if (_wheel.Cancel(old))
                {
                    throw new InvalidOperationException($"stale handle {old} cancelled a newer timer");
                }
            }

            if (!_wheel.Cancel(fresh))
            {
                throw new InvalidOperationException("a fresh timer could not be cancelled");
            }
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
