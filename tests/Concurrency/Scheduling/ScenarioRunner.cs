using Xunit;
using System.Text;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>
/// What the scripted scenarios (queue and deque) share: their one-line description of the per-thread scripts and
/// their exploration of one controlled thread per script.
/// </summary>
internal static class ScenarioRunner
{
    /// <summary>Appends " | T1: op op | T2: op ..." for the thread scripts.</summary>
    public static StringBuilder AppendThreads<TOp>(this StringBuilder sb, IReadOnlyList<TOp[]> threads)
    {
        for (int t = 0; t < threads.Count; t++)
        {
            sb.Append(" | T").Append(t + 1).Append(": ").AppendJoin(' ', threads[t]);
        }

        return sb;
    }

    /// <summary>
    /// Explores <paramref name="threadCount"/> controlled threads, thread t (from 1) running
    /// <paramref name="runThread"/>(state, t) on a fresh state; the exploration is named <paramref name="name"/>
    /// unless the options name it otherwise.
    /// </summary>
    public static ExplorationResult Explore<TState>(
        string name,
        int threadCount,
        Func<TState> setup,
        Action<TState, int> runThread,
        Action<TState> check,
        Strategy strategy,
        int iterations,
        ExploreOptions? options)
    {
        options ??= new ExploreOptions();
        options = options with { Name = options.Name == "scenario" ? name : options.Name };
        var bodies = new Action<TState>[threadCount];
        for (int t = 0; t < threadCount; t++)
        {
            int thread = t + 1;
            bodies[t] = state => runThread(state, thread);
        }

        return ControlledTest.Explore(strategy, iterations, setup, bodies, check, options);
    }

    /// <summary>
    /// Asserts that each strategy finds a failing schedule whose cause is a <typeparamref name="TCause"/> (the
    /// planted-bug meta-tests); returns each strategy's name with its failure, in order.
    /// </summary>
    public static List<(string Strategy, ScheduleFailureException Failure)> AssertEachFinds<TCause>(
        IEnumerable<Func<Strategy>> strategies, Func<Strategy, ExplorationResult> explore)
        where TCause : Exception
    {
        var found = new List<(string, ScheduleFailureException)>();
        foreach (Func<Strategy> make in strategies)
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => explore(strategy));
            Assert.True(failure.InnerException is TCause, $"{strategy.Name}: unexpected {failure.InnerException?.GetType().Name}: {failure.InnerException?.Message}");
            found.Add((strategy.Name, failure));
        }

        return found;
    }
}
