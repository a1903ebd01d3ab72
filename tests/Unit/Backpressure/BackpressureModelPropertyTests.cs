using System.Numerics;
using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Model-based property: any single-threaded sequence of TryWrite (under any policy the buffer allows),
/// TryRead and TryReadMany behaves exactly like a sequential model: a <see cref="Queue{T}"/> holding at most
/// the rounded capacity, plus counters for dropped, evicted and rejected writes. Every WriteResult, every
/// item read, every drop callback and the statistics after every step are compared.
/// </summary>
public sealed class BackpressureModelPropertyTests
{
    private const int MaxTests = 300;

    private readonly ITestOutputHelper _output;

    public BackpressureModelPropertyTests(ITestOutputHelper output) => _output = output;

    /// <summary>How the property writes one item (the real call, or a planted-bug variant).</summary>
    public delegate WriteResult WriteFunc(BackpressureBuffer<int> buffer, int item, OverflowPolicy policy);

    public enum OpKind
    {
        Write,
        Read,
        ReadMany,
    }

    /// <summary>One operation: a write under <paramref name="Policy"/>, a read, or a batch read of <paramref name="Length"/>.</summary>
    public readonly record struct Op(OpKind Kind, OverflowPolicy Policy, int Length)
    {
        public override string ToString() => Kind switch
        {
            OpKind.Write => $"Write({Policy})",
            OpKind.ReadMany => $"ReadMany({Length})",
            _ => Kind.ToString(),
        };
    }

    /// <summary>A buffer configuration and the operations to run on it.</summary>
    public sealed record Scenario(int Capacity, OverflowPolicy FullMode, bool SingleWriter, bool SingleReader, Op[] Ops)
    {
        /// <summary>Whether writes may evict (DropOldest allowed per call).</summary>
        public bool CanEvict => FullMode == OverflowPolicy.DropOldest || !SingleReader;

        public override string ToString() =>
            $"capacity {Capacity}, {FullMode}, singleWriter {SingleWriter}, singleReader {SingleReader}: [{string.Join(", ", Ops)}]";
    }

    [Fact]
    public void AnyOperationSequence_SingleThreaded_MatchesSequentialModel()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel((b, item, policy) => b.TryWrite(item, policy)));
    }

    [Fact]
    public void AnyOperationSequence_FullModeWrites_MatchSequentialModel()
    {
        // The one-argument TryWrite uses FullMode: run every write of the scenario under it.
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(MaxTests),
            MatchesModel((b, item, _) => b.TryWrite(item), forceFullMode: true));
    }

    [Fact]
    public void AnyOperationSequence_WrapperMisreportingEvictionAsAccepted_IsFalsified()
    {
        // Planted bug: the write happens correctly, but an eviction is reported as a plain acceptance.
        AssertFalsified((b, item, policy) =>
        {
            WriteResult result = b.TryWrite(item, policy);
            return result.Outcome == WriteOutcome.EvictedOldest ? WriteResult.Accepted : result;
        });
    }

    [Fact]
    public void AnyOperationSequence_WrapperDroppingInsteadOfRejecting_IsFalsified()
    {
        // Planted bug: Reject behaves like DropIncoming (the caller's item is discarded instead of handed back).
        AssertFalsified((b, item, policy) => b.TryWrite(item, policy == OverflowPolicy.Reject ? OverflowPolicy.DropIncoming : policy));
    }

    private void AssertFalsified(WriteFunc write)
    {
        Exception? failure = Record.Exception(
            () => Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(write)));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
        _output.WriteLine(failure.Message);
    }

    private static Property MatchesModel(WriteFunc write, bool forceFullMode = false) =>
        Prop.ForAll(ScenarioArb(), scenario =>
        {
            string? mismatch = FirstMismatch(write, scenario, forceFullMode);
            return (mismatch is null).Label(mismatch ?? "matches");
        });

    private static Arbitrary<Scenario> ScenarioArb()
    {
        Gen<OverflowPolicy> policy = Gen.Elements(OverflowPolicy.Wait, OverflowPolicy.Reject, OverflowPolicy.DropIncoming, OverflowPolicy.DropOldest);
        Gen<Op> op = Gen.Frequency(
            (5, policy.Select(p => new Op(OpKind.Write, p, 0))),
            (2, Gen.Constant(new Op(OpKind.Read, OverflowPolicy.Wait, 0))),
            (1, Gen.Choose(0, 20).Select(n => new Op(OpKind.ReadMany, OverflowPolicy.Wait, n))));
        Gen<Scenario> scenario =
            from capacity in Gen.Choose(1, 20)
            from fullMode in policy
            from singleWriter in Gen.Elements(false, true)
            from singleReader in Gen.Elements(false, true)
            from length in Gen.Choose(0, 150)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, fullMode, singleWriter, singleReader, Allowed(ops, fullMode, singleReader));
        return Arb.From(scenario, Shrink);
    }

    /// <summary>DropOldest per call only where the buffer allows it; elsewhere such a write becomes a Reject.</summary>
    private static Op[] Allowed(Op[] ops, OverflowPolicy fullMode, bool singleReader) =>
        fullMode == OverflowPolicy.DropOldest || !singleReader
            ? ops
            : ops.Select(o => o.Policy == OverflowPolicy.DropOldest && o.Kind == OpKind.Write ? o with { Policy = OverflowPolicy.Reject } : o).ToArray();

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

    /// <summary>Runs the scenario on a buffer and on the model; describes the first difference, or null.</summary>
    private static string? FirstMismatch(WriteFunc write, Scenario scenario, bool forceFullMode)
    {
        var drops = new List<(int Item, DropReason Reason)>();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = scenario.Capacity,
            FullMode = scenario.FullMode,
            SingleWriter = scenario.SingleWriter,
            SingleReader = scenario.SingleReader,
            ItemDropped = (item, reason) => drops.Add((item, reason)),
            TimeProvider = new ManualTimeProvider(), // never advanced: every retry hint is "no drain measured"
        });
        int capacity = (int)BitOperations.RoundUpToPowerOf2((uint)scenario.Capacity);
        if (buffer.Capacity != capacity)
        {
            return $"Capacity {buffer.Capacity}, model {capacity}";
        }

        var model = new Queue<int>();
        var expectedDrops = new List<(int Item, DropReason Reason)>();
        long enqueued = 0, dequeued = 0, dropped = 0, evicted = 0, rejected = 0;
        int[] batch = new int[20];
        for (int step = 0; step < scenario.Ops.Length; step++)
        {
            Op op = scenario.Ops[step];
            string? mismatch = null;
            switch (op.Kind)
            {
                case OpKind.Write:
                    OverflowPolicy policy = forceFullMode ? scenario.FullMode : op.Policy;
                    WriteResult expected;
                    if (model.Count < capacity)
                    {
                        model.Enqueue(step);
                        enqueued++;
                        expected = WriteResult.Accepted;
                    }
                    else
                    {
                        switch (policy)
                        {
                            case OverflowPolicy.DropIncoming:
                                dropped++;
                                expectedDrops.Add((step, DropReason.Incoming));
                                expected = WriteResult.DroppedIncoming;
                                break;
                            case OverflowPolicy.DropOldest:
                                evicted++;
                                enqueued++;
                                expectedDrops.Add((model.Dequeue(), DropReason.Oldest));
                                model.Enqueue(step);
                                expected = WriteResult.EvictedOldest;
                                break;
                            default:
                                rejected++;
                                expected = WriteResult.Rejected(RejectReason.Full, Timeout.InfiniteTimeSpan);
                                break;
                        }
                    }

                    mismatch = Compare(expected, write(buffer, step, policy));
                    break;

                case OpKind.Read:
                    bool had = model.TryDequeue(out int expectedItem);
                    dequeued += had ? 1 : 0;
                    bool got = buffer.TryRead(out int actualItem);
                    mismatch = Compare((had, had ? expectedItem : 0), (got, got ? actualItem : 0));
                    break;

                case OpKind.ReadMany:
                    var expectedItems = new List<int>();
                    while (expectedItems.Count < op.Length && model.TryDequeue(out int next))
                    {
                        expectedItems.Add(next);
                    }

                    dequeued += expectedItems.Count;
                    int count = buffer.TryReadMany(batch.AsSpan(0, op.Length));
                    mismatch = Compare(string.Join(",", expectedItems), string.Join(",", batch.Take(count)));
                    break;
            }

            mismatch ??= Compare(string.Join(",", expectedDrops), string.Join(",", drops));
            mismatch ??= Compare(new BackpressureStatistics(enqueued, dequeued, dropped, evicted, rejected, model.Count), buffer.GetStatistics());
            mismatch ??= Compare(model.Count, buffer.Count);
            if (mismatch is not null)
            {
                return $"step {step} ({op}): {mismatch}";
            }
        }

        return null;
    }

    private static string? Compare<TValue>(TValue expected, TValue actual) =>
        EqualityComparer<TValue>.Default.Equals(expected, actual) ? null : $"expected {expected}, got {actual}";
}
