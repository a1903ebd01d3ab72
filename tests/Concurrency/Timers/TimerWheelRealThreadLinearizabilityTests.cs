using System.Diagnostics;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Timers;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>
/// The timer wheel engine over the real atomics on real threads (the real memory model), its histories checked against
/// <see cref="TimerWheelSpec"/>: a driver advancing one tick at a time races two threads that schedule (dueIn 0 or 1
/// tick) and cancel their own timers, recent and older (stale) ones, in rounds separated by a barrier (the quiescent
/// points <see cref="LinearizabilityChecker.CheckInSegments"/> splits at). Each advance is a Drain and a Publish
/// operation, both spanning its call; each callback is a Fire operation spanning from its advance's call to the callback. A planted Cancel that answers true every third call is found. How much the
/// threads overlap depends on the machine: on the loaded 2-core VM from none to about 200 of the ~2,500 schedules and
/// cancels of 500 rounds overlapped an advance (printed, not asserted); the controlled-scheduler tests
/// (<see cref="TimerWheelLinearizabilityTests"/>) are the ones that force the races.
/// </summary>
public sealed class TimerWheelRealThreadLinearizabilityTests(ITestOutputHelper output)
{
    private const int Workers = 2;

    [Fact]
    public void Engine_RealThreads_IsLinearizable()
    {
        int rounds = 500 * Math.Max(1, int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) ? s : 1);
        LinearizabilityResult result = Run(rounds, seed: 11, spuriousEvery: 0, out List<Operation<TimerInput, bool>> history);
        Assert.True(result.IsLinearizable, result.Explanation);
        int fired = history.Count(o => o.Input.Kind == TimerOpKind.Fire);
        int cancelled = history.Count(o => o.Input.Kind == TimerOpKind.Cancel && o.Output);
        int refused = history.Count(o => o.Input.Kind == TimerOpKind.Cancel && !o.Output);
        var advances = history.Where(o => o.Input.Kind == TimerOpKind.Publish).ToList();
        int overlapping = history.Count(o => o.Input.Kind is TimerOpKind.Schedule or TimerOpKind.Cancel && advances.Any(a => a.Call < o.Return && o.Call < a.Return));
        output.WriteLine($"{history.Count} operations: {fired} fired, {cancelled} cancels answered true, {refused} false, {overlapping} schedules and cancels overlapping an advance; {result.StatesExplored} states explored");
        Assert.True(fired > 0 && cancelled > 0 && refused > 0, "the history lacks fires or one of the cancel answers");
    }

    [Fact]
    public void Engine_RealThreads_PlantedCancelAnsweringTrueEveryThirdCall_IsFound()
    {
        // The real Cancel still runs (nothing fires twice, no count changes); only the answer lies, and a stale or
        // already-fired timer reported cancelled is not linearizable.
        LinearizabilityResult result = Run(rounds: 200, seed: 12, spuriousEvery: 3, out _);
        Assert.False(result.IsLinearizable, "the planted Cancel answer was not found");
    }

    private static LinearizabilityResult Run(int rounds, int seed, int spuriousEvery, out List<Operation<TimerInput, bool>> history)
    {
        var wheel = new TimerWheelEngine<RealAtomics>(TimeSpan.FromMilliseconds(1), TimeProvider.System, 1 << 16);
        var recorder = new HistoryRecorder<TimerInput, bool>(Workers + 1);
        var fires = new List<Operation<TimerInput, bool>>(); // the driver's (thread 0) only
        var drains = new List<Operation<TimerInput, bool>>(); // the driver's: each advance's first half, spanning its call
        long tick = 0, advanceCall = 0;
        int nextId = 0;
        Action<object?> callback = state =>
        {
            Interlocked.MemoryBarrier(); // as the recorder does before its return time
            fires.Add(new Operation<TimerInput, bool>(0, TimerInput.Fire((int)state!, tick), true, advanceCall, Stopwatch.GetTimestamp()));
        };

        void Advance(int thread)
        {
            tick++;
            advanceCall = Stopwatch.GetTimestamp(); // at or before the recorder's call time: the Fire may only start earlier
            int fired = 0, before = fires.Count;
            recorder.Record(thread, TimerInput.Publish(tick), _ =>
            {
                fired = wheel.AdvanceTo(tick);
                return true;
            });
            Operation<TimerInput, bool> publish = recorder.Last(thread);
            drains.Add(publish with { Input = TimerInput.Drain(tick) });
            Assert.Equal(fires.Count - before, fired);
        }

        RealThreadRounds.Run(
            Workers + 1,
            rounds,
            seed,
            thread =>
            {
                if (thread == 0)
                {
                    return random =>
                    {
                        for (int i = random.Next(1, 5); i > 0; i--)
                        {
                            Advance(0);
                            Thread.SpinWait(random.Next(40)); // spread the advances over the workers' calls
                        }
                    };
                }

                var mine = new List<(int Id, TimerHandle Handle)>();
                int cancels = 0;
                return random =>
                {
                    Thread.SpinWait(random.Next(40)); // start at different points of the driver's round
                    for (int i = random.Next(1, 6); i > 0; i--)
                    {
                        if (mine.Count == 0 || random.Next(2) == 0)
                        {
                            int id = Interlocked.Increment(ref nextId) - 1;
                            TimerHandle handle = default;
                            recorder.Record(thread, TimerInput.Schedule(id, random.Next(2)), op =>
                            {
                                handle = wheel.Schedule(TimeSpan.FromMilliseconds(op.DueIn), callback, op.Id);
                                return true;
                            });
                            mine.Add((id, handle));
                        }
                        else
                        {
                            // Mostly a recent timer (pending or just fired), sometimes an older one (its handle stale).
                            int at = random.Next(4) == 0 ? random.Next(mine.Count) : Math.Max(0, mine.Count - 1 - random.Next(2));
                            (int id, TimerHandle handle) = mine[at];
                            recorder.Record(thread, TimerInput.Cancel(id), _ =>
                                wheel.Cancel(handle) | (spuriousEvery > 0 && ++cancels % spuriousEvery == 0));
                        }
                    }

                    if (mine.Count > 64)
                    {
                        mine.RemoveRange(0, 32); // keep the choice among recent timers
                    }
                };
            });

        // After the rounds, alone: two more advances fire whatever is due (dueIn ≤ 1 from the last published tick).
        Advance(0);
        Advance(0);
        history = [.. recorder.History(), .. drains, .. fires];
        return LinearizabilityChecker.CheckInSegments(new TimerWheelSpec(), history);
    }
}
