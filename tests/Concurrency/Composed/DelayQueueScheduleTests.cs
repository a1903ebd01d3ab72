using System.Text;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// <see cref="DelayQueue{T}"/> itself under the controlled scheduler: here it is the composed build (the library's
/// delay-queue sources on <see cref="TestAtomics"/>, with the consumer lock a seam spin lock; Composed/README.md), on a
/// manual clock that one logical thread advances (its timers, the queue's wake-up among them, fire on that thread).
/// Its core (inbox, heap, count) is linearizability-checked on its own (tests/Concurrency/Timers); this class checks
/// what the queue adds around it: the readers' and the wake-up's handshakes (a reader parked for a root not yet due
/// must wake when the clock passes it or an earlier item arrives), waiting writers, the overflow policies, completion.
/// After every schedule: no lost wake-up (an asynchronous wait that never ends is a livelock of the test's polling);
/// no item comes out before its delay has passed on the clock; every accepted item comes out exactly once (taken,
/// evicted to <c>ItemDropped</c>, or left for the drain); the statistics agree with what the threads saw; and a
/// completed queue's <c>Completion</c> completes once it is drained. Proof of power: a parking reader that takes before
/// it links its waiter (<see cref="PlantedFault.DelayReaderTakesBeforeLinking"/>) is found as a lost wake-up.
/// </summary>
public sealed class DelayQueueScheduleTests(ITestOutputHelper output)
{
    private const int PerStrategy = 300;

    /// <summary>What a thread does.</summary>
    public enum Step
    {
        /// <summary><c>TryEnqueue(item, delay)</c>.</summary>
        TryEnqueue,

        /// <summary><c>EnqueueAsync(item, delay)</c>: waits while full (under <c>Wait</c>).</summary>
        EnqueueAsync,

        /// <summary><c>TryDequeue(out item)</c>.</summary>
        TryDequeue,

        /// <summary><c>DequeueAsync()</c>: waits until an item is due; throws once completed and drained.</summary>
        DequeueAsync,

        /// <summary>Advances the clock one tick <c>Count</c> times, then (once every writer is done) past every delay.</summary>
        Advance,

        /// <summary><c>TryComplete()</c>.</summary>
        Complete,

        /// <summary><c>EnqueueAsync(item, delay, token)</c> with the run's shared token: cancelled, the item is not enqueued.</summary>
        CancellableEnqueueAsync,

        /// <summary><c>DequeueAsync(token)</c> with the run's shared token: cancelled, no item is taken.</summary>
        CancellableDequeueAsync,

        /// <summary>Cancels the run's shared token (its callbacks run on this thread).</summary>
        Cancel,

        /// <summary><c>ReadAllAsync()</c>: one enumerator takes <c>Count</c> items, then is disposed; it ends early once completed and drained.</summary>
        ReadAll,
    }

    /// <summary>A thread's program: <paramref name="Count"/> times <paramref name="Step"/>, writes with <paramref name="Delay"/> ticks.</summary>
    public sealed record Program(Step Step, int Count = 1, long Delay = 0)
    {
        public override string ToString() => $"{Step}{(Delay != 0 ? $" d{Delay}" : "")}{(Count != 1 ? $" x{Count}" : "")}";
    }

    /// <summary>A scenario; with <paramref name="OnWheel"/>, the queue's wake-up is a timer on a manually advanced <see cref="HierarchicalTimerWheel"/> (the library's).</summary>
    public sealed record Scenario(int Capacity, OverflowPolicy Mode, int Prefill, Program[] Threads, bool OnWheel = false);

    public static TheoryData<string> Scenarios() => [.. All.Keys];

    // Every waiting reader is owed its items, and every waiting writer its room, whatever the racing calls do; the
    // advancing thread moves the clock past every delay once the writers are done, so every item comes due.
    internal static readonly Dictionary<string, Scenario> All = new()
    {
        ["wait cap 1: enqueue-async x2 | dequeue-async x2"] = new(1, OverflowPolicy.Wait, 0, [new(Step.EnqueueAsync, 2), new(Step.DequeueAsync, 2)]),
        ["wait cap 2: enqueue d5 x2 | dequeue-async x2 | advance x2"] = new(2, OverflowPolicy.Wait, 0, [new(Step.TryEnqueue, 2, 5), new(Step.DequeueAsync, 2), new(Step.Advance, 2)]),
        ["wait cap 2: enqueue d5 | enqueue d0 | dequeue-async | dequeue-async | advance"] = new(2, OverflowPolicy.Wait, 0, [new(Step.TryEnqueue, 1, 5), new(Step.TryEnqueue, 1, 0), new(Step.DequeueAsync), new(Step.DequeueAsync), new(Step.Advance)]),
        ["wait cap 1: enqueue-async d3 x2 | dequeue-async x2 | advance x3"] = new(1, OverflowPolicy.Wait, 0, [new(Step.EnqueueAsync, 2, 3), new(Step.DequeueAsync, 2), new(Step.Advance, 3)]),
        ["wait cap 1 full: enqueue-async d2 | enqueue-async | dequeue-async x3 | advance x2"] = new(1, OverflowPolicy.Wait, 1, [new(Step.EnqueueAsync, 1, 2), new(Step.EnqueueAsync), new(Step.DequeueAsync, 3), new(Step.Advance, 2)]),
        ["drop-oldest cap 1 full: enqueue d2 x2 | enqueue | try-dequeue x2 | advance x2"] = new(1, OverflowPolicy.DropOldest, 1, [new(Step.TryEnqueue, 2, 2), new(Step.TryEnqueue), new(Step.TryDequeue, 2), new(Step.Advance, 2)]),
        ["drop-incoming cap 1: enqueue d1 x2 | enqueue x2 | dequeue-async | advance"] = new(1, OverflowPolicy.DropIncoming, 0, [new(Step.TryEnqueue, 2, 1), new(Step.TryEnqueue, 2), new(Step.DequeueAsync), new(Step.Advance)]),
        ["reject cap 1: enqueue d2 x2 | enqueue x2 | try-dequeue x2 | advance x2"] = new(1, OverflowPolicy.Reject, 0, [new(Step.TryEnqueue, 2, 2), new(Step.TryEnqueue, 2), new(Step.TryDequeue, 2), new(Step.Advance, 2)]),

        // Cancellation racing wake-ups: a cancelled enqueue leaves no item, a cancelled dequeue takes none (blocking calls
        // are owed their items and room whatever the cancellable ones do).
        ["wait cap 1 full: cancellable-enqueue-async d1 x2 | dequeue-async | advance | cancel"] = new(1, OverflowPolicy.Wait, 1, [new(Step.CancellableEnqueueAsync, 2, 1), new(Step.DequeueAsync), new(Step.Advance), new(Step.Cancel)]),
        ["wait cap 2: cancellable-dequeue-async | dequeue-async | enqueue d2 x2 | advance | cancel"] = new(2, OverflowPolicy.Wait, 0, [new(Step.CancellableDequeueAsync), new(Step.DequeueAsync), new(Step.TryEnqueue, 2, 2), new(Step.Advance), new(Step.Cancel)]),

        // Completion: readers drain what is left (delayed items included, once due), then end.
        ["wait cap 2: dequeue-async x3 | enqueue d2 x2 | advance x2 | complete"] = new(2, OverflowPolicy.Wait, 0, [new(Step.DequeueAsync, 3), new(Step.TryEnqueue, 2, 2), new(Step.Advance, 2), new(Step.Complete)]),
        ["wait cap 1 full: enqueue-async | dequeue-async x3 | complete"] = new(1, OverflowPolicy.Wait, 1, [new(Step.EnqueueAsync), new(Step.DequeueAsync, 3), new(Step.Complete)]),
        ["wait cap 1 full: enqueue-async d1 | dequeue-async x3 | advance | complete"] = new(1, OverflowPolicy.Wait, 1, [new(Step.EnqueueAsync, 1, 1), new(Step.DequeueAsync, 3), new(Step.Advance), new(Step.Complete)]),

        // ReadAllAsync (session 18): its iterator takes what is due, else awaits a pooled parked read whose wake-up runs the
        // iterator's next steps on the waking thread; several enumerations share the items; one ends at the completion.
        ["wait cap 2: enqueue d2 x2 | read-all x2 | advance x2"] = new(2, OverflowPolicy.Wait, 0, [new(Step.TryEnqueue, 2, 2), new(Step.ReadAll, 2), new(Step.Advance, 2)]),
        ["wait cap 2: read-all x2 | read-all x2 | enqueue-async d1 x2 | enqueue-async x2 | advance"] = new(2, OverflowPolicy.Wait, 0, [new(Step.ReadAll, 2), new(Step.ReadAll, 2), new(Step.EnqueueAsync, 2, 1), new(Step.EnqueueAsync, 2), new(Step.Advance)]),
        ["wait cap 2: read-all x3 | enqueue d1 x2 | advance | complete"] = new(2, OverflowPolicy.Wait, 0, [new(Step.ReadAll, 3), new(Step.TryEnqueue, 2, 1), new(Step.Advance), new(Step.Complete)]),

        // On a timer wheel (DelayQueueOptions.TimerWheel, session 18): the wake-up is armed at the absolute due time on the
        // wheel, which the advancing thread advances after each tick (its callbacks run there).
        ["wait cap 2 on a wheel: enqueue d5 x2 | dequeue-async x2 | advance x2"] = new(2, OverflowPolicy.Wait, 0, [new(Step.TryEnqueue, 2, 5), new(Step.DequeueAsync, 2), new(Step.Advance, 2)], OnWheel: true),
        ["wait cap 2 on a wheel: enqueue d5 | enqueue d0 | dequeue-async | dequeue-async | advance"] = new(2, OverflowPolicy.Wait, 0, [new(Step.TryEnqueue, 1, 5), new(Step.TryEnqueue, 1, 0), new(Step.DequeueAsync), new(Step.DequeueAsync), new(Step.Advance)], OnWheel: true),
    };

    private static long s_taken;
    private static long s_canceled;
    private static long s_ended;

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Explore_RealDelayQueue_NoLostWakeupNothingEarlyEveryItemOnce(string name)
    {
        Scenario scenario = All[name];
        s_taken = s_ended = s_canceled = 0;
        ComposedRuns.ExploreStandard(output.WriteLine, name, 4600 + name.Length, ExplorationBudget.Schedules(PerStrategy), (strategy, budget) => Explore(strategy, name, scenario, PlantedFault.None, budget));

        output.WriteLine($"items taken {s_taken}, reads ended by the completion {s_ended}, calls cancelled {s_canceled}");
        if (scenario.Threads.Any(p => p.Step == Step.Cancel))
        {
            Assert.True(s_canceled > 0, "no call was cancelled");
        }

        Assert.True(s_taken > 0, "no item was taken");
        if (scenario.Threads.Any(p => p.Step == Step.Complete))
        {
            Assert.True(s_ended > 0, "no read met the completion");
        }
    }

    [Fact]
    public void Explore_ReaderTakesBeforeLinking_IsFoundAsALostWakeup()
    {
        // A reader finds the queue empty, then links its waiter; a writer publishes an item due at once in between and
        // reads the waiter count before the link, so it signals nobody: the reader sleeps beside a due item. (The real
        // reader links first, then takes: the take after the fence sees the item, or the writer sees the waiter.)
        Scenario scenario = new(2, OverflowPolicy.Wait, 0, [new(Step.DequeueAsync), new(Step.TryEnqueue, 1, 0)]);
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "take before linking",
            97,
            PlantedFault.DelayReaderTakesBeforeLinking,
            (strategy, fault, budget) => Explore(strategy, "planted: take before linking", scenario, fault, budget));
    }

    [Fact]
    public void Explore_ReadAllOverAReaderThatTakesBeforeLinking_IsFound()
    {
        // The same planted lost wake-up, reached through ReadAllAsync: its parked read is the dequeue's step.
        Scenario scenario = new(2, OverflowPolicy.Wait, 0, [new(Step.ReadAll), new(Step.TryEnqueue, 1, 0)]);
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "read-all, take before linking",
            99,
            PlantedFault.DelayReaderTakesBeforeLinking,
            (strategy, fault, budget) => Explore(strategy, "planted: read-all, take before linking", scenario, fault, budget),
            failure => Assert.IsType<CheckFailedException>(failure.InnerException)); // "a wait never ended": the reader sleeps beside a due item
    }

    internal static ExplorationResult Explore(Strategy strategy, string name, Scenario scenario, PlantedFault faults, int budget, bool storeBuffers = false)
    {
        return ControlledTest.Explore(strategy, budget, () => new Run(scenario), ComposedRuns.Bodies<Run>(scenario.Threads.Length, (run, thread) => run.RunThread(thread)), run => run.Check(), new ExploreOptions { Faults = faults, Name = name }.WithTso(storeBuffers));
    }

    private sealed class Run
    {
        private const int Stride = 1000;
        private readonly Scenario _scenario;
        private readonly ManualTimeProvider _clock = new();
        private readonly HierarchicalTimerWheel? _wheel; // the library's, on the real atomics: each call is one step to the scheduler
        private readonly DelayQueue<int> _queue;
        private readonly Dictionary<int, long> _earliest = []; // item -> the clock before its enqueue call + its delay: never out before
        private readonly List<int> _placed = [];
        private readonly List<int> _out = [];
        private readonly List<int> _dropped = [];
        private readonly StringBuilder _log = new();
        private readonly int _writers;
        private readonly int _readers;
        private int _writersDone; // test-only cues, outside the simulated memory
        private int _readersDone;
        private long _evictions;
        private long _rejected;
        private int _taken;
        private int _ended;
        private readonly CancellationTokenSource _cancel = new();
        private int _canceled;
        private bool _completing;
        private bool _completed;

        public Run(Scenario scenario)
        {
            _scenario = scenario;
            _writers = scenario.Threads.Count(p => p.Step is Step.TryEnqueue or Step.EnqueueAsync or Step.CancellableEnqueueAsync);
            _readers = scenario.Threads.Count(p => p.Step is Step.TryDequeue or Step.DequeueAsync or Step.CancellableDequeueAsync or Step.ReadAll);
            _queue = new DelayQueue<int>(scenario.Capacity, new DelayQueueOptions<int>
            {
                FullMode = scenario.Mode,
                TimeProvider = _clock,
                TimerWheel = _wheel = scenario.OnWheel ? new HierarchicalTimerWheel(TimeSpan.FromTicks(1), _clock) : null,
                ItemDropped = (item, reason) => (reason == DropReason.Oldest ? _out : _dropped).Add(item),
            });
            for (int i = 0; i < scenario.Prefill; i++)
            {
                if (_queue.TryEnqueue(i, TimeSpan.Zero).Outcome != WriteOutcome.Accepted)
                {
                    throw new InvalidOperationException("prefill");
                }

                _placed.Add(i);
                _earliest[i] = _clock.GetTimestamp();
            }
        }

        public void RunThread(int thread)
        {
            Program program = _scenario.Threads[thread - 1];
            switch (program.Step)
            {
                case Step.Advance:
                    for (int i = 0; i < program.Count; i++)
                    {
                        _clock.Advance(TimeSpan.FromTicks(1)); // fires the wake-up's timer on this thread when it is due
                        _wheel?.Advance();
                        _log.Append('T').Append(thread).Append(" advance 1; ");
                    }

                    ComposedRuns.AdvanceWhile(_clock, () => Volatile.Read(ref _writersDone) < _writers, () => _wheel?.Advance()); // time moves on while writers wait

                    _clock.Advance(TimeSpan.FromTicks(1 + _scenario.Threads.Max(p => p.Delay)));
                    _wheel?.Advance();
                    _log.Append('T').Append(thread).Append(" advance past every delay; ");

                    // Then on, while readers wait: a wake-up is armed relative to the clock reading its reader made, so one
                    // armed while the clock moved fires that much later (on a real clock, microseconds late).
                    ComposedRuns.AdvanceWhile(_clock, () => Volatile.Read(ref _readersDone) < _readers, () => _wheel?.Advance());

                    return;

                case Step.Cancel:
                    _cancel.Cancel();
                    _log.Append('T').Append(thread).Append(" cancel; ");
                    return;

                case Step.Complete:
                    _completing = true;
                    _queue.TryComplete();
                    _completed = true;
                    _log.Append('T').Append(thread).Append(" complete; ");
                    return;

                case Step.ReadAll:
                    ReadAll(thread, program.Count);
                    Done(program.Step);
                    return;
            }

            for (int i = 0; i < program.Count; i++)
            {
                int value = (thread * Stride) + i;
                switch (program.Step)
                {
                    case Step.TryEnqueue:
                    case Step.EnqueueAsync:
                    case Step.CancellableEnqueueAsync:
                    {
                        TimeSpan delay = TimeSpan.FromTicks(program.Delay);
                        long before = _clock.GetTimestamp();
                        _earliest[value] = before + program.Delay; // before the call: a reader may take it before the call returns
                        WriteResult written;
                        try
                        {
                            written = program.Step switch
                            {
                                Step.TryEnqueue => _queue.TryEnqueue(value, delay),
                                Step.EnqueueAsync => Await(_queue.EnqueueAsync(value, delay)),
                                _ => Await(_queue.EnqueueAsync(value, delay, _cancel.Token)),
                            };
                        }
                        catch (OperationCanceledException)
                        {
                            _canceled++;
                            _log.Append('T').Append(thread).Append(" enqueue ").Append(value).Append(" -> canceled; ");
                            continue; // not enqueued: Check finds it nowhere (it is not in _placed, and an item out must be placed)
                        }

                        _log.Append('T').Append(thread).Append(" enqueue ").Append(value).Append(" d").Append(program.Delay).Append(" -> ").Append(written.Outcome).Append("; ");
                        switch (written.Outcome)
                        {
                            case WriteOutcome.Accepted:
                            case WriteOutcome.EvictedOldest:
                                _placed.Add(value);
                                _evictions += written.Outcome == WriteOutcome.EvictedOldest ? 1 : 0;
                                break;
                            case WriteOutcome.DroppedIncoming:
                                Assert(_dropped.Contains(value), $"the dropped write of {value} did not reach the callback");
                                break;
                            case WriteOutcome.Rejected:
                                Assert(program.Step == Step.TryEnqueue, $"a waiting enqueue answered {written}");
                                _rejected++;
                                break;
                            default:
                                Assert(_completing, $"the write of {value} answered {written.Outcome} before any completion");
                                break;
                        }

                        break;
                    }

                    case Step.TryDequeue:
                        if (_queue.TryDequeue(out int polled))
                        {
                            Took(thread, polled);
                        }

                        break;

                    default:
                        try
                        {
                            Took(thread, Await(program.Step == Step.DequeueAsync ? _queue.DequeueAsync() : _queue.DequeueAsync(_cancel.Token)));
                        }
                        catch (OperationCanceledException)
                        {
                            _canceled++;
                            _log.Append('T').Append(thread).Append(" dequeue -> canceled; ");
                            continue; // took nothing: an item it had taken would be missing in Check
                        }
                        catch (InvalidOperationException) when (_completing)
                        {
                            _ended++;
                            _log.Append('T').Append(thread).Append(" dequeue -> ended; ");
                            Done(program.Step);
                            return; // completed and drained
                        }

                        break;
                }
            }

            Done(program.Step);
        }

        private void ReadAll(int thread, int count)
        {
            if (!ComposedRuns.ReadAll(_queue.ReadAllAsync(), count, (item, _) => Took(thread, item), Await))
            {
                Assert(_completing, $"T{thread}'s ReadAllAsync ended on a queue not completed");
                _ended++;
                _log.Append('T').Append(thread).Append(" read-all -> ended; ");
            }
        }

        private void Done(Step step)
        {
            if (step is Step.TryEnqueue or Step.EnqueueAsync or Step.CancellableEnqueueAsync)
            {
                Interlocked.Increment(ref _writersDone); // the cues for the advancing thread
            }
            else if (step is Step.TryDequeue or Step.DequeueAsync or Step.CancellableDequeueAsync or Step.ReadAll)
            {
                Interlocked.Increment(ref _readersDone);
            }
        }

        private void Took(int thread, int item)
        {
            long now = _clock.GetTimestamp();
            Assert(_earliest.TryGetValue(item, out long earliest), $"T{thread} took {item}, which was never written");
            Assert(now >= earliest, $"T{thread} took {item} at {now}, before its delay had passed ({earliest})");
            _out.Add(item);
            _taken++;
            _log.Append('T').Append(thread).Append(" took ").Append(item).Append("; ");
        }

        /// <summary>The polling await, naming the history when a wait outlasts every schedule's need.</summary>
        private T Await<T>(ValueTask<T> pending) =>
            ComposedRuns.Await(pending, polls => Assert(polls < 4000, $"a wait never ended (clock {_clock.GetTimestamp()}, count {_queue.Count}, completed {_queue.IsCompleted})"));

        public void Check()
        {
            s_taken += _taken;
            s_canceled += _canceled;
            s_ended += _ended;
            BackpressureStatistics before = _queue.GetStatistics();
            _clock.Advance(TimeSpan.FromTicks(1000));
            _wheel?.Advance();
            int drained = 0;
            while (_queue.TryDequeue(out int item))
            {
                _out.Add(item);
                drained++;
            }

            Assert(before.Remaining == drained, $"the statistics said {before.Remaining} remained; the drain found {drained}");
            var counts = _out.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
            foreach (var (value, n) in counts)
            {
                Assert(n == 1, $"item {value} came out {n} times");
                Assert(_placed.Contains(value), $"item {value} came out but was never accepted");
            }

            foreach (int value in _placed)
            {
                Assert(counts.ContainsKey(value), $"item {value} was accepted but lost");
            }

            Assert(before.Enqueued == _placed.Count, $"Enqueued {before.Enqueued}, but {_placed.Count} writes got in");
            Assert(before.Evicted == _evictions, $"Evicted {before.Evicted}, but {_evictions} writes evicted");
            Assert(before.DroppedIncoming == _dropped.Count, $"DroppedIncoming {before.DroppedIncoming}, but the callback got {_dropped.Count}");
            Assert(_scenario.Mode != OverflowPolicy.Reject || before.Rejected == _rejected, $"Rejected {before.Rejected}, but {_rejected} writes were refused");
            Assert(before.Enqueued == before.Dequeued + before.Evicted + before.Remaining, $"accounting: {before}");
            Assert(!_completed || _queue.Completion.IsCompleted, "the queue was completed and drained, but Completion did not complete");
            _wheel?.Dispose(); // its lanes on the worker threads let go of it
        }

        private void Assert(bool condition, string message)
        {
            if (!condition)
            {
                throw new CheckFailedException(message + "\nhistory: " + _log);
            }
        }
    }
}
