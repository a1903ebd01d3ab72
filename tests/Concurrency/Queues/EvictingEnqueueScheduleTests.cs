using System.Collections.Immutable;
using System.Text;
using LockFree.Internal;
using LockFree.Queues;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// <c>SequencedRing.EnqueueOrEvict</c>, the place-or-evict enqueue behind <see cref="OverflowPolicy.DropOldest"/>, under
/// the controlled scheduler: writers that evict race each other, readers (single and batch), an ordinary enqueue
/// (a writer with another policy on the same buffer) and, with many producers, the close. After every schedule: every
/// item placed comes out exactly once, read or evicted (the close aside, nothing else); each write evicts at most one
/// item; and the history is linearizable against <see cref="QueueSpec"/>'s atomic "place, or evict the oldest and
/// place" step. Proof of power: the two-step eviction the buffer used before (dequeue the head, then enqueue, again
/// while another writer takes the room) is reported as not linearizable, and so is the engine with
/// <see cref="PlantedFault.EvictSkipsPublishedCheck"/> (it evicts the oldest position before its item is published).
/// </summary>
public sealed class EvictingEnqueueScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 600;

    /// <summary>How a writer thread writes.</summary>
    public enum Writer
    {
        /// <summary>The engine's <c>EnqueueOrEvict</c>.</summary>
        Evicting,

        /// <summary>An ordinary <c>TryEnqueue</c> (another policy's writer on the same buffer).</summary>
        Ordinary,

        /// <summary>The planted twin: the buffer's eviction before session 16 (dequeue, then enqueue; again if the room was taken).</summary>
        TwoStep,

        /// <summary>An ordinary batch <c>TryEnqueueMany</c> of two items (another policy's batch writer on the same ring).</summary>
        OrdinaryMany,
    }

    /// <summary>A thread's program: writes (how, and how many) or reads (single or a batch of two).</summary>
    public sealed record Program(Writer? Writes = null, int Count = 1, bool Batch = false, bool Closes = false)
    {
        public override string ToString() => Closes ? "close" : Writes is { } w ? $"{w}x{Count}" : Batch ? $"read-many x{Count}" : $"read x{Count}";
    }

    public static TheoryData<string> Scenarios() => [.. All.Keys];

    private static readonly Dictionary<string, (bool ManyProducers, int Capacity, Program[] Threads)> All = new()
    {
        // Many producers: two evicting writers race for the room of one full ring, and a reader frees some.
        ["mpmc cap 1: evict, evict, read"] = (true, 1, [new(Writer.Evicting), new(Writer.Evicting), new(Count: 1)]),
        ["mpmc cap 2: evict x2, evict, read x2"] = (true, 2, [new(Writer.Evicting, 2), new(Writer.Evicting), new(Count: 2)]),
        ["mpmc cap 2: evict x2, ordinary, read-many"] = (true, 2, [new(Writer.Evicting, 2), new(Writer.Ordinary), new(Count: 1, Batch: true)]),
        ["mpmc cap 1: evict, evict, close"] = (true, 1, [new(Writer.Evicting), new(Writer.Evicting), new(Closes: true)]),
        ["mpmc cap 2: evict x2, evict x2, evict"] = (true, 2, [new(Writer.Evicting, 2), new(Writer.Evicting, 2), new(Writer.Evicting)]),
        ["mpmc cap 1: evict x2, evict, evict, read"] = (true, 1, [new(Writer.Evicting, 2), new(Writer.Evicting), new(Writer.Evicting), new(Count: 1)]),

        // One producer (the SPMC engine of a single-writer DropOldest buffer): its claim is an early tail store.
        ["spmc cap 1: evict x2, read, read"] = (false, 1, [new(Writer.Evicting, 2), new(Count: 1), new(Count: 1)]),
        ["spmc cap 2: evict x3, read x2, read-many"] = (false, 2, [new(Writer.Evicting, 3), new(Count: 2), new(Count: 1, Batch: true)]),

        // Review (s16): ordinary batch writers and single writers meeting a handed slot or a tail one past full; more
        // evicting writers on larger rings; the close racing evictions with a reader.
        ["mpmc cap 2: evict x2, evict x2, ordinary-many, read"] = (true, 2, [new(Writer.Evicting, 2), new(Writer.Evicting, 2), new(Writer.OrdinaryMany), new(Count: 1)]),
        ["mpmc cap 2: evict x2, ordinary-many x2, read-many x2"] = (true, 2, [new(Writer.Evicting, 2), new(Writer.OrdinaryMany, 2), new(Count: 2, Batch: true)]),
        ["mpmc cap 1: evict x2, evict x2, ordinary x2, read"] = (true, 1, [new(Writer.Evicting, 2), new(Writer.Evicting, 2), new(Writer.Ordinary, 2), new(Count: 1)]),
        ["mpmc cap 4: evict x3, evict x3, evict x2, read-many"] = (true, 4, [new(Writer.Evicting, 3), new(Writer.Evicting, 3), new(Writer.Evicting, 2), new(Count: 1, Batch: true)]),
        ["mpmc cap 2: evict x2, evict, evict, evict"] = (true, 2, [new(Writer.Evicting, 2), new(Writer.Evicting), new(Writer.Evicting), new(Writer.Evicting)]),
        ["mpmc cap 2: evict x2, evict x2, read x2, close"] = (true, 2, [new(Writer.Evicting, 2), new(Writer.Evicting, 2), new(Count: 2), new(Closes: true)]),
        ["mpmc cap 1: evict x2, ordinary-many, read-many, read"] = (true, 1, [new(Writer.Evicting, 2), new(Writer.OrdinaryMany), new(Count: 1, Batch: true), new(Count: 1)]),
        ["spmc cap 2: evict x4, read-many x2, read x2"] = (false, 2, [new(Writer.Evicting, 4), new(Count: 2, Batch: true), new(Count: 2)]),
        ["spmc cap 4: evict x5, read-many, read x2"] = (false, 4, [new(Writer.Evicting, 5), new(Count: 1, Batch: true), new(Count: 2)]),
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Explore_RealEngine_LinearizableAndEveryItemOnce(string scenario)
    {
        var (many, capacity, threads) = All[scenario];
        long schedules = 0;
        Array.Clear(Outcomes);
        Func<Strategy>[] strategies = CiStrategies.Standard(1600 + scenario.Length);
        foreach (Func<Strategy> make in strategies)
        {
            ExplorationResult r = Explore(make(), many, capacity, threads, PlantedFault.None, ExplorationBudget.Schedules(PerStrategy));
            schedules += r.Iterations;
            output.WriteLine($"{scenario}: {r.Strategy} {r.Iterations} schedules{(r.Exhausted ? " (exhausted)" : "")}, max {r.MaxSteps} steps, {r.Elapsed.TotalMilliseconds:F0} ms");
        }

        output.WriteLine($"outcomes: placed {Outcomes[0]}, placed evicting {Outcomes[1]}, closed {Outcomes[2]}");
        Assert.True(schedules >= 4, scenario);

        // The races happened: some writes evicted, and (with a reader or the close) some found room or the close instead.
        Assert.True(Outcomes[(int)EvictingEnqueue.PlacedEvicting] > 0, "no write evicted");
        if (threads.Any(p => p.Closes || (p.Writes is null)))
        {
            Assert.True(Outcomes[(int)EvictingEnqueue.Placed] + Outcomes[(int)EvictingEnqueue.Closed] > 0, "every write evicted: no race with a reader or the close");
        }
        if (threads.Any(p => p.Closes))
        {
            Assert.True(Outcomes[(int)EvictingEnqueue.Closed] > 0, "no write met the close");
        }
    }

    [Fact]
    public void Explore_TwoStepEviction_IsNotLinearizable()
    {
        // The old buffer path, two writers on a full ring of one: one write's eviction makes room the other takes.
        Program[] threads = [new(Writer.TwoStep), new(Writer.TwoStep), new(Count: 1)];
        AssertFound("two-step eviction", true, 1, threads, PlantedFault.None, "not linearizable");
    }

    [Fact]
    public void Explore_TwoStepEvictionOneWriter_IsNotLinearizable()
    {
        // One writer too: a reader frees a slot between the write's failed enqueue and its eviction, which goes ahead.
        Program[] threads = [new(Writer.TwoStep, 2), new(Count: 1), new(Count: 1)];
        AssertFound("two-step eviction, one writer", false, 1, threads, PlantedFault.None, "not linearizable");
    }

    [Fact]
    public void Explore_HelperHandsAFreeSlot_IsFoundAsALostItem()
    {
        // Three writers on a full ring of one: while one's claim past full is still to take its oldest item, the others
        // evict it for it (helping). A helper that releases the slot as plainly free makes the owner place without the
        // displaced item, which is then lost: only helping reaches this, so finding it shows the scenario helps.
        Program[] threads = [new(Writer.Evicting, 2), new(Writer.Evicting), new(Writer.Evicting)];
        AssertFound("helper hands a free slot", true, 1, threads, PlantedFault.HelperHandsAFreeSlot, "lost");
    }

    [Fact]
    public void Explore_EvictionBeforeThePublish_IsFound()
    {
        // The oldest position's producer is still between its claim and its publish when the evictor takes the head.
        Program[] threads = [new(Writer.Ordinary, 2), new(Writer.Evicting, 2), new(Count: 1)];
        AssertFound("evict skips the published check", true, 1, threads, PlantedFault.EvictSkipsPublishedCheck, null);
    }

    private void AssertFound(string name, bool many, int capacity, Program[] threads, PlantedFault faults, string? expected)
    {
        var found = new List<string>();
        int strategiesFinding = 0;
        foreach (Func<Strategy> make in CiStrategies.Standard(77))
        {
            Strategy strategy = make();
            try
            {
                Explore(strategy, many, capacity, threads, faults, 2000);
                found.Add($"{strategy.Name}: not found");
            }
            catch (ScheduleFailureException failure)
            {
                strategiesFinding++;
                string message = failure.InnerException!.Message;
                Assert.True(expected is null || message.Contains(expected, StringComparison.Ordinal), message);
                found.Add($"{strategy.Name}: schedule {failure.Iteration + 1} ({message.Split('\n')[0]})");
            }
        }

        output.WriteLine($"{name}: " + string.Join("; ", found) );
        Assert.True(strategiesFinding > 0, $"{name}: no strategy found it");
    }

    private static ExplorationResult Explore(Strategy strategy, bool many, int capacity, Program[] threads, PlantedFault faults, int budget, bool tso = false)
    {
        var bodies = new Action<IRun>[threads.Length];
        for (int t = 0; t < threads.Length; t++)
        {
            int thread = t + 1;
            bodies[t] = run => run.RunThread(thread);
        }

        string name = $"{(many ? "mpmc" : "spmc")} cap {capacity}: {string.Join(" | ", threads.Select(p => p.ToString()))}";
        return ControlledTest.Explore<IRun>(
            strategy,
            budget,
            () => many ? new Run<MultiRole>(capacity, threads) : new Run<SingleRole>(capacity, threads),
            bodies,
            run => run.Check(),
            new ExploreOptions { Faults = faults, Name = name + (tso ? " (TSO)" : string.Empty) }.WithTso(tso));
    }

    /// <summary>Every scenario on the real engine under x86-TSO (from <see cref="QueueTsoScheduleTests"/>, whose collection runs alone).</summary>
    internal static void ExploreUnderTso(string scenario, Action<string> output, int budget)
    {
        var (many, capacity, threads) = All[scenario];
        foreach (Func<Strategy> make in CiStrategies.Standard(1700 + scenario.Length))
        {
            ExplorationResult r = Explore(make(), many, capacity, threads, PlantedFault.None, budget, tso: true);
            output($"{scenario} (TSO): {r.Strategy} {r.Iterations} schedules, max {r.MaxSteps} steps");
        }
    }

    /// <summary>Outcomes of the real engine's evicting writes over an exploration, by <see cref="EvictingEnqueue"/> value (the tests of this class run one at a time).</summary>
    private static readonly long[] Outcomes = new long[3];


    private interface IRun
    {
        void RunThread(int thread);

        void Check();
    }

    private sealed class Run<TProducers> : IRun
        where TProducers : struct, IRolePolicy
    {
        private const int Stride = 1000;
        private SequencedRing<object, TestAtomics, TProducers, MultiRole> _ring;
        private readonly int _capacity;
        private readonly Program[] _threads;
        private readonly List<Operation<QueueInput, QueueOutput>> _history = [];
        private readonly List<int> _placed = [];
        private readonly List<int> _out = []; // read or evicted, in any order
        private readonly StringBuilder _log = new();
        private bool _closed;

        public Run(int capacity, Program[] threads)
        {
            _ring = new(capacity);
            _capacity = capacity;
            _threads = threads;
            for (int i = 0; i < capacity; i++)
            {
                if (!_ring.TryEnqueue(i))
                {
                    throw new InvalidOperationException("prefill");
                }

                _placed.Add(i);
                _history.Add(new(0, QueueInput.Enqueue(i), QueueOutput.Succeeded, -2 * (capacity - i) - 1, -2 * (capacity - i)));
            }
        }

        public void RunThread(int thread)
        {
            Program program = _threads[thread - 1];
            if (program.Closes)
            {
                _ring.CloseProducers();
                _closed = true;
                return;
            }

            for (int i = 0; i < program.Count; i++)
            {
                long call = ControlledScheduler.Now;
                QueueInput input;
                QueueOutput result;
                if (program.Writes is { } how)
                {
                    int value = (thread * Stride) + (10 * i);
                    if (how == Writer.OrdinaryMany)
                    {
                        int n = _ring.TryEnqueueMany(new object[] { value, value + 1 });
                        for (int k = 0; k < n; k++)
                        {
                            _placed.Add(value + k);
                        }

                        input = QueueInput.EnqueueMany(value, value + 1);
                        result = QueueOutput.Took(n);
                        _history.Add(new(thread, input, result, call, ControlledScheduler.ReturnTime(windowFirst: true)));
                        _log.Append('T').Append(thread).Append(' ').Append(input).Append(" -> ").Append(result).Append("; ");
                        continue;
                    }

                    input = how == Writer.Ordinary ? QueueInput.Enqueue(value) : QueueInput.EnqueueOrEvict(value);
                    result = Write(how, value);
                    if (result.Ok)
                    {
                        _placed.Add(value);
                    }
                    else if (how != Writer.Ordinary)
                    {
                        continue; // closed: the spec does not model the close; checked below instead
                    }
                }
                else if (program.Batch)
                {
                    var buffer = new object[2];
                    int n = _ring.TryDequeueMany(buffer);
                    int[] got = buffer.Take(n).Select(o => (int)o).ToArray();
                    _out.AddRange(got);
                    input = QueueInput.DequeueMany(2);
                    result = QueueOutput.Items(got);
                }
                else
                {
                    bool ok = _ring.TryDequeue(out object? item);
                    if (ok)
                    {
                        _out.Add((int)item!);
                    }

                    input = QueueInput.Dequeue();
                    result = ok ? QueueOutput.Item((int)item!) : QueueOutput.Failed;
                }

                _history.Add(new(thread, input, result, call, ControlledScheduler.ReturnTime(windowFirst: true)));
                _log.Append('T').Append(thread).Append(' ').Append(input).Append(" -> ").Append(result).Append("; ");
            }
        }

        private QueueOutput Write(Writer how, int value)
        {
            switch (how)
            {
                case Writer.Ordinary:
                    return _ring.TryEnqueue(value) ? QueueOutput.Succeeded : QueueOutput.Failed;

                case Writer.Evicting:
                {
                    EvictingEnqueue outcome = _ring.EnqueueOrEvict(value, out object? evicted);
                    Outcomes[(int)outcome]++;
                    if (outcome == EvictingEnqueue.PlacedEvicting)
                    {
                        if (evicted is null)
                        {
                            throw new InvalidOperationException($"the write of {value} evicted an empty slot (an item not yet published)\nhistory: {_log}");
                        }

                        _out.Add((int)evicted);
                        return QueueOutput.PlacedEvicting((int)evicted!);
                    }

                    return outcome == EvictingEnqueue.Placed ? QueueOutput.Succeeded : QueueOutput.Failed;
                }

                default:
                {
                    // The twin: the buffer's DropOldest path before session 16.
                    int? first = null;
                    while (!_ring.TryEnqueueWithoutPolls(value)) // as the buffer's Enqueue on these engines
                    {
                        if (_ring.IsClosed)
                        {
                            return QueueOutput.Failed;
                        }

                        if (_ring.TryDequeue(out object? oldest))
                        {
                            _out.Add((int)oldest);
                            first ??= (int)oldest;
                        }
                    }

                    return first is { } f ? QueueOutput.PlacedEvicting(f) : QueueOutput.Succeeded;
                }
            }
        }

        public void Check()
        {
            long t0 = _history.Max(o => o.Return) + 1;
            int drained = 0;
            while (_ring.TryDequeue(out object? item))
            {
                _out.Add((int)item);
                drained++;
                _history.Add(new(0, QueueInput.Dequeue(), QueueOutput.Item((int)item), t0, t0 + 1));
                t0 += 2;
            }

            Assert(drained <= _capacity, $"the drain found {drained} items in a ring of capacity {_capacity}");
            var counts = _out.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
            foreach (var (value, n) in counts)
            {
                Assert(n == 1, $"item {value} came out {n} times");
                Assert(_placed.Contains(value), $"item {value} came out but was never placed");
            }

            foreach (int value in _placed)
            {
                Assert(counts.ContainsKey(value), $"item {value} was placed but lost");
            }

            if (_closed)
            {
                Assert(_ring.IsClosed && _ring.EnqueueOrEvict(-1, out _) == EvictingEnqueue.Closed, "an evicting enqueue after the close did not answer Closed");
                return; // the spec does not model the close's answers
            }

            var result = LinearizabilityChecker.Check(new QueueSpec(_capacity, exactBatches: false), _history);
            Assert(result.IsLinearizable, "not linearizable: " + result.Explanation);
        }

        private void Assert(bool condition, string message)
        {
            if (!condition)
            {
                throw new InvalidOperationException(message + "\nhistory: " + _log);
            }
        }
    }
}
