using System.Numerics;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using Xunit.Abstractions;
using LockFree.Tests.Unit.Support;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// Model-based property: any single-threaded sequence of operations on a queue behaves exactly like a
/// sequential bounded FIFO (a <see cref="Queue{T}"/> holding at most the rounded capacity).
/// </summary>
public sealed class QueueModelPropertyTests
{
    private const int MaxTests = 200;

    private readonly ITestOutputHelper _output;

    public QueueModelPropertyTests(ITestOutputHelper output) => _output = output;

    /// <summary>Reads the item at the head without removing it, where the queue type has TryPeek.</summary>
    public delegate bool PeekFunc(IBoundedQueue<int> queue, out int item);

    public enum OpKind
    {
        Enqueue,
        Dequeue,
        EnqueueMany,
        DequeueMany,
        Peek,
        Count,
        IsEmpty,
    }

    /// <summary>One operation; <paramref name="Length"/> is the span length of the batch operations.</summary>
    public readonly record struct Op(OpKind Kind, int Length)
    {
        public override string ToString() =>
            Kind is OpKind.EnqueueMany or OpKind.DequeueMany ? $"{Kind}({Length})" : Kind.ToString();
    }

    /// <summary>A queue of the requested capacity and the operations to run on it.</summary>
    public sealed record Scenario(int Capacity, Op[] Ops)
    {
        public override string ToString() => $"capacity {Capacity}: [{string.Join(", ", Ops)}]";
    }

    public static TheoryData<string> QueueNames => new() { "Spsc", "SpscEagerBound", "Mpsc", "Spmc", "Mpmc" };

    [Theory]
    [MemberData(nameof(QueueNames))]
    public void AnyOperationSequence_SingleThreaded_MatchesBoundedFifoModel(string name)
    {
        (Func<int, IBoundedQueue<int>> create, PeekFunc? peek) = Factory(name);

        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(create, peek));
    }

    [Fact]
    public void AnyOperationSequence_QueueDroppingEverySeventhItem_IsFalsified()
    {
        AssertFalsified(capacity => new DropsEverySeventhItem(new MpmcQueue<int>(capacity)));
    }

    [Fact]
    public void AnyOperationSequence_QueueWithOffByOneCapacity_IsFalsified()
    {
        AssertFalsified(capacity => new OneSlotShort(new SpscQueue<int>(capacity)));
    }

    private void AssertFalsified(Func<int, IBoundedQueue<int>> create)
    {
        Exception? failure = Record.Exception(
            () => Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(create, peek: null)));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
        _output.WriteLine(failure.Message);
    }

    private static (Func<int, IBoundedQueue<int>> Create, PeekFunc? Peek) Factory(string name) => name switch
    {
        "Spsc" => (c => new SpscQueue<int>(c), (IBoundedQueue<int> q, out int item) => ((SpscQueue<int>)q).TryPeek(out item)),
        "SpscEagerBound" => (c => new EagerSpsc(c), (IBoundedQueue<int> q, out int item) => ((EagerSpsc)q).TryPeek(out item)),
        "Mpsc" => (c => new MpscQueue<int>(c), (IBoundedQueue<int> q, out int item) => ((MpscQueue<int>)q).TryPeek(out item)),
        "Spmc" => (c => new SpmcQueue<int>(c), null),
        "Mpmc" => (c => new MpmcQueue<int>(c), null),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Unknown queue."),
    };

    private static Property MatchesModel(Func<int, IBoundedQueue<int>> create, PeekFunc? peek) =>
        Prop.ForAll(ScenarioArb(peek is not null), scenario =>
        {
            string? mismatch = FirstMismatch(create(scenario.Capacity), peek, scenario);
            return (mismatch is null).Label(mismatch ?? "matches");
        });

    private static Arbitrary<Scenario> ScenarioArb(bool withPeek)
    {
        var kinds = new List<Gen<Op>>
        {
            Gen.Constant(new Op(OpKind.Enqueue, 0)),
            Gen.Constant(new Op(OpKind.Dequeue, 0)),
            Gen.Choose(0, 80).Select(n => new Op(OpKind.EnqueueMany, n)),
            Gen.Choose(0, 80).Select(n => new Op(OpKind.DequeueMany, n)),
            Gen.Constant(new Op(OpKind.Count, 0)),
            Gen.Constant(new Op(OpKind.IsEmpty, 0)),
        };
        if (withPeek)
        {
            kinds.Add(Gen.Constant(new Op(OpKind.Peek, 0)));
        }

        Gen<Op> op = Gen.OneOf(kinds);
        Gen<Scenario> scenario =
            from capacity in Gen.Choose(1, 64)
            from length in Gen.Choose(0, 200)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, ops);
        return Arb.From(scenario, Shrink);
    }

    /// <summary>Shorter scenarios first (drop halves, then single operations), then smaller capacities.</summary>
    private static IEnumerable<Scenario> Shrink(Scenario scenario)
    {
        foreach (Op[] ops in Shrinking.Shorter(scenario.Ops))
        {
            yield return scenario with { Ops = ops };
        }

        if (scenario.Capacity > 1)
        {
            yield return scenario with { Capacity = scenario.Capacity / 2 };
        }
    }

    /// <summary>Runs the scenario on the queue and on the model; describes the first difference, or null.</summary>
    private static string? FirstMismatch(IBoundedQueue<int> queue, PeekFunc? peek, Scenario scenario)
    {
        int capacity = (int)BitOperations.RoundUpToPowerOf2((uint)scenario.Capacity);
        if (queue.Capacity != capacity)
        {
            return $"Capacity {queue.Capacity}, model {capacity}";
        }

        var model = new Queue<int>();
        int next = 0;
        int[] buffer = new int[80];
        for (int step = 0; step < scenario.Ops.Length; step++)
        {
            Op op = scenario.Ops[step];
            string? mismatch = op.Kind switch
            {
                OpKind.Enqueue => CompareEnqueue(model, queue, capacity, next),
                OpKind.Dequeue => CompareDequeue(model, queue),
                OpKind.EnqueueMany => CompareEnqueueMany(model, queue, capacity, buffer.AsSpan(0, op.Length), next),
                OpKind.DequeueMany => CompareDequeueMany(model, queue, buffer.AsSpan(0, op.Length)),
                OpKind.Peek => ComparePeek(model, queue, peek!),
                OpKind.Count => Compare(model.Count, queue.Count),
                OpKind.IsEmpty => Compare(model.Count == 0, queue.IsEmpty),
                _ => throw new InvalidOperationException(op.ToString()),
            };
            next += op.Kind switch { OpKind.Enqueue => 1, OpKind.EnqueueMany => op.Length, _ => 0 }; // items stay distinct

            if (mismatch is not null)
            {
                return $"step {step} ({op}): {mismatch}";
            }
        }

        return null;
    }

    private static string? Compare<TValue>(TValue expected, TValue actual) =>
        EqualityComparer<TValue>.Default.Equals(expected, actual) ? null : $"expected {expected}, got {actual}";

    private static string? CompareEnqueue(Queue<int> model, IBoundedQueue<int> queue, int capacity, int item)
    {
        bool expected = model.Count < capacity;
        if (expected)
        {
            model.Enqueue(item);
        }

        return Compare(expected, queue.TryEnqueue(item));
    }

    private static string? CompareDequeue(Queue<int> model, IBoundedQueue<int> queue)
    {
        bool expected = model.TryDequeue(out int expectedItem);
        bool actual = queue.TryDequeue(out int actualItem);
        return Compare((expected, expectedItem), (actual, actualItem));
    }

    private static string? ComparePeek(Queue<int> model, IBoundedQueue<int> queue, PeekFunc peek)
    {
        bool expected = model.TryPeek(out int expectedItem);
        bool actual = peek(queue, out int actualItem);
        return Compare((expected, expectedItem), (actual, actualItem));
    }

    private static string? CompareEnqueueMany(Queue<int> model, IBoundedQueue<int> queue, int capacity, Span<int> items, int first)
    {
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = first + i;
        }

        int expected = Math.Min(items.Length, capacity - model.Count);
        int actual = queue.TryEnqueueMany(items);
        for (int i = 0; i < expected; i++)
        {
            model.Enqueue(items[i]);
        }

        return Compare(expected, actual);
    }

    private static string? CompareDequeueMany(Queue<int> model, IBoundedQueue<int> queue, Span<int> destination)
    {
        int actual = queue.TryDequeueMany(destination);
        int expected = Math.Min(destination.Length, model.Count);
        if (actual != expected)
        {
            return $"took {actual}, model {expected}";
        }

        for (int i = 0; i < expected; i++)
        {
            int item = model.Dequeue();
            if (destination[i] != item)
            {
                return $"item {i} is {destination[i]}, model {item}";
            }
        }

        return null;
    }

    /// <summary>Planted bug: accepts every seventh enqueued item but silently loses it.</summary>
    private sealed class DropsEverySeventhItem(IBoundedQueue<int> inner) : IBoundedQueue<int>
    {
        private int _offered;

        public int Capacity => inner.Capacity;

        public int Count => inner.Count;

        public bool IsEmpty => inner.IsEmpty;

        public bool TryEnqueue(int item) => ++_offered % 7 == 0 ? inner.Count < inner.Capacity : inner.TryEnqueue(item);

        public bool TryDequeue(out int item) => inner.TryDequeue(out item);

        public int TryEnqueueMany(ReadOnlySpan<int> items)
        {
            int taken = 0;
            while (taken < items.Length && TryEnqueue(items[taken]))
            {
                taken++;
            }

            return taken;
        }

        public int TryDequeueMany(Span<int> destination) => inner.TryDequeueMany(destination);
    }

    /// <summary>Planted bug: reports the full capacity but holds one item less (off by one).</summary>
    private sealed class OneSlotShort(IBoundedQueue<int> inner) : IBoundedQueue<int>
    {
        public int Capacity => inner.Capacity;

        public int Count => inner.Count;

        public bool IsEmpty => inner.IsEmpty;

        public bool TryEnqueue(int item) => inner.Count < inner.Capacity - 1 && inner.TryEnqueue(item);

        public bool TryDequeue(out int item) => inner.TryDequeue(out item);

        public int TryEnqueueMany(ReadOnlySpan<int> items) =>
            inner.TryEnqueueMany(items[..Math.Min(items.Length, Math.Max(0, inner.Capacity - 1 - inner.Count))]);

        public int TryDequeueMany(Span<int> destination) => inner.TryDequeueMany(destination);
    }

    /// <summary>
    /// The SPSC engine tuned to read the producer's index on every take beyond its known-published bound and to
    /// pause whenever it trails the producer: the streaming path, which the default tuning reaches only under load.
    /// </summary>
    private sealed class EagerSpsc(int capacity) : IBoundedQueue<int>
    {
        private LockFree.Queues.SpscRing<int, LockFree.Internal.RealAtomics> _ring = new(capacity, boundReadStreak: 1, streamDistance: 1);

        public int Capacity => _ring.Capacity;

        public int Count => _ring.Count;

        public bool IsEmpty => _ring.IsEmpty;

        public bool TryEnqueue(int item) => _ring.TryEnqueue(item);

        public bool TryDequeue(out int item) => _ring.TryDequeue(out item);

        public bool TryPeek(out int item) => _ring.TryPeek(out item);

        public int TryEnqueueMany(ReadOnlySpan<int> items) => _ring.TryEnqueueMany(items);

        public int TryDequeueMany(Span<int> destination) => _ring.TryDequeueMany(destination);
    }
}
