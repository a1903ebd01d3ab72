using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Timers;

/// <summary>Thrown when a delay-queue history is not linearizable or its accounting is off.</summary>
public sealed class DelayQueueCheckException(string message) : Exception(message);

/// <summary>
/// Linearizability of the delay queue against <see cref="DelayQueueSpec"/>: (1) the library's
/// <c>DelayQueueCore</c> (what <see cref="DelayQueue{T}"/> runs for TryEnqueue /
/// TryDequeue and a parking reader's take) over the test atomics, explored under the controlled scheduler with
/// <see cref="CiStrategies.Standard"/>, items due now and later on a fixed manual clock, and a planted copy without
/// the drain's "root unknown" marker (<see cref="PlantedBugs.PlantedDelayQueue"/>) found by every strategy; (2) the
/// real <see cref="DelayQueue{T}"/> on real threads, with the manual clock moved at the quiescent points between
/// rounds, and a planted spurious "nothing due" found there.
/// </summary>
public sealed class DelayQueueLinearizabilityTests(ITestOutputHelper output)
{
    private const int Budget = 1000;
    private const int PlantedBudget = 4000;

    /// <summary>The scenarios: prefilled items, then each thread's operations (delay 0: due now; otherwise never due in the run).</summary>
    private static readonly DelayScenario[] Scenarios =
    [
        // The smallest drain race: two due items, two consumers (the planted bug's scenario).
        new("two consumers", Capacity: 4, Lenient: false, Prefill: [(1, 0), (2, 0)],
            Threads: [[D()], [D()]]),

        // Two consumers race a drain of several due items (the fast path's "nothing due" must stay exact).
        new("drain race", Capacity: 8, Lenient: false, Prefill: [(1, 0), (2, 0), (3, 5)],
            Threads: [[D(), P()], [D(), E(10, 0)], [E(11, 5), E(12, 0), D()]]),

        // Due-now and later items enqueued concurrently; equal due times come out in enqueue order.
        new("ties and later items", Capacity: 8, Lenient: false, Prefill: [],
            Threads: [[E(1, 0), E(2, 0), E(3, 7)], [E(4, 0), P()], [D(), D()]]),

        // A full queue (capacity 2): accepts never exceed it; rejections are lenient (see DelayQueueSpec).
        new("full", Capacity: 2, Lenient: true, Prefill: [(1, 0)],
            Threads: [[E(10, 0), E(11, 0)], [E(20, 5), D()], [D(), D()]]),
    ];

    [Fact]
    public void Core_ControlledSchedules_AreLinearizable()
    {
        foreach (DelayScenario scenario in Scenarios)
        {
            foreach (Func<Strategy> make in CiStrategies.Standard(61))
            {
                output.WriteLine($"{scenario.Name}: {Explore(scenario, make(), Budget, planted: false)}");
            }
        }
    }

    [Fact]
    public void Planted_MissingDrainMarker_IsFoundByEveryStrategy()
    {
        foreach (Func<Strategy> make in CiStrategies.Standard(61))
        {
            Strategy strategy = make();
            var failure = Assert.Throws<ScheduleFailureException>(() => Explore(Scenarios[0], strategy, PlantedBudget, planted: true));
            Assert.IsType<DelayQueueCheckException>(failure.InnerException);
            Assert.Contains("not linearizable", failure.InnerException!.Message);
            output.WriteLine($"{strategy.Name}: found at schedule {failure.Iteration + 1}");
        }
    }

    [Fact]
    public void Spec_RejectsSpuriousNothingDue_AndEarlyOrUnorderedItems()
    {
        var spec = new DelayQueueSpec(4, lenientRejects: false);
        Assert.False(Check(spec, (E(1, 0), QueueOutput.Succeeded), (D(), QueueOutput.Failed)).IsLinearizable);          // due item, "nothing due"
        Assert.False(Check(spec, (E(1, 3), QueueOutput.Succeeded), (D(), QueueOutput.Item(1))).IsLinearizable);         // returned early
        Assert.False(Check(spec, (E(1, 0), QueueOutput.Succeeded), (E(2, 0), QueueOutput.Succeeded), (D(), QueueOutput.Item(2))).IsLinearizable); // FIFO among ties
        Assert.True(Check(spec, (E(1, 2), QueueOutput.Succeeded), (E(2, 0), QueueOutput.Succeeded), (D(), QueueOutput.Item(2)), (D(), QueueOutput.Failed),
            (new DelayInput(DelayOpKind.Advance, Delay: 2), QueueOutput.Succeeded), (D(), QueueOutput.Item(1))).IsLinearizable);
        var tiny = new DelayQueueSpec(1, lenientRejects: false);
        Assert.False(Check(tiny, (E(1, 5), QueueOutput.Succeeded), (E(2, 0), QueueOutput.Succeeded)).IsLinearizable);   // over capacity
        Assert.False(Check(tiny, (E(1, 5), QueueOutput.Failed)).IsLinearizable);                                         // spurious full
        Assert.True(Check(new DelayQueueSpec(1, lenientRejects: true), (E(1, 5), QueueOutput.Failed)).IsLinearizable);
    }

    [Fact]
    public void RealQueue_RealThreads_ManualClockBetweenRounds_IsLinearizable()
    {
        int rounds = 150 * Math.Max(1, int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) ? s : 1);
        RunReal(new DelayQueueSpec(64, lenientRejects: false), capacity: 64, rounds, seed: 5, drainEachRound: true);
        RunReal(new DelayQueueSpec(3, lenientRejects: true), capacity: 3, rounds, seed: 6, drainEachRound: false);
    }

    [Fact]
    public void RealQueue_PlantedSpuriousNothingDue_IsFound()
    {
        // Proof of power of the real-thread check: every third dequeue answers "nothing due" without looking.
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() =>
            RunReal(new DelayQueueSpec(64, lenientRejects: false), capacity: 64, rounds: 150, seed: 7, drainEachRound: true, spuriousEvery: 3));
    }

    private static DelayInput E(int value, long delay) => DelayInput.Enqueue(value, delay);

    private static DelayInput D() => DelayInput.Dequeue();

    private static DelayInput P() => DelayInput.Dequeue() with { Parking = true };

    private static LinearizabilityResult Check(DelayQueueSpec spec, params (DelayInput Input, QueueOutput Output)[] sequential) =>
        LinearizabilityChecker.Check(spec, sequential.Select((op, i) => new Operation<DelayInput, QueueOutput>(0, op.Input, op.Output, 2 * i, (2 * i) + 1)).ToList());

    /// <summary><see cref="Core_ControlledSchedules_AreLinearizable"/> under x86-TSO (from <see cref="TimerWheelTsoScheduleTests"/>, whose collection runs alone).</summary>
    internal static void ExploreAllUnderTso(Action<string> output, int budget)
    {
        foreach (DelayScenario scenario in Scenarios)
        {
            foreach (Func<Strategy> make in CiStrategies.Standard(62))
            {
                output($"{scenario.Name} (TSO): {Explore(scenario, make(), budget, planted: false, tso: true)}");
            }
        }
    }

    private static ExplorationResult Explore(DelayScenario scenario, Strategy strategy, int budget, bool planted, bool tso = false) =>
        ControlledTest.Explore(
            strategy,
            budget,
            () => new DelayRun(scenario, planted),
            scenario.Threads.Select((_, t) => (Action<DelayRun>)(run => run.RunThread(t))).ToArray(),
            run => run.Check(),
            new ExploreOptions { Name = $"delay queue: {scenario.Name}{(planted ? " (planted: no drain marker)" : string.Empty)}{(tso ? " (TSO)" : string.Empty)}" }.WithTso(tso));

    /// <summary>
    /// Real threads on the real queue: 2 producers (delays 0-2 units of 1 ms) and 2 consumers race within a round;
    /// between rounds, at the barrier (a quiescent point), <paramref name="drainEachRound"/> takes what is due (keeps the
    /// state small), then the clock moves one unit (recorded as an Advance), so items enqueued with a delay come due
    /// in later rounds.
    /// </summary>
    private static void RunReal(DelayQueueSpec spec, int capacity, int rounds, int seed, bool drainEachRound, int spuriousEvery = 0)
    {
        const int Threads = 4;
        var time = new ManualTimeProvider();
        using var queue = new DelayQueue<int>(capacity, new DelayQueueOptions<int> { FullMode = OverflowPolicy.Reject, TimeProvider = time });
        var recorder = new HistoryRecorder<DelayInput, QueueOutput>(Threads + 1);
        RealThreadRounds.Run(
            Threads,
            rounds,
            seed,
            thread =>
            {
                int next = (thread + 1) * 1_000_000;
                int dequeues = 0;
                return random =>
                {
                    for (int i = random.Next(1, 4); i > 0; i--)
                    {
                        DelayInput input = thread < 2 ? E(next++, random.Next(3)) : D();
                        recorder.Record(thread, input, op => op.Kind == DelayOpKind.Enqueue
                            ? (queue.TryEnqueue(op.Value, TimeSpan.FromMilliseconds(op.Delay)).Outcome == WriteOutcome.Accepted ? QueueOutput.Succeeded : QueueOutput.Failed)
                            : (spuriousEvery > 0 && ++dequeues % spuriousEvery == 0) || !queue.TryDequeue(out int v) ? QueueOutput.Failed : QueueOutput.Item(v));
                    }
                };
            },
            betweenRounds: () =>
            {
                if (drainEachRound)
                {
                    while (recorder.Record(Threads, D(), _ => queue.TryDequeue(out int v) ? QueueOutput.Item(v) : QueueOutput.Failed).Ok)
                    {
                    }
                }

                // Then the clock moves: items enqueued with a delay come due, so the next round starts with due items.
                recorder.Record(Threads, DelayInput.Advance(1), _ =>
                {
                    time.Advance(TimeSpan.FromMilliseconds(1));
                    return QueueOutput.Succeeded;
                });
            });

        LinearizabilityResult result = LinearizabilityChecker.CheckInSegments(spec, recorder.History());
        Assert.True(result.IsLinearizable, result.Explanation);
    }

    private sealed record DelayScenario(string Name, int Capacity, bool Lenient, (int Value, long Delay)[] Prefill, DelayInput[][] Threads);

    /// <summary>One schedule's state: the model, the recorded history (one logical thread runs at a time), the accounting.</summary>
    private sealed class DelayRun
    {
        private readonly DelayScenario _scenario;
        private readonly IDelayQueueUnderTest _queue;
        private readonly List<Operation<DelayInput, QueueOutput>> _history = [];

        public DelayRun(DelayScenario scenario, bool planted)
        {
            _scenario = scenario;
            _queue = planted ? new PlantedBugs.PlantedDelayQueue(scenario.Capacity) : new CoreUnderTest(scenario.Capacity, new ManualTimeProvider());
            for (int i = 0; i < scenario.Prefill.Length; i++)
            {
                (int value, long delay) = scenario.Prefill[i];
                if (!_queue.TryEnqueue(value, delay))
                {
                    throw new InvalidOperationException($"prefill {value} did not fit");
                }

                _history.Add(new Operation<DelayInput, QueueOutput>(0, E(value, delay), QueueOutput.Succeeded, (-2 * (scenario.Prefill.Length - i)) - 1, -2 * (scenario.Prefill.Length - i)));
            }
        }

        public void RunThread(int thread)
        {
            foreach (DelayInput input in _scenario.Threads[thread])
            {
                long call = ControlledScheduler.Now;
                QueueOutput output = input.Kind == DelayOpKind.Enqueue
                    ? (_queue.TryEnqueue(input.Value, input.Delay) ? QueueOutput.Succeeded : QueueOutput.Failed)
                    : (_queue.TryDequeue(input.Parking, out int value) ? QueueOutput.Item(value) : QueueOutput.Failed);
                _history.Add(new Operation<DelayInput, QueueOutput>(thread, input, output, call, ControlledScheduler.ReturnTime(windowFirst: true)));
            }
        }

        public void Check()
        {
            // Post part, single-threaded: take what is due, and record the final "nothing due" (a lost due item fails it).
            long t = _history.Max(o => o.Return) + 1;
            while (true)
            {
                bool ok = _queue.TryDequeue(parking: false, out int value);
                _history.Add(new Operation<DelayInput, QueueOutput>(0, D(), ok ? QueueOutput.Item(value) : QueueOutput.Failed, t, t + 1));
                t += 2;
                if (!ok)
                {
                    break;
                }
            }

            var accepted = _history.Where(o => o.Input.Kind == DelayOpKind.Enqueue && o.Output.Ok).Select(o => o.Input.Value).ToHashSet();
            var taken = _history.Where(o => o.Input.Kind == DelayOpKind.Dequeue && o.Output.Ok).Select(o => o.Output.Value).ToList();
            if (taken.Count != taken.Distinct().Count() || !taken.All(accepted.Contains))
            {
                throw new DelayQueueCheckException($"accounting: accepted [{string.Join(",", accepted)}], taken [{string.Join(",", taken)}]");
            }

            LinearizabilityResult result = LinearizabilityChecker.Check(new DelayQueueSpec(_scenario.Capacity, _scenario.Lenient), _history);
            if (!result.IsLinearizable)
            {
                throw new DelayQueueCheckException("not linearizable: " + result.Explanation);
            }
        }
    }
}
