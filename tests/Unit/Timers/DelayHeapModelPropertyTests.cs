using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using LockFree.Timers;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Model-based property of the delay queue's heap (session 19: two tiers, a small near heap beside the far one): any
/// sequence of pushes and pops, with any near-heap size, pops in (due, arrival) order, the order of a sorted list, and
/// keeps the count and the root in step with it. Due times include <see cref="Timestamps.DueNow"/> and values on both
/// sides of a clock wrap. The checker must falsify a planted two-tier heap that takes the near root first whenever the
/// near heap holds anything (right while every near item is due before the far root, wrong once a full near heap sends
/// an earlier item to the far heap).
/// </summary>
public sealed class DelayHeapModelPropertyTests
{
    private const int MaxTests = 400;

    private readonly ITestOutputHelper _output;

    public DelayHeapModelPropertyTests(ITestOutputHelper output) => _output = output;

    /// <summary>A push of an item due <paramref name="Offset"/> after the scenario's base (-1: at once), or a pop.</summary>
    public readonly record struct Op(bool Pop, long Offset)
    {
        public override string ToString() => Pop ? "Pop" : Offset < 0 ? "Push(now)" : $"Push({Offset})";
    }

    /// <summary>
    /// A scenario: the base of its due times (0, or 15 short of long.MaxValue, so that half its due times lie past the
    /// wrap), the heap's capacity, its near heap's size, the operations.
    /// </summary>
    public sealed record Scenario(long Base, int Capacity, int NearCapacity, Op[] Ops)
    {
        public override string ToString() => $"base {Base}, capacity {Capacity}, near {NearCapacity}: [{string.Join(", ", Ops)}]";

        /// <summary>The due time of a push: <see cref="Timestamps.DueNow"/>, or base + offset, moved off DueNow as the library moves it.</summary>
        public long Due(Op op)
        {
            if (op.Offset < 0)
            {
                return Timestamps.DueNow;
            }

            long due = unchecked(Base + op.Offset);
            return due == Timestamps.DueNow ? due + 1 : due;
        }
    }

    /// <summary>The heap under test behind a seam, so the planted variant can stand in.</summary>
    public interface IHeap
    {
        int Count { get; }

        long PeekDue { get; }

        void Push(long due, long sequence, int item);

        int Pop();
    }

    [Fact]
    public void AnyPushPopSequence_AnyNearSize_PopsInDueThenArrivalOrder()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(s => new RealHeap(new DelayHeap<int>(s.Capacity, s.NearCapacity))));
    }

    [Fact]
    public void DefaultConstructor_NearHeapOnlyAboveTheThreshold_StillOrdered()
    {
        // The public path: capacities at the threshold have no near heap, above it they have one; both pop in order.
        foreach (int capacity in new[] { DelayHeap<int>.NearTierThreshold, DelayHeap<int>.NearTierThreshold + 1 })
        {
            var heap = new DelayHeap<int>(capacity);
            heap.Push(1_000, 0, 0); // the far root
            for (int i = 1; i < capacity; i++)
            {
                heap.Push(1_000 - (i % 97), i, i); // mostly due before the far root: the near heap while it has room
            }

            long lastDue = long.MinValue;
            long count = 0;
            while (heap.Count > 0)
            {
                long due = heap.PeekDue;
                Assert.True(due >= lastDue, $"capacity {capacity}: {due} after {lastDue}");
                lastDue = due;
                heap.Pop();
                count++;
            }

            Assert.Equal(capacity, count);
        }
    }

    [Fact]
    public void Placement_NearHeapTakesOnlyItemsDueBeforeTheFarRoot_WhileItHasRoom()
    {
        // The order does not depend on the placement, so the model cannot see it; this pins the rule that makes the
        // near heap pay: no near heap at the threshold, an empty far heap takes the first push, later-due items go far,
        // earlier ones near until it is full.
        var small = new DelayHeap<int>(DelayHeap<int>.NearTierThreshold);
        small.Push(100, 0, 0);
        small.Push(50, 1, 1);
        Assert.Equal(0, small.NearCount);

        var fresh = new DelayHeap<int>(DelayHeap<int>.NearTierThreshold + 1);
        fresh.Push(Timestamps.DueNow, 0, 0); // due before anything, but the far heap is empty: it goes there
        Assert.Equal(0, fresh.NearCount);

        var heap = new DelayHeap<int>(DelayHeap<int>.NearTierThreshold + 1);
        heap.Push(100, 0, 0);
        Assert.Equal(0, heap.NearCount); // the far heap was empty
        heap.Push(100, 1, 1);
        heap.Push(200, 2, 2);
        Assert.Equal(0, heap.NearCount); // due at or after the far root
        for (int i = 0; i < DelayHeap<int>.NearCapacity + 2; i++)
        {
            heap.Push(99 - i, 3 + i, 3 + i);
        }

        Assert.Equal(DelayHeap<int>.NearCapacity, heap.NearCount); // the last two found it full
        Assert.Equal(DelayHeap<int>.NearCapacity + 5, heap.Count);
        Assert.Equal(99 - DelayHeap<int>.NearCapacity - 1, heap.PeekDue); // the earliest went to the far heap

        DelayEntry<int>[] entries = heap.ToArray();
        Assert.Equal(heap.Count, entries.Length);
        Assert.Equal(Enumerable.Range(0, heap.Count), entries.Select(e => e.Item).Order());
        Assert.All(entries, e => Assert.Equal(e.Item, (int)e.Sequence));
    }

    [Fact]
    public void PlantedNearFirstPop_IsFalsified()
    {
        Exception? failure = Record.Exception(() =>
            Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(s => new NearFirstHeap(s.Capacity, s.NearCapacity))));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
        _output.WriteLine(failure.Message);
    }

    private static Property MatchesModel(Func<Scenario, IHeap> create) =>
        Prop.ForAll(ScenarioArb(), scenario =>
        {
            string? mismatch = FirstMismatch(create(scenario), scenario);
            return (mismatch is null).Label(mismatch ?? "matches");
        });

    private static Arbitrary<Scenario> ScenarioArb()
    {
        Gen<long> offset = Gen.OneOf(
            Gen.Choose(0, 30).Select(d => (long)d),
            Gen.Choose(0, 6).Select(d => (long)d), // small offsets too: ties in due time
            Gen.Constant(-1L)); // -1: due at once (DueNow)
        Gen<Op> op = Gen.OneOf(
            offset.Select(d => new Op(false, d)),
            offset.Select(d => new Op(false, d)), // pushes twice as likely: the heaps fill
            Gen.Constant(new Op(true, 0)));
        Gen<Scenario> scenario =
            from nearWrap in Gen.Elements(false, true)
            from capacity in Gen.Choose(1, 24)
            from near in Gen.Elements(0, 1, 2, 3, 5, 64)
            from length in Gen.Choose(0, 150)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(nearWrap ? long.MaxValue - 15 : 0, capacity, near, ops);
        return Arb.From(scenario, s => Shrinking.Shorter(s.Ops).Select(ops => s with { Ops = ops }));
    }

    /// <summary>Wrap-safe order of the model: DueNow first, then by the sign of the difference, then arrival.</summary>
    private static int Compare((long Due, long Seq) a, (long Due, long Seq) b) =>
        a.Due == b.Due ? a.Seq.CompareTo(b.Seq)
        : a.Due == Timestamps.DueNow ? -1
        : b.Due == Timestamps.DueNow ? 1
        : unchecked(a.Due - b.Due) < 0 ? -1 : 1;

    private static string? FirstMismatch(IHeap heap, Scenario scenario)
    {
        // All due times of a scenario lie within 31 timestamps of its base, so the wrap-safe order is a total order on
        // them and the sorted list is a faithful model.
        var model = new List<(long Due, long Seq)>();
        long sequence = 0;
        for (int step = 0; step < scenario.Ops.Length; step++)
        {
            Op op = scenario.Ops[step];
            if (!op.Pop)
            {
                if (model.Count == scenario.Capacity)
                {
                    continue; // the owner bounds the heap: a push to a full one is not made
                }

                long due = scenario.Due(op);
                heap.Push(due, sequence, (int)sequence);
                model.Add((due, sequence));
                sequence++;
            }
            else if (model.Count > 0)
            {
                model.Sort(Compare);
                (long due, long seq) = model[0];
                model.RemoveAt(0);
                if (heap.PeekDue != due)
                {
                    return $"step {step}: root due {heap.PeekDue}, model {due}";
                }

                int item = heap.Pop();
                if (item != seq)
                {
                    return $"step {step}: popped item {item}, model {seq} (due {due})";
                }
            }

            if (heap.Count != model.Count)
            {
                return $"step {step}: count {heap.Count}, model {model.Count}";
            }
        }

        return null;
    }

    private sealed class RealHeap(DelayHeap<int> heap) : IHeap
    {
        public int Count => heap.Count;

        public long PeekDue => heap.PeekDue;

        public void Push(long due, long sequence, int item) => heap.Push(due, sequence, item);

        public int Pop() => heap.Pop();
    }

    /// <summary>Planted: the two-tier placement of the real heap, but a pop takes the near root whenever there is one.</summary>
    private sealed class NearFirstHeap(int capacity, int nearCapacity) : IHeap
    {
        private readonly DelayHeap<int> _near = new(Math.Max(nearCapacity, 1), 0);
        private readonly DelayHeap<int> _far = new(capacity, 0);

        public int Count => _near.Count + _far.Count;

        public long PeekDue => _near.Count > 0 ? _near.PeekDue : _far.PeekDue;

        public void Push(long due, long sequence, int item)
        {
            if (_near.Count < nearCapacity && _far.Count > 0
                && DelayHeap<int>.Less(due, sequence, _far.Peek().Due, _far.Peek().Sequence))
            {
                _near.Push(due, sequence, item);
            }
            else
            {
                _far.Push(due, sequence, item);
            }
        }

        public int Pop() => _near.Count > 0 ? _near.Pop() : _far.Pop();
    }
}
