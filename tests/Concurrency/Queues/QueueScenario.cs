using System.Text;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>One call in a thread's program.</summary>
public readonly record struct QueueOp(QueueOpKind Kind, int Count = 1)
{
    /// <inheritdoc/>
    public override string ToString() => Kind is QueueOpKind.EnqueueMany or QueueOpKind.DequeueMany ? $"{Kind}({Count})" : Kind.ToString();

    /// <summary>Whether the op is a producer-side call.</summary>
    public bool IsProducer => Kind is QueueOpKind.Enqueue or QueueOpKind.EnqueueMany;
}

/// <summary>
/// A queue scenario: per logical thread a program of queue calls, in the roles the queue kind allows. The init
/// part builds the queue (optionally pre-filled), the parallel part runs the programs, the post part drains the
/// queue and checks exactly-once delivery, per-producer FIFO order per consumer, the capacity bound, peek
/// consistency, and linearizability of the recorded history.
/// </summary>
public sealed class QueueScenario
{
    /// <summary>Values are thread * ValueStride + sequence, so each names its producer.</summary>
    public const int ValueStride = 1000;

    public QueueScenario(QueueKind kind, int capacity, IReadOnlyList<QueueOp[]> threads, int prefill = 0)
    {
        Kind = kind;
        Capacity = capacity;
        Threads = threads;
        Prefill = prefill;
        Validate();
    }

    public QueueKind Kind { get; }

    public int Capacity { get; }

    public IReadOnlyList<QueueOp[]> Threads { get; }

    /// <summary>Items enqueued by the init part (values of "thread 0").</summary>
    public int Prefill { get; }

    /// <summary>When true, the post part of every scenario also runs <see cref="LinearizabilityChecker"/> on its history (the default of <see cref="Linearizability"/>).</summary>
    public static bool CheckLinearizability => true;

    /// <summary>Whether this scenario's post part checks linearizability (defaults to <see cref="CheckLinearizability"/>).</summary>
    public bool Linearizability { get; init; } = CheckLinearizability;

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder().Append(Kind).Append(" cap ").Append(Capacity);
        if (Prefill > 0)
        {
            sb.Append(" prefill ").Append(Prefill);
        }

        return sb.AppendThreads(Threads).ToString();
    }

    /// <summary>Explores the scenario; throws <see cref="ScheduleFailureException"/> on a failing schedule.</summary>
    public ExplorationResult Explore(Strategy strategy, int iterations, ExploreOptions? options = null) =>
        ScenarioRunner.Explore(ToString(), Threads.Count, () => new RunState(this), static (state, t) => state.RunThread(t), static state => state.Check(), strategy, iterations, options);

    private void Validate()
    {
        int producers = Threads.Count(p => p.Any(o => o.IsProducer)) + (Prefill > 0 ? 0 : 0);
        int consumers = Threads.Count(p => p.Any(o => !o.IsProducer));
        if (!Kind.MultiProducer() && producers > 1)
        {
            throw new ArgumentException($"{Kind} allows one producer thread, got {producers}.");
        }

        if (!Kind.MultiConsumer() && consumers > 1)
        {
            throw new ArgumentException($"{Kind} allows one consumer thread, got {consumers}.");
        }

        if (!Kind.CanPeek() && Threads.Any(p => p.Any(o => o.Kind == QueueOpKind.Peek)))
        {
            throw new ArgumentException($"{Kind} has no TryPeek (several consumers).");
        }
    }

    /// <summary>The state of one iteration.</summary>
    internal sealed class RunState
    {
        private readonly QueueScenario _scenario;
        private readonly ITestQueue _queue;
        private readonly List<int>[] _received; // per thread, in order; [0] = the post-part drain
        private readonly List<int> _enqueued = [];
        private readonly List<Operation<QueueInput, QueueOutput>> _history = [];
        private readonly StringBuilder _log = new();

        public RunState(QueueScenario scenario)
        {
            _scenario = scenario;
            _queue = TestQueues.Create(scenario.Kind, scenario.Capacity);
            _received = new List<int>[scenario.Threads.Count + 1];
            for (int t = 0; t < _received.Length; t++)
            {
                _received[t] = [];
            }

            for (int i = 0; i < scenario.Prefill; i++)
            {
                if (!_queue.TryEnqueue(i))
                {
                    throw new InvalidOperationException($"prefill {i} did not fit");
                }

                _enqueued.Add(i);
                _history.Add(new Operation<QueueInput, QueueOutput>(0, QueueInput.Enqueue(i), QueueOutput.Succeeded, -2 * (scenario.Prefill - i) - 1, -2 * (scenario.Prefill - i)));
            }
        }

        public IReadOnlyList<Operation<QueueInput, QueueOutput>> History => _history;

        public void RunThread(int thread)
        {
            int next = thread * ValueStride;
            int? peeked = null;
            foreach (QueueOp op in _scenario.Threads[thread - 1])
            {
                long call = ControlledScheduler.Now;
                QueueInput input;
                QueueOutput output;
                switch (op.Kind)
                {
                    case QueueOpKind.Enqueue:
                    {
                        int value = next++;
                        bool ok = _queue.TryEnqueue(value);
                        if (ok)
                        {
                            _enqueued.Add(value);
                        }

                        input = QueueInput.Enqueue(value);
                        output = ok ? QueueOutput.Succeeded : QueueOutput.Failed;
                        break;
                    }

                    case QueueOpKind.EnqueueMany:
                    {
                        var values = new int[op.Count];
                        var items = new object[op.Count];
                        for (int i = 0; i < op.Count; i++)
                        {
                            values[i] = next++;
                            items[i] = values[i];
                        }

                        int n = _queue.TryEnqueueMany(items);
                        Assert(n >= 0 && n <= op.Count, $"T{thread} EnqueueMany({op.Count}) returned {n}");
                        _enqueued.AddRange(values.Take(n));
                        input = QueueInput.EnqueueMany(values);
                        output = QueueOutput.Took(n);
                        break;
                    }

                    case QueueOpKind.Dequeue:
                    {
                        bool ok = _queue.TryDequeue(out object? item);
                        int[] got = ok ? [Value(thread, item)] : [];
                        Receive(thread, got, ref peeked);
                        input = QueueInput.Dequeue();
                        output = ok ? QueueOutput.Item(got[0]) : QueueOutput.Failed;
                        break;
                    }

                    case QueueOpKind.DequeueMany:
                    {
                        var buffer = new object[op.Count];
                        int n = _queue.TryDequeueMany(buffer);
                        Assert(n >= 0 && n <= op.Count, $"T{thread} DequeueMany({op.Count}) returned {n}");
                        int[] got = buffer.Take(n).Select(o => Value(thread, o)).ToArray();
                        Receive(thread, got, ref peeked);
                        input = QueueInput.DequeueMany(op.Count);
                        output = QueueOutput.Items(got);
                        break;
                    }

                    case QueueOpKind.Peek:
                    {
                        bool ok = _queue.TryPeek(out object? item);
                        int[] got = ok ? [Value(thread, item)] : [];
                        if (ok)
                        {
                            Assert(peeked is null || peeked == got[0], $"T{thread} peeked {got[0]} after peeking {peeked} with no dequeue between");
                            peeked = got[0];
                        }
                        else
                        {
                            Assert(peeked is null, $"T{thread} peek found the queue empty after peeking {peeked}");
                        }

                        input = QueueInput.Peek();
                        output = ok ? QueueOutput.Peeked(got[0]) : QueueOutput.Failed;
                        break;
                    }

                    default:
                        throw new InvalidOperationException(op.Kind.ToString());
                }

                _history.Add(new Operation<QueueInput, QueueOutput>(thread, input, output, call, ControlledScheduler.ReturnTime(windowFirst: true)));
                _log.Append("T").Append(thread).Append(' ').Append(input).Append(" -> ").Append(output).Append("; ");
            }
        }

        public void Check()
        {
            // Post part: drain what is left, single-threaded, until two answers in a row say empty (so a planted
            // spurious "empty" shows up in the exactness check below rather than as a lost item).
            long t0 = _history.Count == 0 ? 0 : _history.Max(o => o.Return) + 1;
            int? none = null;
            while (_queue.TryDequeue(out object? item) || _queue.TryDequeue(out item))
            {
                int value = Value(0, item);
                Receive(0, [value], ref none);
                _history.Add(new Operation<QueueInput, QueueOutput>(0, QueueInput.Dequeue(), QueueOutput.Item(value), t0, t0 + 1));
                t0 += 2;
            }

            Assert(_received[0].Count <= _queue.Capacity, $"the drain found {_received[0].Count} items in a queue of capacity {_queue.Capacity}");

            // Exactly once: what came out is what went in, each value once.
            var outCount = new Dictionary<int, int>();
            foreach (int v in _received.SelectMany(r => r))
            {
                outCount[v] = outCount.GetValueOrDefault(v) + 1;
            }

            foreach (var (v, n) in outCount)
            {
                Assert(n == 1, $"value {v} dequeued {n} times");
                Assert(_enqueued.Contains(v), $"value {v} dequeued but never successfully enqueued");
            }

            foreach (int v in _enqueued)
            {
                Assert(outCount.ContainsKey(v), $"value {v} enqueued but lost");
            }

            // FIFO per producer, per consumer stream; and the drain comes after everything consumers took.
            var lastTaken = new Dictionary<int, int>();
            for (int t = 1; t < _received.Length; t++)
            {
                var last = new Dictionary<int, int>();
                foreach (int v in _received[t])
                {
                    int producer = v / ValueStride;
                    Assert(!last.TryGetValue(producer, out int prev) || prev < v, $"T{t} received {v} after {prev} (producer {producer} FIFO)");
                    last[producer] = v;
                    lastTaken[producer] = Math.Max(lastTaken.GetValueOrDefault(producer, int.MinValue), v);
                }
            }

            var lastDrained = new Dictionary<int, int>();
            foreach (int v in _received[0])
            {
                int producer = v / ValueStride;
                Assert(!lastTaken.TryGetValue(producer, out int taken) || taken < v, $"drain found {v} after a consumer took {taken} (producer {producer} FIFO)");
                Assert(!lastDrained.TryGetValue(producer, out int prev) || prev < v, $"drain found {v} after {prev} (producer {producer} FIFO)");
                lastDrained[producer] = v;
            }

            CheckNoSpuriousFullOrEmpty();

            if (_scenario.Linearizability)
            {
                var result = LinearizabilityChecker.Check(new QueueSpec(_queue.Capacity, exactBatches: false), _history);
                Assert(result.IsLinearizable, "not linearizable: " + result.Explanation);
            }
        }

        /// <summary>
        /// A cheap necessary condition of linearizability that needs no search: an answer of "empty" is wrong if
        /// more items had certainly been enqueued (enqueue returned before the call) than could possibly have been
        /// dequeued (dequeue called before the return); "full" symmetrically. The design promises exact answers.
        /// </summary>
        private void CheckNoSpuriousFullOrEmpty()
        {
            static bool IsEnqueue(Operation<QueueInput, QueueOutput> o) => o.Input.Kind is QueueOpKind.Enqueue or QueueOpKind.EnqueueMany;
            static bool IsRemove(Operation<QueueInput, QueueOutput> o) => o.Input.Kind is QueueOpKind.Dequeue or QueueOpKind.DequeueMany;
            foreach (var op in _history)
            {
                if (op.Output.Ok || op.Input.Kind == QueueOpKind.EnqueueMany && op.Input.Values.Length == 0)
                {
                    continue;
                }

                if (IsEnqueue(op))
                {
                    long inPossible = _history.Where(e => e != op && IsEnqueue(e) && e.Call < op.Return).Sum(e => (long)e.Output.Count);
                    long outBefore = _history.Where(x => IsRemove(x) && x.Return < op.Call).Sum(x => (long)x.Output.Count);
                    Assert(inPossible - outBefore >= _queue.Capacity, $"T{op.Thread} {op.Input} answered full at steps {op.Call}..{op.Return}, but at most {inPossible - outBefore} of {_queue.Capacity} slots can have been taken");
                }
                else
                {
                    long inBefore = _history.Where(e => IsEnqueue(e) && e.Return < op.Call).Sum(e => (long)e.Output.Count);
                    long outPossible = _history.Where(x => x != op && IsRemove(x) && x.Call < op.Return).Sum(x => (long)x.Output.Count);
                    Assert(inBefore - outPossible <= 0, $"T{op.Thread} {op.Input} answered empty at steps {op.Call}..{op.Return}, but at least {inBefore - outPossible} items were certainly in the queue");
                }
            }
        }

        private int Value(int thread, object? item)
        {
            Assert(item is int, $"T{thread} received {(item is null ? "null" : item.GetType().Name)} instead of an item");
            return (int)item!;
        }

        private void Receive(int thread, int[] got, ref int? peeked)
        {
            if (peeked is { } p)
            {
                Assert(got.Length > 0 && got[0] == p, $"T{thread} dequeued [{string.Join(',', got)}] after peeking {p}");
                peeked = null;
            }

            _received[thread].AddRange(got);
        }

        private void Assert(bool condition, string message)
        {
            if (!condition)
            {
                throw new QueueCheckException($"{message}\n  scenario: {_scenario}\n  operations: {_log}\n  drained: [{string.Join(',', _received[0])}]");
            }
        }
    }
}

/// <summary>A queue check (exactly-once, FIFO, capacity, peek) failed.</summary>
public sealed class QueueCheckException(string message) : Exception(message);
