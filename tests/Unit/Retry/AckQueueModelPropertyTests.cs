using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// Model-based property (review, 2026-11-23): any single-threaded sequence of enqueues (with delays), receives, acks,
/// nacks (with delays), dead-letterings and clock advances on an <see cref="AckQueue{T}"/> behaves like a sequential
/// model: ready messages by due time then arrival, in-flight messages with deadline = receive time + visibility
/// timeout, expired ones moved back (due at the expiry, in receive order) or dead-lettered past MaxDeliveries, stale
/// deliveries refused, the bound on ready + in flight, every counter, and (s11-rev) a rejection's retry hint. A planted bug (acks of the newest delivery
/// refused) must be falsified. Half the scenarios time out on a timer wheel instead of a provider timer; the clock
/// starts at one of five origins (negative included, and since session 11 one that wraps past long.MaxValue within
/// the scenario's advances).
/// </summary>
public sealed class AckQueueModelPropertyTests
{
    private const int MaxTests = 200;

    /// <summary>An origin 30 ms short of long.MaxValue: most scenarios' advances wrap the clock.</summary>
    private static readonly long NearWrap = long.MaxValue - TimeSpan.FromMilliseconds(30).Ticks;
    private static readonly TimeSpan Visibility = TimeSpan.FromMilliseconds(10);

    private readonly ITestOutputHelper _output;

    public AckQueueModelPropertyTests(ITestOutputHelper output) => _output = output;

    public enum OpKind
    {
        Enqueue,
        Receive,
        Ack,
        Nack,
        DeadLetter,
        Advance,
    }

    /// <summary>One operation: <paramref name="Millis"/> is a delay or a step; <paramref name="Pick"/> chooses a delivery among those issued.</summary>
    public readonly record struct Op(OpKind Kind, int Millis, int Pick)
    {
        public override string ToString() => $"{Kind}({Millis},{Pick})";
    }

    public sealed record Scenario(int Capacity, int MaxDeliveries, bool Drop, bool Wheel, long Origin, Op[] Ops)
    {
        public override string ToString() => $"capacity {Capacity}, max {MaxDeliveries}, drop {Drop}, wheel {Wheel}, origin {Origin}: [{string.Join(", ", Ops)}]";
    }

    /// <summary>The ack under test behind a seam, so a planted-bug variant can stand in.</summary>
    public delegate bool AckFunc(AckQueue<int> queue, in Delivery<int> delivery, bool newest);

    [Fact]
    public void AnyOperationSequence_SingleThreaded_MatchesSequentialModel()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel((AckQueue<int> q, in Delivery<int> d, bool _) => q.Ack(d)));
    }

    [Fact]
    public void AnyOperationSequence_AckOfNewestDeliveryRefused_IsFalsified()
    {
        AckFunc planted = (AckQueue<int> q, in Delivery<int> d, bool newest) => !newest && q.Ack(d);

        Exception? failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(planted)));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
        _output.WriteLine(failure.Message.Length > 2000 ? failure.Message[..2000] : failure.Message);
    }

    private static Property MatchesModel(AckFunc ack) =>
        Prop.ForAll(ScenarioArb(), scenario =>
        {
            string? mismatch = FirstMismatch(ack, scenario);
            return (mismatch is null).Label(mismatch ?? "matches");
        });

    private static Arbitrary<Scenario> ScenarioArb()
    {
        Gen<int> delay = Gen.Elements(0, 0, 0, 3, 10, 25);
        Gen<Op> op = Gen.OneOf(
            delay.Select(ms => new Op(OpKind.Enqueue, ms, 0)),
            Gen.Constant(new Op(OpKind.Receive, 0, 0)),
            Gen.Constant(new Op(OpKind.Receive, 0, 0)),
            Gen.Choose(0, 1000).Select(p => new Op(OpKind.Ack, 0, p)),
            from ms in delay from p in Gen.Choose(0, 1000) select new Op(OpKind.Nack, ms, p),
            Gen.Choose(0, 1000).Select(p => new Op(OpKind.DeadLetter, 0, p)),
            Gen.Choose(1, 15).Select(ms => new Op(OpKind.Advance, ms, 0)));
        Gen<Scenario> scenario =
            from capacity in Gen.Choose(1, 5)
            from max in Gen.Elements(0, 1, 2, 3)
            from drop in Gen.Elements(false, true)
            from wheel in Gen.Elements(false, true)
            from origin in Gen.Elements(TimeSpan.FromDays(1).Ticks, -TimeSpan.FromDays(1).Ticks, 0L, long.MaxValue / 4, NearWrap)
            from length in Gen.Choose(0, 100)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, max, drop, wheel, origin, ops);
        return Arb.From(scenario, s => Shrinking.Shorter(s.Ops).Select(ops => s with { Ops = ops }));
    }

    private sealed record ReadyItem(long Due, long Seq, int Message, int Deliveries);

    private sealed record InFlightItem(int Message, int Deliveries, long Deadline, int Id);

    /// <summary>
    /// A rejection's retry hint (s11-rev): with messages ready or delayed, the time until the earliest is due; with all the
    /// room in flight, the time until the earliest deadline of a message on its last delivery (its timeout frees room),
    /// else no estimate (<see cref="Timeout.InfiniteTimeSpan"/>).
    /// </summary>
    private static string? HintMismatch(TimeSpan hint, int maxDeliveries, long now, List<ReadyItem> ready, List<InFlightItem> inFlight)
    {
        TimeSpan expected;
        if (ready.Count != 0)
        {
            expected = TimeSpan.FromTicks(Math.Max(0, ready.Min(r => r.Due) - now));
        }
        else
        {
            InFlightItem? last = maxDeliveries > 0 ? inFlight.FirstOrDefault(f => f.Deliveries >= maxDeliveries) : null;
            expected = last is null ? Timeout.InfiniteTimeSpan : TimeSpan.FromTicks(Math.Max(0, last.Deadline - now));
        }

        return hint == expected ? null : $"retry hint {hint}, model {expected}";
    }

    private static string? FirstMismatch(AckFunc ack, Scenario scenario)
    {
        var time = new ManualTimeProvider(); // moved by the test; the queue reads it through a shift (any origin)
        TimeProvider clock = new Timers.ClockOriginTests.ShiftedClock(time, unchecked(scenario.Origin - time.GetTimestamp()));
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), clock); // deadlines fall on its ticks: no lateness
        using var deadLetters = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 1000, TimeProvider = clock });
        using var queue = new AckQueue<int>(new AckQueueOptions<int>
        {
            Capacity = scenario.Capacity,
            VisibilityTimeout = Visibility,
            TimeProvider = clock,
            MaxDeliveries = scenario.MaxDeliveries,
            DeadLetters = deadLetters,
            FullMode = scenario.Drop ? OverflowPolicy.DropIncoming : OverflowPolicy.Reject,
            Name = "model",
            TimerWheel = scenario.Wheel ? wheel : null,
        });

        long now = 0, seq = 0;
        var ready = new List<ReadyItem>();
        var inFlight = new List<InFlightItem>(); // receive order = deadline order
        var issued = new List<Delivery<int>>();
        var deadLettered = new List<(int Message, int Deliveries)>();
        long enqueued = 0, acked = 0, nacked = 0, expired = 0, dropped = 0, rejected = 0;
        int nextMessage = 0;

        for (int step = 0; step < scenario.Ops.Length; step++)
        {
            Op op = scenario.Ops[step];
            string at = $"op {step} {op}";
            switch (op.Kind)
            {
                case OpKind.Enqueue:
                {
                    int message = nextMessage++;
                    WriteResult result = queue.TryEnqueue(message, TimeSpan.FromMilliseconds(op.Millis));
                    WriteOutcome expected = ready.Count + inFlight.Count < scenario.Capacity ? WriteOutcome.Accepted
                        : scenario.Drop ? WriteOutcome.DroppedIncoming : WriteOutcome.Rejected;
                    if (result.Outcome != expected)
                    {
                        return $"{at}: {result.Outcome}, model {expected}";
                    }

                    switch (expected)
                    {
                        case WriteOutcome.Accepted:
                            ready.Add(new ReadyItem(now + (op.Millis * TimeSpan.TicksPerMillisecond), seq++, message, 0));
                            enqueued++;
                            break;
                        case WriteOutcome.DroppedIncoming:
                            dropped++;
                            break;
                        default:
                            rejected++;
                            string? hintMismatch = HintMismatch(result.RetryAfter, scenario.MaxDeliveries, now, ready, inFlight);
                            if (hintMismatch is not null)
                            {
                                return $"{at}: {hintMismatch}";
                            }

                            break;
                    }

                    break;
                }

                case OpKind.Receive:
                {
                    ReadyItem? next = ready.Where(r => r.Due <= now).OrderBy(r => r.Due).ThenBy(r => r.Seq).FirstOrDefault();
                    bool got = queue.TryReceive(out Delivery<int> delivery);
                    if (got != (next is not null))
                    {
                        return $"{at}: received {got}, model {next is not null}";
                    }

                    if (next is null)
                    {
                        break;
                    }

                    if ((delivery.Message, delivery.DeliveryCount) != (next.Message, next.Deliveries + 1))
                    {
                        return $"{at}: got ({delivery.Message}, {delivery.DeliveryCount}), model ({next.Message}, {next.Deliveries + 1})";
                    }

                    ready.Remove(next);
                    inFlight.Add(new InFlightItem(next.Message, next.Deliveries + 1, now + (Visibility.Ticks), issued.Count));
                    issued.Add(delivery);
                    break;
                }

                case OpKind.Ack:
                case OpKind.Nack:
                case OpKind.DeadLetter:
                {
                    if (issued.Count == 0)
                    {
                        break;
                    }

                    int id = op.Pick % issued.Count;
                    InFlightItem? live = inFlight.FirstOrDefault(f => f.Id == id);
                    Delivery<int> delivery = issued[id];
                    bool actual = op.Kind switch
                    {
                        OpKind.Ack => ack(queue, delivery, id == issued.Count - 1),
                        OpKind.Nack => queue.Nack(delivery, TimeSpan.FromMilliseconds(op.Millis)),
                        _ => queue.DeadLetter(delivery, "model"),
                    };
                    if (actual != (live is not null))
                    {
                        return $"{at}: answered {actual}, model {live is not null} (delivery {id} of {delivery.Message})";
                    }

                    if (live is null)
                    {
                        break;
                    }

                    inFlight.Remove(live);
                    if (op.Kind == OpKind.Ack)
                    {
                        acked++;
                    }
                    else if (op.Kind == OpKind.DeadLetter)
                    {
                        deadLettered.Add((live.Message, live.Deliveries));
                    }
                    else
                    {
                        nacked++;
                        if (scenario.MaxDeliveries > 0 && live.Deliveries >= scenario.MaxDeliveries)
                        {
                            deadLettered.Add((live.Message, live.Deliveries));
                        }
                        else
                        {
                            ready.Add(new ReadyItem(now + (op.Millis * TimeSpan.TicksPerMillisecond), seq++, live.Message, live.Deliveries));
                        }
                    }

                    break;
                }

                default:
                {
                    time.Advance(TimeSpan.FromMilliseconds(op.Millis));
                    wheel.Advance(); // the visibility timeouts of a wheel-driven queue expire here
                    now += op.Millis * TimeSpan.TicksPerMillisecond;
                    foreach (InFlightItem item in inFlight.Where(f => f.Deadline <= now).ToList())
                    {
                        inFlight.Remove(item);
                        expired++;
                        if (scenario.MaxDeliveries > 0 && item.Deliveries >= scenario.MaxDeliveries)
                        {
                            deadLettered.Add((item.Message, item.Deliveries));
                        }
                        else
                        {
                            ready.Add(new ReadyItem(now, seq++, item.Message, item.Deliveries));
                        }
                    }

                    break;
                }
            }

            if (queue.Count != ready.Count + inFlight.Count || queue.InFlightCount != inFlight.Count)
            {
                return $"{at}: count {queue.Count}/{queue.InFlightCount} in flight, model {ready.Count + inFlight.Count}/{inFlight.Count}";
            }
        }

        var expectedStats = new AckQueueStatistics(enqueued, acked, nacked, expired, deadLettered.Count, dropped, rejected, ready.Count + inFlight.Count, inFlight.Count);
        if (queue.GetStatistics() != expectedStats)
        {
            return $"statistics {queue.GetStatistics()}, model {expectedStats}";
        }

        var letters = deadLetters.Snapshot().Select(l => (l.Message, l.AttemptCount)).ToList();
        if (!letters.SequenceEqual(deadLettered))
        {
            return $"dead letters [{string.Join(", ", letters)}], model [{string.Join(", ", deadLettered)}]";
        }

        return null;
    }
}
