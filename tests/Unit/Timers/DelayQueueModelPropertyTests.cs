using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Model-based property: any single-threaded sequence of enqueues (with delays), clock advances, dequeues and counts on
/// a <see cref="DelayQueue{T}"/> behaves exactly like a sequential model (a list ordered by due time, then arrival),
/// under each non-waiting overflow policy, at capacities 1-8 (overflow) and one above the heap's near-tier threshold. A planted bug (items visible a millisecond early) must be falsified.
/// </summary>
public sealed class DelayQueueModelPropertyTests
{
    private const int MaxTests = 300;

    private readonly ITestOutputHelper _output;

    public DelayQueueModelPropertyTests(ITestOutputHelper output) => _output = output;

    public enum OpKind
    {
        Enqueue,
        Advance,
        Dequeue,
        Count,
    }

    /// <summary>One operation; <paramref name="Millis"/> is the delay of an enqueue or the step of an advance.</summary>
    public readonly record struct Op(OpKind Kind, int Millis)
    {
        public override string ToString() => Kind is OpKind.Enqueue or OpKind.Advance ? $"{Kind}({Millis})" : Kind.ToString();
    }

    /// <summary>A scenario; with <paramref name="NearWrap"/> the clock starts 60 ms short of long.MaxValue and most scenarios wrap it (session 11).</summary>
    public sealed record Scenario(int Capacity, OverflowPolicy Policy, Op[] Ops, bool NearWrap = false)
    {
        public override string ToString() => $"capacity {Capacity}, {Policy}, near wrap {NearWrap}: [{string.Join(", ", Ops)}]";
    }

    /// <summary>The queue under test behind a seam, so a planted-bug variant can stand in.</summary>
    public delegate WriteResult EnqueueFunc(DelayQueue<int> queue, int item, TimeSpan delay);

    [Fact]
    public void AnyOperationSequence_SingleThreaded_MatchesSequentialModel()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel((q, item, delay) => q.TryEnqueue(item, delay)));
    }

    [Fact]
    public void AnyOperationSequence_ItemsVisibleOneMillisecondEarly_IsFalsified()
    {
        // Planted bug: the enqueue shortens every positive delay by a millisecond.
        EnqueueFunc early = (q, item, delay) => q.TryEnqueue(item, delay > TimeSpan.Zero ? delay - TimeSpan.FromMilliseconds(1) : delay);

        Exception? failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(early)));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
        _output.WriteLine(failure.Message);
    }

    private static Property MatchesModel(EnqueueFunc enqueue) =>
        Prop.ForAll(ScenarioArb(), scenario =>
        {
            string? mismatch = FirstMismatch(enqueue, scenario);
            return (mismatch is null).Label(mismatch ?? "matches");
        });

    private static Arbitrary<Scenario> ScenarioArb()
    {
        Gen<Op> op = Gen.OneOf(
            Gen.Choose(0, 40).Select(ms => new Op(OpKind.Enqueue, ms)),
            Gen.Choose(0, 40).Select(ms => new Op(OpKind.Enqueue, ms)), // enqueues twice as likely: the queue fills
            Gen.Choose(0, 25).Select(ms => new Op(OpKind.Advance, ms)),
            Gen.Constant(new Op(OpKind.Dequeue, 0)),
            Gen.Constant(new Op(OpKind.Count, 0)));
        Gen<Scenario> scenario =
            from capacity in Gen.OneOf(Gen.Choose(1, 8), Gen.Choose(1, 8), Gen.Constant(LockFree.Timers.DelayHeap<int>.NearTierThreshold + 1)) // the last: a heap with a near tier (session 19)
            from policy in Gen.Elements(OverflowPolicy.Reject, OverflowPolicy.DropIncoming, OverflowPolicy.DropOldest, OverflowPolicy.Wait)
            from nearWrap in Gen.Elements(false, true)
            from length in Gen.Choose(0, 120)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, policy, ops, nearWrap);
        return Arb.From(scenario, Shrink);
    }

    private static IEnumerable<Scenario> Shrink(Scenario scenario)
    {
        foreach (Op[] ops in Shrinking.Shorter(scenario.Ops))
        {
            yield return scenario with { Ops = ops };
        }
    }

    private static string? FirstMismatch(EnqueueFunc enqueue, Scenario scenario)
    {
        var time = scenario.NearWrap ? new ManualTimeProvider(long.MaxValue - TimeSpan.FromMilliseconds(60).Ticks) : new ManualTimeProvider();
        var dropped = new List<(int Item, DropReason Reason)>();
        using var queue = new DelayQueue<int>(scenario.Capacity, new DelayQueueOptions<int>
        {
            TimeProvider = time,
            FullMode = scenario.Policy,
            ItemDropped = (item, reason) => dropped.Add((item, reason)),
        });
        var model = new List<(long Due, int Seq, int Item)>(); // Seq = item: items are numbered in arrival order
        long now = 0;
        int next = 0;
        for (int step = 0; step < scenario.Ops.Length; step++)
        {
            Op op = scenario.Ops[step];
            string? mismatch = null;
            switch (op.Kind)
            {
                case OpKind.Enqueue:
                {
                    int item = next++;
                    WriteResult expected;
                    (int, DropReason)? expectedDrop = null;
                    if (model.Count < scenario.Capacity)
                    {
                        model.Add((now + op.Millis, item, item));
                        expected = WriteResult.Accepted;
                    }
                    else if (scenario.Policy == OverflowPolicy.DropIncoming)
                    {
                        expected = WriteResult.DroppedIncoming;
                        expectedDrop = (item, DropReason.Incoming);
                    }
                    else if (scenario.Policy == OverflowPolicy.DropOldest)
                    {
                        var head = model.MinBy(e => (e.Due, e.Seq));
                        model.Remove(head);
                        model.Add((now + op.Millis, item, item));
                        expected = WriteResult.EvictedOldest;
                        expectedDrop = (head.Item, DropReason.Oldest);
                    }
                    else
                    {
                        var head = model.MinBy(e => (e.Due, e.Seq));
                        expected = WriteResult.Rejected(RejectReason.Full, TimeSpan.FromMilliseconds(Math.Max(0, head.Due - now)));
                    }

                    dropped.Clear();
                    WriteResult actual = enqueue(queue, item, TimeSpan.FromMilliseconds(op.Millis));
                    mismatch = Compare(expected, actual)
                        ?? Compare(expectedDrop is null ? "none" : expectedDrop.ToString(), dropped.Count == 0 ? "none" : dropped[0].ToString());
                    break;
                }

                case OpKind.Advance:
                    now += op.Millis;
                    time.Advance(TimeSpan.FromMilliseconds(op.Millis));
                    break;
                case OpKind.Dequeue:
                {
                    var due = model.Where(e => e.Due <= now).ToList();
                    (bool, int) expected = (false, 0);
                    if (due.Count > 0)
                    {
                        var head = due.MinBy(e => (e.Due, e.Seq));
                        model.Remove(head);
                        expected = (true, head.Item);
                    }

                    bool ok = queue.TryDequeue(out int got);
                    mismatch = Compare(expected, (ok, got));
                    break;
                }

                case OpKind.Count:
                {
                    // With the count, the time until the earliest is due (s11-rev: a near-wrap scenario's root due exactly at
                    // long.MaxValue, 60 ms after its origin, answered null, "empty").
                    TimeSpan? until = model.Count == 0 ? null : TimeSpan.FromMilliseconds(Math.Max(0, model.Min(e => e.Due) - now));
                    mismatch = Compare(model.Count, queue.Count) ?? Compare(until, queue.GetTimeUntilNextDue());
                    break;
                }
            }

            if (mismatch is not null)
            {
                return $"step {step} ({op}): {mismatch}";
            }
        }

        BackpressureStatistics stats = queue.GetStatistics();
        return stats.Enqueued == stats.Dequeued + stats.Evicted + stats.Remaining ? null : $"accounting broken: {stats}";
    }

    private static string? Compare<TValue>(TValue expected, TValue actual) =>
        EqualityComparer<TValue>.Default.Equals(expected, actual) ? null : $"expected {expected}, got {actual}";
}
