using LockFree.Internal;
using Xunit;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>The scheduler itself: it finds what it must, replays what it found, and never hangs.</summary>
public sealed class ControlledSchedulerTests
{
    private sealed class Counter
    {
        public long Value;
    }

    private static void Increment(Counter c)
    {
        long v = TestAtomics.LoadAcquire(ref c.Value); // a non-atomic increment: the classic lost update
        TestAtomics.StoreRelease(ref c.Value, v + 1);
    }

    private static void AtomicIncrement(Counter c) => TestAtomics.Add(ref c.Value, 1);

    [Theory]
    [InlineData("random")]
    [InlineData("pct")]
    [InlineData("dfs")]
    public void LostUpdate_IsFound_AndReplaysIdentically(string which)
    {
        Strategy strategy = which switch
        {
            "random" => Strategy.RandomWalk(42),
            "pct" => Strategy.Pct(42, depth: 2),
            _ => Strategy.BoundedPreemption(1),
        };
        var failure = Assert.Throws<ScheduleFailureException>(() =>
            ControlledTest.Explore(strategy, 1000, () => new Counter(), [Increment, Increment], c => Assert.Equal(2, c.Value)));
        Assert.Contains("replay: ControlledTest.Replay(", failure.Message);
        Assert.Contains("trace tail", failure.Message);

        // The printed strategy expression replays the failing schedule as its first iteration, with the same trace.
        Strategy replay = ParseReplay(failure.ReplayCall);
        var again = Assert.Throws<ScheduleFailureException>(() =>
            ControlledTest.Replay(replay, () => new Counter(), [Increment, Increment], c => Assert.Equal(2, c.Value)));
        Assert.Equal(0, again.Iteration);
        Assert.Equal(Tail(failure.Message), Tail(again.Message));
    }

    /// <summary>A lost update unless <paramref name="locked"/> holds the counter's lock around the read and the write.</summary>
    private static void IncrementUnder(Counter c, Func<Counter, bool> locked)
    {
        if (!locked(c))
        {
            return; // TryEnterLock refused: this thread leaves the counter alone
        }

        try
        {
            Increment(c);
        }
        finally
        {
            TestAtomics.ExitLock(c, interrupted: false);
        }
    }

    [Fact]
    public void Locks_EnterLockAndTryEnterLock_ExcludeEachOther_AndTryEnterNeverWaits()
    {
        // Two EnterLock increments and one TryEnterLock increment: under every schedule of the exhaustive search the
        // count is the number of increments that took the lock (no lost update), a TryEnterLock that met the lock held
        // answered false at once (no deadlock, no wait), and both answers happened.
        int refused = 0, taken = 0;
        int expected = 0;
        bool Enter(Counter c)
        {
            TestAtomics.EnterLock(c);
            expected++;
            return true;
        }

        bool Try(Counter c)
        {
            bool got = TestAtomics.TryEnterLock(c);
            _ = got ? taken++ : refused++;
            expected += got ? 1 : 0;
            return got;
        }

        var r = ControlledTest.Explore(
            Strategy.BoundedPreemption(3),
            20_000,
            () => { expected = 0; return new Counter(); },
            [c => IncrementUnder(c, Enter), c => IncrementUnder(c, Enter), c => IncrementUnder(c, Try)],
            c => Assert.Equal(expected, c.Value));
        Assert.True(r.Exhausted);
        Assert.True(refused > 0 && taken > 0, $"TryEnterLock refused {refused} and took {taken} times");

        // The planted twin: the third thread increments without asking for the lock, and an update is lost (the check's
        // own failure, not a lock error).
        var failure = Assert.Throws<ScheduleFailureException>(() => ControlledTest.Explore(
            Strategy.BoundedPreemption(2),
            20_000,
            () => new Counter(),
            [c => IncrementUnder(c, Enter), c => IncrementUnder(c, Enter), Increment],
            c => Assert.Equal(3, c.Value)));
        Assert.IsType<Xunit.Sdk.EqualException>(failure.InnerException);
    }

    [Fact]
    public void TimedWaitEvent_TimesOutOnlyWhileUnset_AndMovesTheVirtualClock()
    {
        // Session 19: a finite WaitEvent may time out at any of its scheduling points before the set, never after it, and
        // a timeout moves the virtual clock (TestAtomics.GetTimestamp) on by at least the timeout. An event nobody sets
        // ends by timing out (no deadlock); one set by another thread ends either way over the exploration.
        TimeSpan timeout = TimeSpan.FromMilliseconds(5);
        long minimum = ControlledScheduler.StopwatchTicks(timeout);
        int timedOut = 0, set = 0;
        ControlledTest.Explore(
            Strategy.RandomWalk(seed: 19),
            2_000,
            () => new ManualResetEventSlim(false),
            [
                e =>
                {
                    long before = TestAtomics.GetTimestamp();
                    bool wasSet = TestAtomics.WaitEvent(e, timeout);
                    long moved = TestAtomics.GetTimestamp() - before;
                    if (wasSet)
                    {
                        set++;
                        Assert.Equal(0, moved);
                    }
                    else
                    {
                        timedOut++;
                        Assert.True(moved >= minimum, $"a timeout moved the clock {moved} ticks, less than {minimum}");
                    }
                },
                e => TestAtomics.SetEvent(e),
            ],
            _ => { });
        Assert.True(timedOut > 0 && set > 0, $"timed out {timedOut}, set {set}");

        // Nobody sets it: every schedule times out instead of deadlocking; an infinite wait would be a deadlock.
        ControlledTest.Explore(
            Strategy.RandomWalk(seed: 20),
            200,
            () => new ManualResetEventSlim(false),
            [e => Assert.False(TestAtomics.WaitEvent(e, timeout)), _ => { }],
            _ => { });
        var deadlock = Assert.Throws<ScheduleFailureException>(() => ControlledTest.Explore(
            Strategy.RandomWalk(seed: 21),
            200,
            () => new ManualResetEventSlim(false),
            [e => TestAtomics.WaitEvent(e, Timeout.InfiniteTimeSpan), _ => { }],
            _ => { }));
        Assert.IsType<DeadlockException>(deadlock.InnerException);
    }

    [Fact]
    public void AtomicIncrement_PassesExhaustiveSearch_AndSeesEveryOrder()
    {
        var orders = new HashSet<string>();
        var log = new System.Text.StringBuilder();
        Action<Counter> Body(char name) => c => { AtomicIncrement(c); log.Append(name); };
        var r = ControlledTest.Explore(
            Strategy.BoundedPreemption(10),
            10_000,
            () => { log.Clear(); return new Counter(); },
            [Body('a'), Body('b'), Body('c')],
            c => { Assert.Equal(3, c.Value); orders.Add(log.ToString()); });
        Assert.True(r.Exhausted);
        Assert.Equal(6, orders.Count); // all 3! orders of three one-step threads
    }

    [Fact]
    public void BoundedPreemption_SeesEveryInterleavingOfTwoTwoStepThreads()
    {
        // Two threads of two steps each: C(4,2) = 6 interleavings; the search must produce all of them.
        var orders = new HashSet<string>();
        var log = new System.Text.StringBuilder();
        Action<Counter> Body(char name) => c => { AtomicIncrement(c); log.Append(name); AtomicIncrement(c); log.Append(name); };
        var r = ControlledTest.Explore(
            Strategy.BoundedPreemption(10),
            10_000,
            () => { log.Clear(); return new Counter(); },
            [Body('a'), Body('b')],
            _ => orders.Add(log.ToString()));
        Assert.True(r.Exhausted);
        Assert.Equal(6, orders.Count);

        // With no preemptions at all, only the two serial orders (and no more) remain.
        orders.Clear();
        ControlledTest.Explore(Strategy.BoundedPreemption(0), 10_000, () => { log.Clear(); return new Counter(); }, [Body('a'), Body('b')], _ => orders.Add(log.ToString()));
        Assert.Equal(["aabb", "bbaa"], orders.Order());
    }

    [Fact]
    public void ExceptionInThreadBody_IsReported()
    {
        var failure = Assert.Throws<ScheduleFailureException>(() =>
            ControlledTest.Explore<Counter>(Strategy.RandomWalk(1), 10, () => new Counter(), [c => AtomicIncrement(c), _ => throw new InvalidOperationException("boom")]));
        Assert.IsType<InvalidOperationException>(failure.InnerException);
        Assert.Contains("boom", failure.Message);
    }

    [Fact]
    public void Spinning_ForeverIsReportedAsLivelock()
    {
        var failure = Assert.Throws<ScheduleFailureException>(() =>
            ControlledTest.Explore(
                Strategy.RandomWalk(1),
                1,
                () => new Counter(),
                [c => { var s = default(SpinWait); while (TestAtomics.LoadAcquire(ref c.Value) == 0) { TestAtomics.SpinOnce(ref s); } }, _ => { }],
                options: new ExploreOptions { MaxSteps = 500 }));
        Assert.IsType<LivelockException>(failure.InnerException);
    }

    [Fact]
    public void Spinning_YieldsToTheThreadItWaitsFor()
    {
        // Under every strategy the spinner must let the setter run, so this finishes well within the step bound.
        foreach (Strategy s in new[] { Strategy.RandomWalk(3), Strategy.Pct(3, depth: 3), Strategy.BoundedPreemption(0) })
        {
            ControlledTest.Explore(
                s,
                200,
                () => new Counter(),
                [c => { var w = default(SpinWait); while (TestAtomics.LoadAcquire(ref c.Value) == 0) { TestAtomics.SpinOnce(ref w); } }, c => TestAtomics.StoreRelease(ref c.Value, 1)],
                options: new ExploreOptions { MaxSteps = 200 });
        }
    }

    private sealed class Handshake
    {
        public long Go;      // set by the releaser before it waits: lets the spinners announce themselves
        public long Arrived; // each spinner adds one
        public long Release; // set by the releaser once both arrived
    }

    private static void SpinUntil(ref long location, long value)
    {
        var w = default(SpinWait);
        while (TestAtomics.LoadAcquire(ref location) < value)
        {
            TestAtomics.SpinOnce(ref w);
        }
    }

    /// <summary>
    /// Two spinners (T1, T2) and the releaser they wait for (T3), which is itself parked in a spin of its own when its
    /// condition comes true. Only T3 can end the run; T1 and T2 only hand the baton to each other unless the scheduler
    /// is fair among spinners. Before the fairness rule, the bounded search's first schedule (every choice 0, the
    /// lowest thread id) was T1 -> T2 -> T1 -> ... until the step bound: a livelock report for a program that ends
    /// under every fair schedule (the shape of the 'refill reuses a dead cache' failure in TokenBucketThreadCacheScheduleTests).
    /// </summary>
    private static readonly Action<Handshake>[] TwoSpinnersAndTheirReleaser =
    [
        h => { SpinUntil(ref h.Go, 1); TestAtomics.Add(ref h.Arrived, 1); SpinUntil(ref h.Release, 1); },
        h => { SpinUntil(ref h.Go, 1); TestAtomics.Add(ref h.Arrived, 1); SpinUntil(ref h.Release, 1); },
        h => { TestAtomics.StoreRelease(ref h.Go, 1); SpinUntil(ref h.Arrived, 2); TestAtomics.StoreRelease(ref h.Release, 1); },
    ];

    [Fact]
    public void SpinnersHandingTheBatonToEachOther_DoNotStarveAParkedSpinnerWhoseConditionCameTrue()
    {
        foreach (Strategy s in new[] { Strategy.BoundedPreemption(0), Strategy.BoundedPreemption(2), Strategy.RandomWalk(7), Strategy.Pct(7, depth: 2), Strategy.Pct(7, depth: 3) })
        {
            ExplorationResult r = ControlledTest.Explore(
                s,
                ExplorationBudget.Schedules(300),
                () => new Handshake(),
                TwoSpinnersAndTheirReleaser,
                h => Assert.Equal(1, h.Release),
                new ExploreOptions { MaxSteps = 400, Name = "two spinners and their releaser under " + s.Name });
            Assert.True(r.MaxSteps < 400);
        }
    }

    [Fact]
    public void BoundedSearch_FirstScheduleOfTwoSpinnersAndTheirReleaser_Finishes()
    {
        // The schedule that livelocked: every choice 0. Replayed, it must now end with the releaser's store.
        ExplorationResult r = ControlledTest.Replay(
            Strategy.Replay("", maxPreemptions: 0),
            () => new Handshake(),
            TwoSpinnersAndTheirReleaser,
            h => Assert.Equal(1, h.Release),
            new ExploreOptions { MaxSteps = 400, Name = "two spinners and their releaser, all choices 0" });
        Assert.Equal(1, r.Iterations);
    }

    [Fact]
    public void SpinnersWaitingOnlyForEachOther_AreStillReportedAsLivelock_UnderEveryStrategy()
    {
        // Fairness must not hide a real livelock: with nobody to release them, two spinners spin until the step bound.
        foreach (Strategy s in new[] { Strategy.BoundedPreemption(2), Strategy.RandomWalk(7), Strategy.Pct(7, depth: 3) })
        {
            var failure = Assert.Throws<ScheduleFailureException>(() =>
                ControlledTest.Explore(
                    s,
                    1,
                    () => new Handshake(),
                    [h => SpinUntil(ref h.Release, 1), h => SpinUntil(ref h.Release, 1), _ => { }],
                    options: new ExploreOptions { MaxSteps = 300 }));
            Assert.IsType<LivelockException>(failure.InnerException);
            Assert.Contains("T1", failure.InnerException!.Message);
            Assert.Contains("T2", failure.InnerException.Message);
        }
    }

    [Fact]
    public void ThreadStuckOutsideTheSeam_IsReportedAsHang_AndTheRunDoesNotHang()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var failure = Assert.Throws<ScheduleFailureException>(() =>
            ControlledTest.Explore(
                Strategy.RandomWalk(1),
                5,
                () => new Counter(),
                [c => { AtomicIncrement(c); Thread.Sleep(1500); AtomicIncrement(c); }, AtomicIncrement, AtomicIncrement],
                options: new ExploreOptions { HangTimeout = TimeSpan.FromMilliseconds(200) }));
        Assert.IsType<TimeoutException>(failure.InnerException);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public void FailureInOneOfThreeThreads_TearsDownTheOthers_AndTheNextExplorationRuns()
    {
        for (int round = 0; round < 20; round++)
        {
            Assert.Throws<ScheduleFailureException>(() =>
                ControlledTest.Explore<Counter>(
                    Strategy.RandomWalk(round),
                    50,
                    () => new Counter(),
                    [AtomicIncrement, c => { AtomicIncrement(c); AtomicIncrement(c); Assert.Fail("planted"); }, c => { for (int i = 0; i < 10; i++) { AtomicIncrement(c); } }]));
        }

        var r = ControlledTest.Explore(Strategy.RandomWalk(3), 100, () => new Counter(), [AtomicIncrement, AtomicIncrement, AtomicIncrement], c => Assert.Equal(3, c.Value));
        Assert.Equal(100, r.Iterations);
    }

    [Fact]
    public void WaitingForeverIsReportedAsDeadlock()
    {
        var failure = Assert.Throws<ScheduleFailureException>(() =>
            ControlledTest.Explore(Strategy.RandomWalk(1), 1, () => new ControlledEventCount(), [e => e.CommitWait(e.PrepareWait())]));
        Assert.IsType<DeadlockException>(failure.InnerException);
    }

    [Fact]
    public void PlainWritesWithoutOrdering_AreDataRaces()
    {
        var failure = Assert.Throws<ScheduleFailureException>(() =>
            ControlledTest.Explore(Strategy.RandomWalk(1), 10, () => new long[1], [a => TestAtomics.StorePlain(ref a[0], 1L), a => TestAtomics.StorePlain(ref a[0], 2L)]));
        Assert.IsType<DataRaceException>(failure.InnerException);
    }

    [Fact]
    public void PlainAccessesOrderedByReleaseAcquire_AreNotRaces()
    {
        // Message passing: the write of data happens-before the read through the release/acquire of the flag.
        ControlledTest.Explore(
            Strategy.BoundedPreemption(3),
            10_000,
            () => new long[2],
            [
                a => { TestAtomics.StorePlain(ref a[0], 42L); TestAtomics.StoreRelease(ref a[1], 1L); },
                a => { if (TestAtomics.LoadAcquire(ref a[1]) == 1) { Assert.Equal(42L, TestAtomics.LoadPlain(ref a[0])); } },
            ]);
    }

    [Fact]
    public void OutsideAControlledRun_TestAtomicsAreThePlainOperations()
    {
        long x = 1;
        Assert.Equal(1, TestAtomics.CompareExchange(ref x, 5, 1));
        Assert.Equal(6, TestAtomics.Add(ref x, 1));
        var s = default(SpinWait);
        TestAtomics.SpinOnce(ref s);
        Assert.Equal(6, TestAtomics.LoadPlain(ref x));
    }

    [Fact]
    public void SameSeed_GivesSameSchedules_DifferentSeeds_Differ()
    {
        static string Run(long seed)
        {
            var log = new System.Text.StringBuilder();
            ControlledTest.Explore(Strategy.RandomWalk(seed), 20, () => new Counter(), [c => { AtomicIncrement(c); log.Append('a'); AtomicIncrement(c); log.Append('a'); }, c => { AtomicIncrement(c); log.Append('b'); AtomicIncrement(c); log.Append('b'); }]);
            return log.ToString();
        }

        Assert.Equal(Run(5), Run(5));
        Assert.NotEqual(Run(5), Run(6));
    }

    private static string Tail(string message) => message[message.IndexOf("trace tail", StringComparison.Ordinal)..];

    /// <summary>Turns a printed replay expression back into a strategy (the three forms the strategies print).</summary>
    internal static Strategy ParseReplay(string call)
    {
        var args = System.Text.RegularExpressions.Regex.Matches(call, @"(\w+): (""[^""]*""|-?\d+)")
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value.Trim('"'));
        if (call.StartsWith("Strategy.RandomWalk", StringComparison.Ordinal))
        {
            return Strategy.RandomWalk(long.Parse(args["seed"]));
        }

        if (call.StartsWith("Strategy.Pct", StringComparison.Ordinal))
        {
            return Strategy.Pct(long.Parse(args["seed"]), int.Parse(args["depth"]), int.Parse(args["stepEstimate"]));
        }

        string choices = System.Text.RegularExpressions.Regex.Match(call, @"Replay\(""([^""]*)""").Groups[1].Value;
        return Strategy.Replay(choices, int.Parse(args["maxPreemptions"]));
    }
}
