using System.Text;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// <see cref="AckQueue{T}"/> itself under the controlled scheduler (session 18): the composed build (the library's
/// ack-queue sources on <see cref="TestAtomics"/>, its table lock a lock the scheduler controls through
/// <c>SeamLock</c>, over the composed <see cref="DelayQueue{T}"/>; Composed/README.md), on a manual clock that one
/// logical thread advances a tick at a time while the others run, with a visibility timeout of one tick, so timeouts race
/// acks, nacks and receives (the expiry pass runs on the advancing thread, as on a timer thread).
/// Scenarios add <c>MaxDeliveries</c> with a dead-letter queue, <c>Dispose</c> racing the others, and the wake-ups on a
/// manually advanced timer wheel. After every schedule, and a drain that acks whatever is left: every accepted message was
/// acknowledged exactly once, by its last delivery (at-least-once, and an ack that arrives after a redelivery is
/// refused), or dead-lettered once after exactly <c>MaxDeliveries</c> unacknowledged deliveries; its deliveries counted
/// 1, 2, ... with no gap or repeat; every delivery ended exactly once (ack, nack, or the visibility timeout: the
/// statistics' <c>Expired</c> equals the deliveries that no ack or nack ended); a cancelled receive took nothing; and the
/// statistics agree with what the threads saw. Proof of power: an end of a delivery that ignores the slot's version
/// (<see cref="PlantedFault.AckIgnoresVersion"/>) lets a stale ack end the redelivery, which is found.
/// </summary>
public sealed class AckQueueScheduleTests(ITestOutputHelper output)
{
    private const int PerStrategy = 300;

    /// <summary>What a thread does.</summary>
    public enum Step
    {
        /// <summary><c>TryEnqueue(message)</c>.</summary>
        Enqueue,

        /// <summary><c>ReceiveAsync()</c> (awaited by polling), then <c>Ack</c>.</summary>
        ReceiveAck,

        /// <summary><c>ReceiveAsync()</c>, then <c>Nack</c> (visible again at once).</summary>
        ReceiveNack,

        /// <summary><c>TryReceive</c>, and <c>Ack</c> when it got one.</summary>
        TryReceiveAck,

        /// <summary><c>ReceiveAsync(token)</c> with the run's shared token, then <c>Ack</c>: cancelled, it takes nothing.</summary>
        CancellableReceiveAck,

        /// <summary>Cancels the run's shared token.</summary>
        Cancel,

        /// <summary>Moves the clock one tick at a time until every other thread is done (the expiry pass runs here).</summary>
        Advance,

        /// <summary><c>Dispose()</c>: waiting receives throw <see cref="ObjectDisposedException"/>; what is held stays readable, in-flight deliveries can still be acked.</summary>
        Dispose,
    }

    public sealed record Program(Step Step, int Count = 1)
    {
        public override string ToString() => Count == 1 ? Step.ToString() : $"{Step} x{Count}";
    }

    /// <summary>
    /// A scenario: the queue's shape and its threads; with <paramref name="MaxDeliveries"/>, a message past it goes to a
    /// dead-letter queue; with <paramref name="OnWheel"/>, its wake-ups are timers on a <see cref="HierarchicalTimerWheel"/>
    /// (the library's, manually advanced by the advancing thread after each tick: its callbacks run there).
    /// </summary>
    public sealed record Scenario(int Capacity, int Prefill, Program[] Threads, int MaxDeliveries = 0, bool OnWheel = false);

    public static TheoryData<string> Scenarios() => [.. All.Keys];

    // A receive that waits is owed a message whatever the others do: the waiting receives and nacks together never
    // outnumber the messages (a message that timed out comes back; one acknowledged does not).
    internal static readonly Dictionary<string, Scenario> All = new()
    {
        ["cap 2: enqueue x2 | receive-ack x2 | advance"] = new(2, 0, [new(Step.Enqueue, 2), new(Step.ReceiveAck, 2), new(Step.Advance)]),
        ["cap 2 full: receive-ack | receive-ack | advance"] = new(2, 2, [new(Step.ReceiveAck), new(Step.ReceiveAck), new(Step.Advance)]),
        ["cap 1 full: try-receive-ack x2 | try-receive-ack x2 | advance"] = new(1, 1, [new(Step.TryReceiveAck, 2), new(Step.TryReceiveAck, 2), new(Step.Advance)]),
        ["cap 2 full: receive-nack, receive-ack | receive-ack | advance"] = new(2, 2, [new(Step.ReceiveNack), new(Step.ReceiveAck), new(Step.Advance)]),
        ["cap 1: enqueue x2 | try-receive-ack x3 | advance"] = new(1, 0, [new(Step.Enqueue, 2), new(Step.TryReceiveAck, 3), new(Step.Advance)]),
        ["cap 1: cancellable-receive-ack | enqueue | cancel | advance"] = new(1, 0, [new(Step.CancellableReceiveAck), new(Step.Enqueue), new(Step.Cancel), new(Step.Advance)]),

        // MaxDeliveries: a message whose second delivery times out goes to the dead letters (moved by the expiry pass, on
        // the advancing thread), and its room comes back; one whose ack wins stays out of them.
        ["cap 2 full max-deliveries 2: try-receive-ack x2 | try-receive-ack x2 | advance"] = new(2, 2, [new(Step.TryReceiveAck, 2), new(Step.TryReceiveAck, 2), new(Step.Advance)], MaxDeliveries: 2),
        // Dispose racing receives, acks, nacks and the expiry pass (session 18): nothing held is lost (a message an expiry or a
        // nack moves back meanwhile stays readable), an in-flight delivery can still be acked, a nack throws (the test then
        // acks that delivery), a waiting receive throws.
        ["cap 2 full: receive-ack x2 | try-receive-ack x2 | advance | dispose"] = new(2, 2, [new(Step.ReceiveAck, 2), new(Step.TryReceiveAck, 2), new(Step.Advance), new(Step.Dispose)]),
        ["cap 2 full: receive-nack, receive-ack | try-receive-ack | advance | dispose"] = new(2, 2, [new(Step.ReceiveNack), new(Step.TryReceiveAck), new(Step.Advance), new(Step.Dispose)]),

        // On a timer wheel (AckQueueOptions.TimerWheel): the visibility wake-up and the inner delay queue's wake-up are wheel
        // timers, re-armed by cancel + schedule under the queue's lock, fired by the wheel's manual advance.
        ["cap 2 full on a wheel: receive-ack | receive-ack | advance"] = new(2, 2, [new(Step.ReceiveAck), new(Step.ReceiveAck), new(Step.Advance)], OnWheel: true),
        ["cap 1 full max-deliveries 1 on a wheel: try-receive-ack | enqueue x2 | try-receive-ack x2 | advance"] = new(1, 1, [new(Step.TryReceiveAck), new(Step.Enqueue, 2), new(Step.TryReceiveAck, 2), new(Step.Advance)], MaxDeliveries: 1, OnWheel: true),

        ["cap 1 full max-deliveries 1: try-receive-ack | enqueue x2 | try-receive-ack x2 | advance"] = new(1, 1, [new(Step.TryReceiveAck), new(Step.Enqueue, 2), new(Step.TryReceiveAck, 2), new(Step.Advance)], MaxDeliveries: 1),
    };

    private static long s_expired;
    private static long s_refused;
    private static long s_canceled;
    private static long s_deadLettered;
    private static long s_disposedCalls;

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Explore_RealAckQueue_EveryMessageAckedOnceByItsLastDelivery(string name)
    {
        Scenario scenario = All[name];
        s_expired = s_refused = s_canceled = s_deadLettered = s_disposedCalls = 0;
        ComposedRuns.ExploreStandard(output.WriteLine, name, 5600 + name.Length, ExplorationBudget.Schedules(PerStrategy), (strategy, budget) => Explore(strategy, name, scenario, PlantedFault.None, budget));

        output.WriteLine($"deliveries timed out {s_expired}, stale ends refused {s_refused}, receives cancelled {s_canceled}, dead-lettered {s_deadLettered}, calls that met the disposal {s_disposedCalls}");
        Assert.True(s_expired > 0, "no delivery timed out");
        if (scenario.MaxDeliveries > 0)
        {
            Assert.True(s_deadLettered > 0, "no message went to the dead letters");
        }

        if (scenario.Threads.Any(p => p.Step == Step.Dispose))
        {
            Assert.True(s_disposedCalls > 0, "no call met the disposal");
        }

        if (scenario.Threads.Any(p => p.Step == Step.Cancel))
        {
            Assert.True(s_canceled > 0, "no receive was cancelled");
        }
    }

    [Fact]
    public void Explore_AckIgnoresVersion_IsFound()
    {
        // A receiver's delivery times out and the message goes out again to the other receiver; the first one's ack,
        // late, then matches the slot without its version and ends the redelivery: the message is done, but its last
        // delivery's ack is refused.
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "ack ignores the version",
            98,
            PlantedFault.AckIgnoresVersion,
            (strategy, fault, budget) => Explore(strategy, "planted: ack ignores the version", All["cap 1 full: try-receive-ack x2 | try-receive-ack x2 | advance"], fault, budget),
            failure => Assert.IsType<CheckFailedException>(failure.InnerException));
    }

    internal static ExplorationResult Explore(Strategy strategy, string name, Scenario scenario, PlantedFault faults, int budget, bool storeBuffers = false) =>
        ControlledTest.Explore(strategy, budget, () => new Run(scenario), ComposedRuns.Bodies<Run>(scenario.Threads.Length, (run, thread) => run.RunThread(thread)), run => run.Check(), new ExploreOptions { Name = name, Faults = faults }.WithTso(storeBuffers));

    private sealed class Run
    {
        private const int Stride = 1000;
        private readonly Scenario _scenario;
        private readonly ManualTimeProvider _clock = new();
        private readonly AckQueue<int> _queue;
        private readonly DeadLetterQueue<int>? _deadLetters; // the library's: a lock inside one call, atomic to the scheduler
        private readonly HierarchicalTimerWheel? _wheel; // the library's, on the real atomics: each call is one step to the scheduler
        private readonly List<int> _accepted = [];
        private readonly List<(int Message, int Count, int Thread, string End)> _deliveries = [];
        private readonly StringBuilder _log = new();
        private readonly CancellationTokenSource _cancel = new();
        private readonly int _workers;
        private int _workersDone; // test-only cue, outside the simulated memory
        private long _rejected;
        private int _canceled;
        private bool _disposing; // set before Dispose: a racing call may see it before Dispose returns
        private int _disposedCalls;

        public Run(Scenario scenario)
        {
            _scenario = scenario;
            _workers = scenario.Threads.Count(p => p.Step != Step.Advance);
            _deadLetters = scenario.MaxDeliveries > 0 ? new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 64, TimeProvider = _clock }) : null;
            _queue = new AckQueue<int>(new AckQueueOptions<int>
            {
                Capacity = scenario.Capacity,
                VisibilityTimeout = TimeSpan.FromTicks(1),
                TimeProvider = _clock,
                MaxDeliveries = scenario.MaxDeliveries,
                DeadLetters = _deadLetters,
                TimerWheel = _wheel = scenario.OnWheel ? new HierarchicalTimerWheel(TimeSpan.FromTicks(1), _clock) : null,
            });
            for (int i = 0; i < scenario.Prefill; i++)
            {
                if (!_queue.TryEnqueue(i).IsAccepted)
                {
                    throw new InvalidOperationException("prefill");
                }

                _accepted.Add(i);
            }
        }

        public void RunThread(int thread)
        {
            Program program = _scenario.Threads[thread - 1];
            if (program.Step == Step.Advance)
            {
                int ticks = ComposedRuns.AdvanceWhile(_clock, () => Volatile.Read(ref _workersDone) < _workers, () => _wheel?.Advance()); // the visibility timeout's wake-up fires on this thread
                _log.Append('T').Append(thread).Append(" advanced ").Append(ticks).Append(" ticks; ");
                return;
            }

            try
            {
                for (int i = 0; i < program.Count; i++)
                {
                    RunStep(thread, program.Step, (thread * Stride) + i);
                }

                if (program.Step == Step.ReceiveNack)
                {
                    RunStep(thread, Step.ReceiveAck, 0); // then takes a message for good: the scenario counts it as a receive
                }
            }
            finally
            {
                _workersDone++;
            }
        }

        private void RunStep(int thread, Step step, int value)
        {
            switch (step)
            {
                case Step.Enqueue:
                {
                    WriteResult written = _queue.TryEnqueue(value);
                    if (written.IsAccepted)
                    {
                        _accepted.Add(value);
                    }
                    else
                    {
                        Assert(written.Outcome == WriteOutcome.Rejected && written.Reason == RejectReason.Full, $"T{thread}'s enqueue of {value} answered {written}");
                        _rejected++;
                    }

                    _log.Append('T').Append(thread).Append(" enqueue ").Append(value).Append(" -> ").Append(written.Outcome).Append("; ");
                    return;
                }

                case Step.Cancel:
                    _cancel.Cancel();
                    _log.Append('T').Append(thread).Append(" cancel; ");
                    return;

                case Step.Dispose:
                    _disposing = true;
                    _queue.Dispose();
                    _log.Append('T').Append(thread).Append(" dispose; ");
                    return;
            }

            Delivery<int> delivery;
            switch (step)
            {
                case Step.TryReceiveAck:
                    if (!_queue.TryReceive(out delivery))
                    {
                        _log.Append('T').Append(thread).Append(" try-receive -> none; ");
                        return;
                    }

                    break;
                case Step.CancellableReceiveAck:
                    try
                    {
                        delivery = ComposedRuns.Await(_queue.ReceiveAsync(_cancel.Token));
                    }
                    catch (OperationCanceledException)
                    {
                        _canceled++;
                        _log.Append('T').Append(thread).Append(" receive -> canceled; ");
                        return; // took nothing: a message it had taken would be left in flight, and Check finds it
                    }

                    break;
                default:
                    try
                    {
                        delivery = ComposedRuns.Await(_queue.ReceiveAsync());
                    }
                    catch (ObjectDisposedException)
                    {
                        Assert(_disposing, $"T{thread}'s receive threw ObjectDisposedException before the disposal");
                        _disposedCalls++;
                        _log.Append('T').Append(thread).Append(" receive -> disposed; ");
                        return; // took nothing
                    }

                    break;
            }

            bool ended;
            string end;
            if (step == Step.ReceiveNack)
            {
                try
                {
                    ended = _queue.Nack(delivery);
                    end = ended ? "nack" : "refused";
                }
                catch (ObjectDisposedException)
                {
                    Assert(_disposing, $"T{thread}'s nack threw ObjectDisposedException before the disposal");
                    _disposedCalls++;
                    ended = _queue.Ack(delivery); // the delivery was left as it was: still ours to end
                    end = ended ? "ack" : "refused";
                }
            }
            else
            {
                ended = _queue.Ack(delivery);
                end = ended ? "ack" : "refused";
            }

            _deliveries.Add((delivery.Message, delivery.DeliveryCount, thread, end));
            _log.Append('T').Append(thread).Append(" receive ").Append(delivery.Message).Append('#').Append(delivery.DeliveryCount).Append(" -> ").Append(end).Append("; ");
        }

        public void Check()
        {
            Assert(_queue.InFlightCount == 0, $"{_queue.InFlightCount} deliveries still in flight after every receiver ended its own");

            // The drain: whatever is left (ready, or timed out and back) is received and acknowledged.
            _clock.Advance(TimeSpan.FromTicks(1000));
            while (_queue.TryReceive(out Delivery<int> left))
            {
                bool acked = _queue.Ack(left);
                Assert(acked, $"the drain's ack of {left.Message}#{left.DeliveryCount} was refused");
                _deliveries.Add((left.Message, left.DeliveryCount, 0, "ack"));
            }

            // Dead letters: each message there once, after exactly MaxDeliveries deliveries, none of them acknowledged.
            IReadOnlyList<DeadLetter<int>> dead = _deadLetters?.Snapshot() ?? [];
            foreach (DeadLetter<int> letter in dead)
            {
                Assert(dead.Count(d => d.Message == letter.Message) == 1, $"message {letter.Message} is in the dead letters more than once");
                Assert(letter.AttemptCount == _scenario.MaxDeliveries, $"message {letter.Message} went to the dead letters after {letter.AttemptCount} deliveries");
            }

            int expired = 0;
            foreach (var group in _deliveries.GroupBy(d => d.Message))
            {
                int message = group.Key;
                Assert(_accepted.Contains(message), $"message {message} was delivered but never accepted");
                var deliveries = group.OrderBy(d => d.Count).ToList();
                for (int k = 0; k < deliveries.Count; k++)
                {
                    Assert(deliveries[k].Count == k + 1, $"message {message}'s deliveries counted {string.Join(",", deliveries.Select(d => d.Count))}");
                }

                int acks = deliveries.Count(d => d.End == "ack");
                expired += deliveries.Count(d => d.End == "refused");
                if (dead.Any(d => d.Message == message))
                {
                    Assert(acks == 0 && deliveries.Count == _scenario.MaxDeliveries, $"message {message} is in the dead letters after {Describe(deliveries)}");
                    continue;
                }

                Assert(acks == 1, $"message {message} was acknowledged {acks} times ({Describe(deliveries)})");
                Assert(deliveries[^1].End == "ack", $"message {message}'s last delivery was not the one acknowledged ({Describe(deliveries)})");
            }

            foreach (int message in _accepted)
            {
                Assert(_deliveries.Any(d => d.Message == message), $"message {message} was accepted but never delivered");
            }

            // Every delivery ended exactly once: each refused end was a delivery the visibility timeout had ended.
            AckQueueStatistics stats = _queue.GetStatistics();
            Assert(stats.Enqueued == _accepted.Count, $"Enqueued {stats.Enqueued}, but {_accepted.Count} messages were accepted");
            Assert(stats.Acked == _accepted.Count - dead.Count, $"Acked {stats.Acked} for {_accepted.Count} messages, {dead.Count} of them dead-lettered");
            Assert(stats.DeadLettered == dead.Count, $"DeadLettered {stats.DeadLettered}, but the dead letters hold {dead.Count}");
            Assert(stats.Nacked == _deliveries.Count(d => d.End == "nack"), $"Nacked {stats.Nacked}");
            Assert(stats.Expired == expired, $"Expired {stats.Expired}, but {expired} deliveries were ended by nobody else");
            Assert(stats.Rejected == _rejected, $"Rejected {stats.Rejected}, but {_rejected} enqueues were refused");
            Assert(stats.Count == 0 && stats.InFlight == 0, $"after the drain: {stats}");
            s_expired += expired;
            s_refused += _deliveries.Count(d => d.End == "refused");
            s_canceled += _canceled;
            s_deadLettered += dead.Count;
            s_disposedCalls += _disposedCalls;
            _wheel?.Dispose(); // its lanes on the worker threads let go of it
        }

        private static string Describe(List<(int Message, int Count, int Thread, string End)> deliveries) =>
            string.Join(", ", deliveries.Select(d => $"#{d.Count} T{d.Thread} {d.End}"));

        private void Assert(bool condition, string message)
        {
            if (!condition)
            {
                throw new CheckFailedException(message + "\nhistory: " + _log);
            }
        }
    }
}
