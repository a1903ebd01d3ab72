using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>What the composed scenarios share: thread bodies, the polling await, and the planted-fault search.</summary>
internal static class ComposedRuns
{
    /// <summary>One body per thread of the scenario: logical thread <c>t + 1</c> runs <paramref name="run"/>'s program <c>t + 1</c>.</summary>
    public static Action<TRun>[] Bodies<TRun>(int threads, Action<TRun, int> run)
    {
        var bodies = new Action<TRun>[threads];
        for (int t = 0; t < threads; t++)
        {
            int thread = t + 1;
            bodies[t] = state => run(state, thread);
        }

        return bodies;
    }

    /// <summary>
    /// Waits for <paramref name="pending"/> by polling it at spin points: a wake-up runs the operation's next steps on the
    /// waking logical thread, and the scheduler's fair spin rule lets it run. A wake-up that never comes shows as a
    /// livelock (the step bound), or, with <paramref name="stuck"/>, as that check's failure after 4,000 polls (the
    /// scheduler's livelock report carries only the steps; the check can name the history).
    /// </summary>
    public static T Await<T>(ValueTask<T> pending, Action<int>? stuck = null)
    {
        var spinner = default(SpinWait);
        for (int polls = 0; !pending.IsCompleted; polls++)
        {
            stuck?.Invoke(polls);
            TestAtomics.SpinOnce(ref spinner);
        }

        SawOutsideStore();
        return pending.GetAwaiter().GetResult();
    }

    /// <summary>As <see cref="Await{T}(ValueTask{T}, Action{int}?)"/> for a value task without a result; true once it completed.</summary>
    public static bool Await(ValueTask pending)
    {
        var spinner = default(SpinWait);
        while (!pending.IsCompleted)
        {
            TestAtomics.SpinOnce(ref spinner);
        }

        SawOutsideStore();
        pending.GetAwaiter().GetResult();
        return true;
    }

    /// <summary>
    /// The awaiting thread saw a value-task source completed: a store the runtime made outside the seam (not buffered), on
    /// whichever logical thread ran the wake-up. Under TSO the stores that thread made before it are visible too, so with
    /// store buffers on every buffer drains here (the model does not know which thread completed the source; draining more
    /// only explores fewer reorderings, it invents none). Without it a TSO run showed the completion while the completer's
    /// earlier stores (a hand-off read's head index) still sat in its buffer: a duplicate no x86 can produce.
    /// </summary>
    private static void SawOutsideStore() => ControlledScheduler.Current?.Buffers?.DrainEveryone();

    /// <summary>
    /// The advancing thread's loop: while <paramref name="condition"/> holds (a test-only cue, outside the simulated memory),
    /// moves <paramref name="clock"/> one tick (its due timers fire on this thread), runs <paramref name="afterTick"/>, and
    /// spins once, so the other threads run between ticks. Returns the ticks moved.
    /// </summary>
    public static int AdvanceWhile(ManualTimeProvider clock, Func<bool> condition, Action? afterTick = null)
    {
        var spinner = default(SpinWait);
        int ticks = 0;
        while (condition())
        {
            clock.Advance(TimeSpan.FromTicks(1));
            afterTick?.Invoke(); // a manually driven timer wheel on that clock, say
            ticks++;
            TestAtomics.SpinOnce(ref spinner);
        }

        return ticks;
    }

    /// <summary>
    /// Takes up to <paramref name="count"/> items through one enumerator of <paramref name="source"/> (a <c>ReadAllAsync</c>),
    /// each <c>MoveNextAsync</c> awaited by <paramref name="awaitMove"/> (default <see cref="Await{T}(ValueTask{T}, Action{int}?)"/>),
    /// and hands each to <paramref name="took"/> with the scheduler's time before its call. False when the sequence ended
    /// first: completed and drained, or with an exception <paramref name="endedBy"/> accepts. The enumerator is disposed
    /// only when no <c>MoveNextAsync</c> is in flight: a check that failed inside one leaves the iterator running, and
    /// disposing it then would throw <see cref="NotSupportedException"/> over the failure.
    /// </summary>
    public static bool ReadAll<T>(IAsyncEnumerable<T> source, int count, Action<T, long> took, Func<ValueTask<bool>, bool>? awaitMove = null, Func<Exception, bool>? endedBy = null)
    {
        IAsyncEnumerator<T> items = source.GetAsyncEnumerator();
        bool idle = true;
        try
        {
            for (int i = 0; i < count; i++)
            {
                long call = ControlledScheduler.Now;
                idle = false;
                bool more;
                try
                {
                    more = awaitMove is null ? Await(items.MoveNextAsync()) : awaitMove(items.MoveNextAsync());
                }
                catch (Exception error) when (endedBy?.Invoke(error) == true)
                {
                    more = false; // the iterator ended with the exception
                }

                idle = true;
                if (!more)
                {
                    return false;
                }

                took(items.Current, call);
            }

            return true;
        }
        finally
        {
            if (idle)
            {
                Await(items.DisposeAsync());
            }
        }
    }

    /// <summary>
    /// Explores a scenario under each CI strategy (seeded with <paramref name="seed"/>), <paramref name="budget"/> schedules
    /// each, and writes each strategy's result to the test output; returns the schedules run.
    /// </summary>
    public static long ExploreStandard(Action<string> output, string name, int seed, int budget, Func<Strategy, int, ExplorationResult> explore)
    {
        long schedules = 0;
        foreach (Func<Strategy> make in CiStrategies.Standard(seed))
        {
            ExplorationResult r = explore(make(), budget);
            schedules += r.Iterations;
            output($"{name}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        return schedules;
    }

    /// <summary>
    /// Proof of power: explores with <paramref name="fault"/> planted under each CI strategy (up to 3,000 schedules each)
    /// and asserts that at least one finds it, each failure passing <paramref name="check"/>; the strategies' results go to
    /// the test output.
    /// </summary>
    public static void AssertPlantedFound(
        Action<string> output, string name, int seed, PlantedFault fault, Func<Strategy, PlantedFault, int, ExplorationResult> explore, Action<ScheduleFailureException>? check = null)
    {
        var found = new List<string>();
        int finding = 0;
        foreach (Func<Strategy> make in CiStrategies.Standard(seed))
        {
            Strategy strategy = make();
            try
            {
                explore(strategy, fault, 3000);
                found.Add($"{strategy.Name}: not found");
            }
            catch (ScheduleFailureException failure)
            {
                finding++;
                check?.Invoke(failure);
                found.Add($"{strategy.Name}: schedule {failure.Iteration + 1} ({failure.InnerException!.GetType().Name})");
            }
        }

        output($"{name}: " + string.Join("; ", found));
        Assert.True(finding > 0, $"{name}: no strategy found it");
    }
}
