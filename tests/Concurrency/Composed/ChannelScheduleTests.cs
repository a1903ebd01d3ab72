using System.Text;
using System.Threading.Channels;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// The <see cref="Channel{T}"/> adapter under the controlled scheduler: <see cref="LockFreeChannel"/> here is the composed
/// build (the library's adapter and buffer sources on <see cref="TestAtomics"/>, Composed/README.md), driven only through
/// <see cref="ChannelWriter{T}"/> and <see cref="ChannelReader{T}"/> in the shapes users write: <c>WriteAsync</c>,
/// <c>TryWrite</c>, the <c>WaitToWriteAsync</c>/<c>TryWrite</c> loop, <c>ReadAsync</c>, the
/// <c>WaitToReadAsync</c>/<c>TryRead</c> loop, and <c>TryComplete</c>. After every schedule: no lost wake-up; every
/// written item read exactly once (or left for the drain); a call that threw <see cref="ChannelClosedException"/> left no
/// item; <c>Completion</c> never completes while items remain, and completes once a completed channel is drained; and,
/// without completion, the history is linearizable against <see cref="QueueSpec"/>.
/// </summary>
public sealed class ChannelScheduleTests(ITestOutputHelper output)
{
    private const int PerStrategy = 300;

    /// <summary>What a thread does through the channel's reader or writer.</summary>
    public enum Step
    {
        /// <summary><c>Writer.WriteAsync(item)</c>.</summary>
        WriteAsync,

        /// <summary><c>Writer.TryWrite(item)</c>.</summary>
        TryWrite,

        /// <summary><c>while (await WaitToWriteAsync()) if (TryWrite(item)) break;</c></summary>
        WaitToWrite,

        /// <summary><c>Reader.ReadAsync()</c>: throws <see cref="ChannelClosedException"/> once completed and drained.</summary>
        ReadAsync,

        /// <summary><c>Reader.TryRead(out item)</c>.</summary>
        TryRead,

        /// <summary><c>while (!TryRead(out item)) if (!await WaitToReadAsync()) return;</c></summary>
        WaitToRead,

        /// <summary><c>Writer.TryComplete()</c>.</summary>
        Complete,

        /// <summary><c>Writer.WriteAsync(item, token)</c> with the run's shared token: cancelled, it leaves no item.</summary>
        CancellableWriteAsync,

        /// <summary><c>Reader.ReadAsync(token)</c> with the run's shared token: cancelled, it takes nothing.</summary>
        CancellableReadAsync,

        /// <summary>Cancels the run's shared token.</summary>
        Cancel,

        /// <summary><c>await foreach (item in Reader.ReadAllAsync())</c>: <c>Count</c> items through one enumerator, then disposed; ends early once completed and drained.</summary>
        ReadAll,

        /// <summary><c>Writer.TryComplete(error)</c>: once drained, reads end with the error (<c>ReadAsync</c>: <see cref="ChannelClosedException"/> around it) and <c>Completion</c> faults with it.</summary>
        CompleteWithError,
    }

    public sealed record Program(Step Step, int Count = 1)
    {
        public override string ToString() => Count == 1 ? Step.ToString() : $"{Step} x{Count}";
    }

    public sealed record Scenario(int Capacity, bool SingleWriter, bool SingleReader, int Prefill, Program[] Threads, OverflowPolicy Mode = OverflowPolicy.Wait);

    public static TheoryData<string> Scenarios() => [.. All.Keys];

    // Every waiting reader is owed its items and every waiting writer its room, whatever the racing calls do.
    internal static readonly Dictionary<string, Scenario> All = new()
    {
        ["spsc cap 1: write-async x3 | read-async x3"] = new(1, true, true, 0, [new(Step.WriteAsync, 3), new(Step.ReadAsync, 3)]),
        ["spsc cap 1: wait-to-write x3 | wait-to-read x3"] = new(1, true, true, 0, [new(Step.WaitToWrite, 3), new(Step.WaitToRead, 3)]),
        ["mpsc cap 1: write-async x2 | wait-to-write x2 | wait-to-read x4"] = new(1, false, true, 0, [new(Step.WriteAsync, 2), new(Step.WaitToWrite, 2), new(Step.WaitToRead, 4)]),
        ["spmc cap 1: write-async x3 | read-async x2 | wait-to-read"] = new(1, true, false, 0, [new(Step.WriteAsync, 3), new(Step.ReadAsync, 2), new(Step.WaitToRead)]),
        ["mpmc cap 1: write-async x2 | wait-to-write x2 | read-async x2 | wait-to-read x2"] = new(1, false, false, 0, [new(Step.WriteAsync, 2), new(Step.WaitToWrite, 2), new(Step.ReadAsync, 2), new(Step.WaitToRead, 2)]),
        ["mpmc cap 2 drop-oldest full: try-write x2 | try-write x2 | wait-to-read x2"] = new(2, false, false, 2, [new(Step.TryWrite, 2), new(Step.TryWrite, 2), new(Step.WaitToRead, 2)], OverflowPolicy.DropOldest),

        // Cancellation through the adapter racing wake-ups (a blocking call is owed its items and room whatever the
        // cancellable ones do): a cancelled write leaves no item, a cancelled read takes nothing.
        ["spsc cap 1 full: cancellable-write-async x2 | read-async | cancel"] = new(1, true, true, 1, [new(Step.CancellableWriteAsync, 2), new(Step.ReadAsync), new(Step.Cancel)]),
        ["mpmc cap 1 full: cancellable-write-async | cancellable-write-async | read-async | cancel"] = new(1, false, false, 1, [new(Step.CancellableWriteAsync), new(Step.CancellableWriteAsync), new(Step.ReadAsync), new(Step.Cancel)]),
        ["spmc cap 1: cancellable-read-async | read-async | write-async x2 | cancel"] = new(1, true, false, 0, [new(Step.CancellableReadAsync), new(Step.ReadAsync), new(Step.WriteAsync, 2), new(Step.Cancel)]),
        ["mpsc cap 1: cancellable-read-async x2 | write-async | cancel"] = new(1, false, true, 0, [new(Step.CancellableReadAsync, 2), new(Step.WriteAsync), new(Step.Cancel)]),

        // Completion: racing writers get ChannelClosedException (leaving no item) or get in; readers drain, then end.
        ["spsc cap 1 full: write-async x2 | wait-to-read x3 | complete"] = new(1, true, true, 1, [new(Step.WriteAsync, 2), new(Step.WaitToRead, 3), new(Step.Complete)]),
        ["mpsc cap 1: wait-to-read x2 | wait-to-write | complete"] = new(1, false, true, 0, [new(Step.WaitToRead, 2), new(Step.WaitToWrite), new(Step.Complete)]),
        ["spmc cap 1 full: write-async | read-async x2 | wait-to-read | complete"] = new(1, true, false, 1, [new(Step.WriteAsync), new(Step.ReadAsync, 2), new(Step.WaitToRead), new(Step.Complete)]),
        ["mpmc cap 1 full: write-async | wait-to-write | read-async x2 | wait-to-read x2 | complete"] = new(1, false, false, 1, [new(Step.WriteAsync), new(Step.WaitToWrite), new(Step.ReadAsync, 2), new(Step.WaitToRead, 2), new(Step.Complete)]),

        // ReadAllAsync (session 18; the base class's iterator over the adapter's WaitToReadAsync and TryRead): a wake-up
        // runs the iterator's next steps on the waking thread, as a pool thread would; it ends once completed and drained.
        ["spsc cap 1: write-async x3 | read-all x3"] = new(1, true, true, 0, [new(Step.WriteAsync, 3), new(Step.ReadAll, 3)]),
        ["mpmc cap 1: write-async x2 | wait-to-write x2 | read-all x2 | read-all x2"] = new(1, false, false, 0, [new(Step.WriteAsync, 2), new(Step.WaitToWrite, 2), new(Step.ReadAll, 2), new(Step.ReadAll, 2)]),
        ["mpsc cap 1 full: write-async | wait-to-write | read-all x4 | complete"] = new(1, false, true, 1, [new(Step.WriteAsync), new(Step.WaitToWrite), new(Step.ReadAll, 4), new(Step.Complete)]),
        ["spmc cap 1: read-all x2 | read-all x2 | write-async x2 | complete"] = new(1, true, false, 0, [new(Step.ReadAll, 2), new(Step.ReadAll, 2), new(Step.WriteAsync, 2), new(Step.Complete)]),
        // (With the dropping modes a reader is owed one item only: a full channel keeps one whatever the writes do.)
        ["mpmc cap 1 drop-oldest full: try-write x2 | try-write | read-all"] = new(1, false, false, 1, [new(Step.TryWrite, 2), new(Step.TryWrite), new(Step.ReadAll)], OverflowPolicy.DropOldest),
        ["mpsc cap 1 drop-incoming: try-write x2 | try-write x2 | read-all"] = new(1, false, true, 0, [new(Step.TryWrite, 2), new(Step.TryWrite, 2), new(Step.ReadAll)], OverflowPolicy.DropIncoming),

        // Completion with an error (session 18): writers racing it get ChannelClosedException around the error (or get in);
        // readers drain what is left, then see the error (ReadAsync: ChannelClosedException around it; WaitToReadAsync
        // and ReadAllAsync: the error itself), and Completion faults with it once drained.
        ["spsc cap 1 full: write-async x2 | wait-to-read x3 | complete-with-error"] = new(1, true, true, 1, [new(Step.WriteAsync, 2), new(Step.WaitToRead, 3), new(Step.CompleteWithError)]),
        ["mpmc cap 1: read-all x2 | read-async x2 | write-async | wait-to-write | complete-with-error"] = new(1, false, false, 0, [new(Step.ReadAll, 2), new(Step.ReadAsync, 2), new(Step.WriteAsync), new(Step.WaitToWrite), new(Step.CompleteWithError)]),
    };

    private static long s_closedWrites;
    private static long s_cancellations;
    private static long s_endedReads;

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Explore_ChannelAdapter_ContractHoldsInEverySchedule(string name)
    {
        Scenario scenario = All[name];
        s_closedWrites = s_endedReads = s_cancellations = 0;
        ComposedRuns.ExploreStandard(output.WriteLine, name, 3600 + name.Length, ExplorationBudget.Schedules(PerStrategy), (strategy, budget) => Explore(strategy, name, scenario, PlantedFault.None, budget));

        output.WriteLine($"writes closed {s_closedWrites}, reads ended by the completion {s_endedReads}, calls cancelled {s_cancellations}");
        if (scenario.Threads.Any(p => p.Step == Step.Cancel))
        {
            Assert.True(s_cancellations > 0, "no call was cancelled");
        }

        if (scenario.Threads.Any(p => p.Step == Step.Complete))
        {
            Assert.True(s_endedReads > 0, "no read met the completion");
            if (scenario.Prefill > 0)
            {
                Assert.True(s_closedWrites > 0, "no write met the completion");
            }
        }
    }

    [Fact]
    public void Explore_ChannelOverAWriterThatParksWithoutRecheck_IsFound()
    {
        // The checker's proof of power through the adapter: the buffer's planted lost wake-up, reached by WriteAsync.
        Scenario scenario = new(1, true, true, 1, [new(Step.WriteAsync), new(Step.WaitToRead, 2)]);
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "channel, park without recheck",
            95,
            PlantedFault.WriterParksWithoutRecheck,
            (strategy, fault, budget) => Explore(strategy, "channel: park without recheck", scenario, fault, budget));
    }

    [Fact]
    public void Explore_ReadAllOverAReaderThatParksWithoutRecheck_IsFound()
    {
        // ReadAllAsync's wait is the buffer's WaitToReadAsync: planted, it links its waiter and parks without looking
        // again, so an item written before the park was visible (its writer saw no reader to wake) is never read, and the
        // writer waits for room that never comes: the polling awaits spin for ever (a livelock).
        Scenario scenario = All["spsc cap 1: write-async x3 | read-all x3"];
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "read-all, park without recheck",
            96,
            PlantedFault.ReaderParksWithoutRecheck,
            (strategy, fault, budget) => Explore(strategy, "channel read-all: park without recheck", scenario, fault, budget),
            failure => Assert.Contains("livelock", failure.Message, StringComparison.OrdinalIgnoreCase));
    }

    internal static ExplorationResult Explore(Strategy strategy, string name, Scenario scenario, PlantedFault faults, int budget, bool storeBuffers = false) =>
        ControlledTest.Explore(strategy, budget, () => new Run(scenario), ComposedRuns.Bodies<Run>(scenario.Threads.Length, (run, thread) => run.RunThread(thread)), run => run.Check(), new ExploreOptions { Name = name, Faults = faults }.WithTso(storeBuffers));

    private sealed class Run
    {
        private const int Stride = 1000;
        private readonly Scenario _scenario;
        private readonly Channel<int> _channel;
        private readonly List<Operation<QueueInput, QueueOutput>> _history = [];
        private readonly List<int> _placed = [];
        private readonly List<int> _out = [];
        private readonly List<int> _closed = [];
        private readonly StringBuilder _log = new();
        private int _ended;
        private readonly CancellationTokenSource _cancel = new();
        private int _cancellations;
        private bool _completing;
        private bool _completed;
        private bool _completingWithError; // set before TryComplete(_error)
        private readonly InvalidOperationException _error = new("the producer failed");

        public Run(Scenario scenario)
        {
            _scenario = scenario;
            _channel = LockFreeChannel.CreateBounded<int>(
                new LockFreeChannelOptions { Capacity = scenario.Capacity, SingleWriter = scenario.SingleWriter, SingleReader = scenario.SingleReader, FullMode = scenario.Mode },
                (item, _) => _out.Add(item)); // evicted (DropOldest): out, exactly once like a read
            for (int i = 0; i < scenario.Prefill; i++)
            {
                if (!_channel.Writer.TryWrite(i))
                {
                    throw new InvalidOperationException("prefill");
                }

                _placed.Add(i);
                _history.Add(new(0, QueueInput.Enqueue(i), QueueOutput.Succeeded, -2 * (scenario.Prefill - i) - 1, -2 * (scenario.Prefill - i)));
            }
        }

        public void RunThread(int thread)
        {
            Program program = _scenario.Threads[thread - 1];
            ChannelWriter<int> writer = _channel.Writer;
            ChannelReader<int> reader = _channel.Reader;
            if (program.Step == Step.ReadAll)
            {
                ReadAll(thread, reader, program.Count);
                return;
            }

            for (int i = 0; i < program.Count; i++)
            {
                long call = ControlledScheduler.Now;
                int value = (thread * Stride) + i;
                QueueInput input;
                QueueOutput result;
                switch (program.Step)
                {
                    case Step.Cancel:
                        _cancel.Cancel();
                        _log.Append('T').Append(thread).Append(" cancel; ");
                        return;

                    case Step.Complete:
                        _completing = true; // before the call: a racing write may see the closure before it returns
                        writer.TryComplete();
                        _completed = true;
                        _log.Append('T').Append(thread).Append(" complete; ");
                        return;

                    case Step.CompleteWithError:
                        _completing = _completingWithError = true;
                        writer.TryComplete(_error);
                        _completed = true;
                        _log.Append('T').Append(thread).Append(" complete with an error; ");
                        return;

                    case Step.WriteAsync:
                    case Step.TryWrite:
                    case Step.WaitToWrite:
                    case Step.CancellableWriteAsync:
                    {
                        bool ok;
                        try
                        {
                            ok = program.Step switch
                            {
                                Step.WriteAsync => ComposedRuns.Await(writer.WriteAsync(value)),
                                Step.TryWrite => writer.TryWrite(value),
                                Step.CancellableWriteAsync => ComposedRuns.Await(writer.WriteAsync(value, _cancel.Token)),
                                _ => WaitThenWrite(writer, value),
                            };
                        }
                        catch (OperationCanceledException)
                        {
                            _closed.Add(value); // no trace, as a write refused by the completion
                            _cancellations++;
                            _log.Append('T').Append(thread).Append(" write ").Append(value).Append(" -> canceled; ");
                            continue;
                        }
                        catch (ChannelClosedException closed)
                        {
                            Assert(_completing, $"T{thread}'s write of {value} threw ChannelClosedException before any completion");
                            Assert(ReferenceEquals(closed.InnerException, _completingWithError ? _error : null), $"T{thread}'s write of {value} threw ChannelClosedException around {closed.InnerException?.Message ?? "nothing"}");
                            _closed.Add(value);
                            _log.Append('T').Append(thread).Append(" write ").Append(value).Append(" -> closed; ");
                            continue;
                        }
                        catch (InvalidOperationException error) when (ReferenceEquals(error, _error))
                        {
                            Assert(program.Step == Step.WaitToWrite, $"T{thread}'s {program.Step} threw the completion's error itself"); // WaitToWriteAsync faults with it, as the BCL's
                            _closed.Add(value);
                            _log.Append('T').Append(thread).Append(" write ").Append(value).Append(" -> the error; ");
                            continue;
                        }

                        if (ok)
                        {
                            _placed.Add(value);
                        }
                        else if (program.Step == Step.WaitToWrite)
                        {
                            _closed.Add(value); // WaitToWriteAsync answered false: completed
                            _log.Append('T').Append(thread).Append(" write ").Append(value).Append(" -> wait false; ");
                            continue;
                        }

                        input = QueueInput.Enqueue(value);
                        result = ok ? QueueOutput.Succeeded : QueueOutput.Failed;
                        break;
                    }

                    default:
                    {
                        bool ok;
                        int item;
                        try
                        {
                            ok = program.Step switch
                            {
                                Step.ReadAsync => ReadAsync(thread, reader, out item),
                                Step.TryRead => reader.TryRead(out item),
                                Step.CancellableReadAsync => ReadAsync(thread, reader, out item, _cancel.Token),
                                _ => WaitThenRead(reader, out item),
                            };
                        }
                        catch (OperationCanceledException)
                        {
                            _cancellations++;
                            _log.Append('T').Append(thread).Append(" read -> canceled; ");
                            continue; // took nothing: an item it had taken would be missing in Check
                        }
                        catch (ChannelClosedException)
                        {
                            Assert(false, $"T{thread}'s read threw ChannelClosedException from its wait");
                            throw;
                        }
                        catch (InvalidOperationException error) when (ReferenceEquals(error, _error))
                        {
                            Assert(program.Step == Step.WaitToRead, $"T{thread}'s {program.Step} threw the completion's error itself");
                            _ended++;
                            _log.Append('T').Append(thread).Append(" read -> the error; ");
                            return; // completed with the error and drained
                        }

                        if (!ok && program.Step != Step.TryRead)
                        {
                            Assert(_completing, $"T{thread}'s {program.Step} ended on a channel not completed");
                            _ended++;
                            _log.Append('T').Append(thread).Append(" read -> ended; ");
                            return; // completed and drained
                        }

                        if (ok)
                        {
                            _out.Add(item);
                        }

                        input = QueueInput.Dequeue();
                        result = ok ? QueueOutput.Item(item) : QueueOutput.Failed;
                        break;
                    }
                }

                _history.Add(new(thread, input, result, call, ControlledScheduler.ReturnTime(windowFirst: true)));
                _log.Append('T').Append(thread).Append(' ').Append(input).Append(" -> ").Append(result).Append("; ");
            }
        }

        private void ReadAll(int thread, ChannelReader<int> reader, int count)
        {
            bool all = ComposedRuns.ReadAll(
                reader.ReadAllAsync(),
                count,
                (item, call) =>
                {
                    _out.Add(item);
                    _history.Add(new(thread, QueueInput.Dequeue(), QueueOutput.Item(item), call, ControlledScheduler.ReturnTime(windowFirst: true)));
                    _log.Append('T').Append(thread).Append(" read-all -> ").Append(item).Append("; ");
                },
                endedBy: error => ReferenceEquals(error, _error)); // completed with the error: the iterator throws it once drained
            if (!all)
            {
                Assert(_completing, $"T{thread}'s ReadAllAsync ended on a channel not completed");
                _ended++;
                _log.Append('T').Append(thread).Append(" read-all -> ended; ");
            }
        }

        private static bool WaitThenWrite(ChannelWriter<int> writer, int value)
        {
            while (ComposedRuns.Await(writer.WaitToWriteAsync()))
            {
                if (writer.TryWrite(value))
                {
                    return true;
                }
            }

            return false;
        }

        private bool ReadAsync(int thread, ChannelReader<int> reader, out int item, CancellationToken token = default)
        {
            try
            {
                item = ComposedRuns.Await(reader.ReadAsync(token));
                return true;
            }
            catch (ChannelClosedException closed)
            {
                Assert(ReferenceEquals(closed.InnerException, _completingWithError ? _error : null), $"T{thread}'s ReadAsync threw ChannelClosedException around {closed.InnerException?.Message ?? "nothing"}");
                item = 0;
                return false; // completed and drained
            }
        }

        private static bool WaitThenRead(ChannelReader<int> reader, out int item)
        {
            while (!reader.TryRead(out item))
            {
                if (!ComposedRuns.Await(reader.WaitToReadAsync()))
                {
                    return false;
                }
            }

            return true;
        }

        public void Check()
        {
            s_closedWrites += _closed.Count;
            s_cancellations += _cancellations;
            s_endedReads += _ended;
            ChannelReader<int> reader = _channel.Reader;
            bool completionBefore = reader.Completion.IsCompleted;
            long t0 = _history.Count == 0 ? 0 : _history.Max(o => o.Return) + 1;
            int drained = 0;
            while (reader.TryRead(out int item))
            {
                _out.Add(item);
                drained++;
                _history.Add(new(0, QueueInput.Dequeue(), QueueOutput.Item(item), t0, t0 + 1));
                t0 += 2;
            }

            Assert(!completionBefore || drained == 0, $"Completion completed with {drained} items still in the channel");
            Assert(!_completed || reader.Completion.IsCompleted, "the channel was completed and drained, but Completion did not complete");
            Assert(_completed || !reader.Completion.IsCompleted, "Completion completed without a completion");
            Assert(!_completingWithError || (reader.Completion.IsFaulted && ReferenceEquals(reader.Completion.Exception!.InnerException, _error)), $"the channel was completed with an error, but Completion is {reader.Completion.Status}");
            Assert(_completingWithError || !reader.Completion.IsFaulted, "Completion faulted without an error");
            var counts = _out.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
            foreach (var (value, n) in counts)
            {
                Assert(n == 1, $"item {value} came out {n} times");
                Assert(_placed.Contains(value), $"item {value} came out but was never written");
            }

            foreach (int value in _placed)
            {
                Assert(counts.ContainsKey(value), $"item {value} was written but lost");
            }

            foreach (int value in _closed)
            {
                Assert(!counts.ContainsKey(value), $"the write of {value} failed on the completion but its item came out");
            }

            if (_completed || _scenario.Mode is OverflowPolicy.DropOldest or OverflowPolicy.DropIncoming)
            {
                return; // the spec models neither the completion nor the channel's silent drops (TryWrite answers true)
            }

            var result = LinearizabilityChecker.Check(new QueueSpec(_scenario.Capacity, exactBatches: false), _history);
            Assert(result.IsLinearizable, "not linearizable: " + result.Explanation);
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
