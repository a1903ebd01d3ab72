using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Timers;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// Review of issue 6 (lanes): Schedule racing Dispose under the controlled scheduler. One thread schedules two
/// timers (the first through the inbox, the second through its new lane) and cancels one; another disposes the
/// wheel. Contract: a Schedule either throws <see cref="ObjectDisposedException"/> or returns a handle whose
/// timer Dispose dropped and counted in DroppedCount (its Cancel answers false); every handle returned ends in
/// exactly one of CancelledCount and DroppedCount. Before the fix a Schedule whose node was published after
/// Dispose's scan returned a handle counted nowhere (and cancellable after Dispose).
/// </summary>
public sealed class TimerWheelDisposeRaceScheduleTests(ITestOutputHelper output)
{
    private const int PerStrategy = 150;

    private static readonly Func<int, Strategy>[] Strategies = CiStrategies.Seeded[..3]; // the randomized ones only

    [Fact]
    public void Explore_ScheduleRacesDispose_EveryReturnedHandleIsCountedOnce()
    {
        long schedules = 0;
        for (int s = 0; s < Strategies.Length; s++)
        {
            ExplorationResult r = ControlledTest.Explore(
                Strategies[s](6600 + s),
                ExplorationBudget.Schedules(PerStrategy),
                Scenario.Create,
                [x => x.Scheduler(), x => x.Disposer()],
                x => x.Check(),
                new ExploreOptions { Name = "wheel schedule vs dispose", MaxSteps = 20_000 });
            schedules += r.Iterations;
            output.WriteLine($"{r.Strategy}: {r.Iterations} schedules, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        Assert.True(schedules >= 3 * Math.Min(100, ExplorationBudget.Schedules(PerStrategy)), $"only {schedules} schedules");
    }

    private sealed class Scenario
    {
        private readonly TimerWheelEngine<TestAtomics> _wheel = new(TimeSpan.FromMilliseconds(1), TimeProvider.System, 64, laneRingSize: 2);
        private readonly TimerHandle[] _handles = new TimerHandle[3];
        private int _returned;
        private int _cancelled;

        public static Scenario Create() => new();

        public void Scheduler()
        {
            for (int i = 0; i < _handles.Length; i++)
            {
                try
                {
                    _handles[i] = _wheel.Schedule(TimeSpan.FromMilliseconds(5), static _ => { }, null);
                    _returned++;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }

                if (i == 1 && _wheel.Cancel(_handles[i]))
                {
                    _cancelled++;
                }
            }
        }

        public void Disposer() => _wheel.Dispose();

        public void Check()
        {
            long counted = _wheel.DroppedCount + _wheel.CancelledCount + _wheel.FiredCount;
            if (counted != _returned || _wheel.CancelledCount != _cancelled)
            {
                throw new InvalidOperationException(
                    $"{_returned} handle(s) returned ({_cancelled} cancelled by the caller), but fired {_wheel.FiredCount} + cancelled {_wheel.CancelledCount} + dropped {_wheel.DroppedCount}");
            }

            foreach (TimerHandle h in _handles)
            {
                if (_wheel.Cancel(h))
                {
                    throw new InvalidOperationException($"handle {h} cancelled a timer after Dispose");
                }
            }
        }
    }
}
