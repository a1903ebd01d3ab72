using LockFree.Internal;
using System.Diagnostics;
using System.Text;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>Planted bugs that <see cref="TestAtomics"/> injects into the code under test, per exploration.</summary>
[Flags]
public enum PlantedBug
{
    /// <summary>The atomics behave as specified.</summary>
    None = 0,

    /// <summary>CompareExchange becomes a load, a scheduling point, then a store: a lost update.</summary>
    SplitCompareExchange = 1,

    /// <summary>StoreRelease stores but releases nothing (a relaxed store), so the race detector sees unpublished slots.</summary>
    DroppedRelease = 2,

    /// <summary>FullFence is only a scheduling point: it no longer drains the store buffer (a missing fence).</summary>
    DroppedFullFence = 4,

    /// <summary>ProcessWideBarrier is only a scheduling point: other threads' store buffers stay as they are.</summary>
    DroppedProcessWideBarrier = 8,
}

/// <summary>Options of one exploration.</summary>
public sealed record ExploreOptions
{
    /// <summary>Livelock bound: an iteration that takes more scheduling points fails. Default 20,000.</summary>
    public int MaxSteps { get; init; } = 20_000;

    /// <summary>Happens-before race detection on plain accesses (<see cref="RaceDetector"/>). Default on.</summary>
    public bool DetectRaces { get; init; } = true;

    /// <summary>TSO store-buffer simulation (<see cref="StoreBuffers"/>); the locations must be pinned. Default off.</summary>
    public bool StoreBuffers { get; init; }

    /// <summary>
    /// Runs each schedule (setup, threads and check) inside a no-GC region (<see cref="GC.TryStartNoGCRegion(long)"/>), so
    /// no object moves while a store waits in a buffer: what <see cref="StoreBuffers"/> needs for locations in ordinary
    /// objects (the library's own fields), not only pinned arrays. A schedule during which a collection ran anyway (its
    /// allocations passed <see cref="NoGcRegionBytes"/>, or another test allocated meanwhile) is discarded, pass or fail:
    /// its buffered stores were dropped rather than written through stale addresses; more than one in twenty (at least
    /// three) fails the exploration. The region is
    /// process-wide: tests that use it belong to <see cref="StillObjectsCollection"/>, which runs alone. Default off.
    /// </summary>
    public bool HoldObjectsStill { get; init; }

    /// <summary>
    /// These options under x86-TSO on ordinary objects (<paramref name="on"/>), or as they are: <see cref="StoreBuffers"/>
    /// and <see cref="HoldObjectsStill"/> together, which is what a run over the library's own (unpinned) objects needs.
    /// </summary>
    public ExploreOptions WithTso(bool on = true) => on ? this with { StoreBuffers = true, HoldObjectsStill = true } : this;

    /// <summary>The allocation budget of one schedule's no-GC region (<see cref="HoldObjectsStill"/>). Default 64 MiB.</summary>
    public long NoGcRegionBytes { get; init; } = 64L << 20;

    /// <summary>
    /// With <see cref="StoreBuffers"/>: at each scheduling point a thread's oldest buffered store drains with
    /// probability 1/odds. Default 2. Larger odds keep stores buffered longer, for protocols whose window between a
    /// store and the load that must see it spans many steps.
    /// </summary>
    public int StoreBufferDrainOdds { get; init; } = 2;

    /// <summary>Bugs to inject through <see cref="TestAtomics"/>. Default none.</summary>
    public PlantedBug Bugs { get; init; }

    /// <summary>Faults to plant in the real code through <see cref="TestAtomics.IsPlanted"/> (the waiter list's). Default none.</summary>
    internal PlantedFault Faults { get; init; }

    /// <summary>How long a thread may go without reaching a scheduling point before the run is declared hung. Default 10 s.</summary>
    public TimeSpan HangTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Scenario name for failure messages.</summary>
    public string Name { get; init; } = "scenario";
}

/// <summary>What an exploration did.</summary>
/// <param name="Strategy">The strategy's name.</param>
/// <param name="Iterations">Schedules run.</param>
/// <param name="Exhausted">True when the strategy ran out of schedules (bounded-preemption search finished).</param>
/// <param name="TotalSteps">Scheduling points over all iterations.</param>
/// <param name="MaxSteps">The longest iteration, in scheduling points.</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record ExplorationResult(string Strategy, int Iterations, bool Exhausted, long TotalSteps, long MaxSteps, TimeSpan Elapsed);

/// <summary>A schedule that failed: the message names the strategy, the iteration, the replay call and the trace tail.</summary>
public sealed class ScheduleFailureException(string message, Exception inner, int iteration, string replayCall)
    : Exception(message, inner)
{
    /// <summary>The failing iteration (0-based) of the exploration.</summary>
    public int Iteration { get; } = iteration;

    /// <summary>The strategy expression that replays the failing schedule as its first iteration.</summary>
    public string ReplayCall { get; } = replayCall;
}

/// <summary>
/// Entry point: explores the schedules of a scenario = an init part (<c>setup</c>, runs alone), a parallel part
/// (one body per logical thread, interleaved at the scheduling points of <see cref="TestAtomics"/>) and a post
/// part (<c>check</c>, runs alone after every thread finished).
/// </summary>
public static class ControlledTest
{
    /// <summary>Runs up to <paramref name="iterations"/> schedules chosen by <paramref name="strategy"/>; throws <see cref="ScheduleFailureException"/> on the first failing one.</summary>
    public static ExplorationResult Explore<TState>(
        Strategy strategy,
        int iterations,
        Func<TState> setup,
        IReadOnlyList<Action<TState>> threads,
        Action<TState>? check = null,
        ExploreOptions? options = null)
    {
        options ??= new ExploreOptions();
        var clock = Stopwatch.StartNew();
        long totalSteps = 0, maxSteps = 0;
        int voided = 0; // schedules whose no-GC region a collection broke (HoldObjectsStill)
        var pool = new WorkerPool(threads.Count);
        try
        {
            for (int i = 0; i < iterations; i++)
            {
                if (!strategy.BeginIteration(i, threads.Count))
                {
                    return new ExplorationResult(strategy.Name, i, true, totalSteps, maxSteps, clock.Elapsed);
                }

                bool still = options.HoldObjectsStill;
                if (still)
                {
                    HoldStill(options);
                }

                try
                {
                    TState state = setup();
                    var bodies = new Action[threads.Count + 1];
                    bodies[0] = () => { };
                    for (int t = 0; t < threads.Count; t++)
                    {
                        Action<TState> body = threads[t];
                        bodies[t + 1] = () => body(state);
                    }

                    var scheduler = new ControlledScheduler(pool, bodies, strategy, options);
                    bool finished = scheduler.Run();
                    strategy.EndIteration(scheduler.Steps);
                    totalSteps += scheduler.Steps;
                    maxSteps = Math.Max(maxSteps, scheduler.Steps);
                    Exception? failure = scheduler.Failure;
                    if (failure is null)
                    {
                        try
                        {
                            check?.Invoke(state);
                        }
                        catch (Exception ex)
                        {
                            failure = ex;
                        }
                    }

                    if (still && RegionBroke())
                    {
                        // A collection ran during the schedule: buffered stores were dropped (objects may have moved), so
                        // the schedule's verdict, pass or fail, is no evidence. It is discarded; a few are tolerated.
                        voided++;
                        if (voided > Math.Max(2, iterations / 20))
                        {
                            throw new InvalidOperationException(
                                $"'{options.Name}': a garbage collection ran during {voided} of {i + 1} schedules (more than {options.NoGcRegionBytes} bytes allocated in one, or another test ran beside it), so their objects may have moved under buffered stores.");
                        }
                    }
                    else if (failure is not null)
                    {
                        throw Report(strategy, i, options, scheduler, failure);
                    }

                    if (!finished)
                    {
                        pool.Dispose();
                        pool = new WorkerPool(threads.Count);
                    }
                }
                finally
                {
                    if (still && !RegionBroke())
                    {
                        GC.EndNoGCRegion();
                    }
                }
            }

            return new ExplorationResult(strategy.Name, iterations, false, totalSteps, maxSteps, clock.Elapsed);
        }
        finally
        {
            pool.Dispose();
        }
    }

    /// <summary>Replays one schedule: <paramref name="strategy"/> is the expression a failure message printed.</summary>
    public static ExplorationResult Replay<TState>(
        Strategy strategy,
        Func<TState> setup,
        IReadOnlyList<Action<TState>> threads,
        Action<TState>? check = null,
        ExploreOptions? options = null) =>
        Explore(strategy, 1, setup, threads, check, options);

    /// <summary>Enters the schedule's no-GC region (<see cref="ExploreOptions.HoldObjectsStill"/>).</summary>
    private static void HoldStill(ExploreOptions options)
    {
        if (!GC.TryStartNoGCRegion(options.NoGcRegionBytes))
        {
            throw new InvalidOperationException($"'{options.Name}': no no-GC region of {options.NoGcRegionBytes} bytes could be started.");
        }
    }

    /// <summary>Whether a collection ended the schedule's no-GC region (<see cref="ExploreOptions.HoldObjectsStill"/>).</summary>
    private static bool RegionBroke() => System.Runtime.GCSettings.LatencyMode != System.Runtime.GCLatencyMode.NoGCRegion;

    private static ScheduleFailureException Report(Strategy strategy, int iteration, ExploreOptions options, ControlledScheduler scheduler, Exception failure)
    {
        string replay = strategy.ReplayCall();
        var sb = new StringBuilder()
            .Append("Schedule failure in '").Append(options.Name).Append("' under ").Append(strategy.Name)
            .Append(", iteration ").Append(iteration).Append(" (").Append(scheduler.Steps).AppendLine(" steps):")
            .Append("  ").Append(failure.GetType().Name).Append(": ").AppendLine(failure.Message)
            .Append("  replay: ControlledTest.Replay(").Append(replay).Append(", <same setup, threads, check>, options with Name = \"")
            .Append(options.Name).Append("\", Bugs = ").Append(options.Bugs).Append(", Faults = ").Append(options.Faults).AppendLine(")")
            .AppendLine("  trace tail:")
            .Append(scheduler.TraceTail());
        return new ScheduleFailureException(sb.ToString(), failure, iteration, replay);
    }
}

/// <summary>
/// The tests that explore with <see cref="ExploreOptions.HoldObjectsStill"/>: a no-GC region is process-wide, so they run
/// alone, after the parallel collections.
/// </summary>
[Xunit.CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StillObjectsCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "still objects (no-GC regions)";
}
