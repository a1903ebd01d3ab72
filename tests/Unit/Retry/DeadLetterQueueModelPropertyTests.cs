using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// Model-based property (review, 2026-11-23): any single-threaded sequence of adds, takes, removals and replays (a
/// target that takes a prefix, then refuses) on a <see cref="DeadLetterQueue{T}"/> of a small capacity (so the ring
/// wraps) behaves like a list, under each overflow policy: contents in order, outcomes, what the drop callback sees,
/// replay results and every counter of the statistics (Added = Replayed + Removed + Evicted + Count).
/// </summary>
public sealed class DeadLetterQueueModelPropertyTests
{
    private const int MaxTests = 300;

    public enum OpKind
    {
        Add,
        Take,
        RemoveWhere,
        Replay,
        ReplayAddingDuring,
    }

    public readonly record struct Op(OpKind Kind, int A, int B)
    {
        public override string ToString() => $"{Kind}({A},{B})";
    }

    public sealed record Scenario(int Capacity, OverflowPolicy Policy, Op[] Ops)
    {
        public override string ToString() => $"capacity {Capacity}, {Policy}: [{string.Join(", ", Ops)}]";
    }

    [Fact]
    public void AnyOperationSequence_SingleThreaded_MatchesListModel()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(plantedNewestFirst: false));
    }

    [Fact]
    public void AnyOperationSequence_TakesTheNewestFirst_IsFalsified()
    {
        // Planted (acceptance audit, 2026-11-23: the model had no planted bug proving it can fail): the harness's take
        // removes the newest dead letter instead of the oldest (through Snapshot and RemoveWhere, so every counter
        // stays as a take's would be); only the order is wrong, and the model must see it.
        Exception? failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), MatchesModel(plantedNewestFirst: true)));

        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
    }

    private static Property MatchesModel(bool plantedNewestFirst)
    {
        Gen<Op> op = Gen.OneOf(
            Gen.Constant(new Op(OpKind.Add, 0, 0)),
            Gen.Constant(new Op(OpKind.Add, 0, 0)),
            Gen.Constant(new Op(OpKind.Take, 0, 0)),
            from m in Gen.Choose(2, 4) from r in Gen.Choose(0, 3) select new Op(OpKind.RemoveWhere, m, r),
            from m in Gen.Choose(1, 3) from n in Gen.Choose(0, 6) select new Op(OpKind.Replay, m, n),
            from n in Gen.Choose(0, 4) from adds in Gen.Choose(1, 4) select new Op(OpKind.ReplayAddingDuring, n, adds));
        Gen<Scenario> scenario =
            from capacity in Gen.Choose(1, 5)
            from policy in Gen.Elements(OverflowPolicy.Reject, OverflowPolicy.DropIncoming, OverflowPolicy.DropOldest)
            from length in Gen.Choose(0, 80)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, policy, ops);
        Arbitrary<Scenario> arb = Arb.From(scenario, s => Shrinking.Shorter(s.Ops).Select(ops => s with { Ops = ops }));

        return Prop.ForAll(arb, s =>
        {
            string? mismatch = FirstMismatch(s, plantedNewestFirst);
            return (mismatch is null).Label(mismatch ?? "matches");
        });
    }

    private static DeadLetter<int> Letter(int message) => new(message, "src", "r", null, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    private static string? FirstMismatch(Scenario scenario, bool plantedNewestFirst)
    {
        var time = new ManualTimeProvider();
        var reported = new List<(int Message, DropReason Reason)>();
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int>
        {
            Capacity = scenario.Capacity,
            FullMode = scenario.Policy,
            TimeProvider = time,
            ItemDropped = (l, r) => reported.Add((l.Message, r)),
        });

        var model = new List<int>();
        var expectedReports = new List<(int Message, DropReason Reason)>();
        long added = 0, replayed = 0, removed = 0, droppedIncoming = 0, evicted = 0, rejected = 0;
        int next = 0;
        var arrival = new Dictionary<int, long>(); // message -> its arrival number (adds accepted before it): the queue's order

        bool ModelAdd(int message, out WriteOutcome outcome)
        {
            if (model.Count < scenario.Capacity)
            {
                arrival[message] = added;
                model.Add(message);
                added++;
                outcome = WriteOutcome.Accepted;
                return true;
            }

            switch (scenario.Policy)
            {
                case OverflowPolicy.Reject:
                    rejected++;
                    outcome = WriteOutcome.Rejected;
                    return false;
                case OverflowPolicy.DropIncoming:
                    droppedIncoming++;
                    expectedReports.Add((message, DropReason.Incoming));
                    outcome = WriteOutcome.DroppedIncoming;
                    return false;
                default:
                    expectedReports.Add((model[0], DropReason.Oldest));
                    model.RemoveAt(0);
                    evicted++;
                    arrival[message] = added;
                    model.Add(message);
                    added++;
                    outcome = WriteOutcome.EvictedOldest;
                    return true;
            }
        }

        for (int step = 0; step < scenario.Ops.Length; step++)
        {
            Op op = scenario.Ops[step];
            string at = $"op {step} {op}";
            switch (op.Kind)
            {
                case OpKind.Add:
                {
                    int message = next++;
                    WriteResult result = queue.TryAdd(Letter(message));
                    ModelAdd(message, out WriteOutcome expected);
                    if (result.Outcome != expected)
                    {
                        return $"{at}: {result.Outcome}, model {expected}";
                    }

                    break;
                }

                case OpKind.Take:
                {
                    bool got;
                    DeadLetter<int>? letter;
                    if (plantedNewestFirst)
                    {
                        IReadOnlyList<DeadLetter<int>> held = queue.Snapshot();
                        got = held.Count > 0;
                        letter = got ? held[^1] : null;
                        if (got)
                        {
                            queue.RemoveWhere(l => ReferenceEquals(l, letter));
                        }
                    }
                    else
                    {
                        got = queue.TryTake(out letter);
                    }

                    if (got != model.Count > 0 || (got && letter!.Message != model[0]))
                    {
                        return $"{at}: took {got} {letter?.Message}, model {(model.Count > 0 ? model[0] : "none")}";
                    }

                    if (got)
                    {
                        model.RemoveAt(0);
                        removed++;
                    }

                    break;
                }

                case OpKind.RemoveWhere:
                {
                    int count = queue.RemoveWhere(l => l.Message % op.A == op.B % op.A);
                    int expected = model.RemoveAll(m => m % op.A == op.B % op.A);
                    removed += expected;
                    if (count != expected)
                    {
                        return $"{at}: removed {count}, model {expected}";
                    }

                    break;
                }

                case OpKind.Replay:
                case OpKind.ReplayAddingDuring:
                {
                    // Selects messages with m % A != 0 (Replay) or all (ReplayAddingDuring); the target takes B, then
                    // refuses. ReplayAddingDuring adds B2 new letters from inside the target, at its first call.
                    int takes = op.Kind == OpKind.Replay ? op.B : op.A;
                    int addsDuring = op.Kind == OpKind.Replay ? 0 : op.B;
                    Func<int, bool> select = op.Kind == OpKind.Replay ? m => m % op.A != 0 : _ => true;
                    var sunk = new List<int>();
                    bool first = true;
                    ReplayResult result = queue.Replay(
                        l =>
                        {
                            if (first)
                            {
                                first = false;
                                for (int i = 0; i < addsDuring; i++)
                                {
                                    queue.TryAdd(Letter(100_000 + next++));
                                }
                            }

                            if (sunk.Count == takes)
                            {
                                return false;
                            }

                            sunk.Add(l.Message);
                            return true;
                        },
                        l => select(l.Message));

                    // Model: the selected ones leave (in order); adds made during the replay go to the emptied queue
                    // (through the policy); the target takes a prefix; the rest go back where they were (arrival order),
                    // as far as room allows (the oldest of them do not fit). Before (session 11) they went back at the front.
                    List<int> chosen = model.Where(select).ToList();
                    model.RemoveAll(m => select(m));
                    int addBase = next - addsDuring;
                    if (chosen.Count > 0)
                    {
                        for (int i = 0; i < addsDuring; i++)
                        {
                            ModelAdd(100_000 + addBase + i, out _);
                        }
                    }

                    int took = Math.Min(takes, chosen.Count);
                    replayed += took;
                    int kept = 0;
                    for (int i = chosen.Count - 1; i >= took; i--)
                    {
                        if (model.Count == scenario.Capacity)
                        {
                            evicted++;
                            expectedReports.Add((chosen[i], DropReason.Oldest));
                            continue;
                        }

                        int at2 = model.FindIndex(m => arrival[m] > arrival[chosen[i]]);
                        model.Insert(at2 < 0 ? model.Count : at2, chosen[i]);
                        kept++;
                    }

                    if (!sunk.SequenceEqual(chosen.Take(took)) || result != new ReplayResult(took, kept, chosen.Count - took - kept))
                    {
                        return $"{at}: sunk [{string.Join(",", sunk)}] {result}, model [{string.Join(",", chosen.Take(took))}] ({took}, {kept})";
                    }

                    break;
                }
            }

            List<int> actual = queue.Snapshot().Select(l => l.Message).ToList();
            if (!actual.SequenceEqual(model) || queue.Count != model.Count)
            {
                return $"{at}: [{string.Join(",", actual)}], model [{string.Join(",", model)}]";
            }

            if (!reported.SequenceEqual(expectedReports))
            {
                return $"{at}: reported [{string.Join(",", reported)}], model [{string.Join(",", expectedReports)}]";
            }

            DeadLetterStatistics stats = queue.GetStatistics();
            var expectedStats = new DeadLetterStatistics(added, replayed, removed, droppedIncoming, evicted, rejected, model.Count, TimeSpan.Zero);
            if (stats != expectedStats)
            {
                return $"{at}: {stats}, model {expectedStats}";
            }

            if (stats.Added != stats.Replayed + stats.Removed + stats.Evicted + stats.Count)
            {
                return $"{at}: accounting identity broken: {stats}";
            }
        }

        return null;
    }
}
