using FsCheck;
using FsCheck.Fluent;
using LockFree.Internal;
using LockFree.WorkStealing;
using Xunit;
using Xunit.Abstractions;
using LockFree.Tests.Unit.Support;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// Model-based property: any single-threaded interleaving of push, pop, steal and batch steals on a deque
/// (and on the thief's own deque the batches move into) behaves exactly like a sequential double-ended list:
/// pop takes the newest, steal the oldest, a batch the oldest min(ceil(n/2), 32) in order; nothing answers
/// Retry without a race; Count is exact. Positions start at 0, just below long.MaxValue or at a negative value.
/// </summary>
public sealed class DequeModelPropertyTests(ITestOutputHelper output)
{
    private const int MaxTests = 300;

    public enum OpKind
    {
        Push,
        PushMany,
        Pop,
        Steal,
        StealBatch,
        StealBatchAndPop,
        ThiefPop,
    }

    public readonly record struct Op(OpKind Kind, int N)
    {
        public override string ToString() => Kind == OpKind.PushMany ? $"PushMany({N})" : Kind.ToString();
    }

    public sealed record Scenario(int Capacity, long Start, Op[] Ops)
    {
        public override string ToString() => $"capacity {Capacity}, start {Start}: [{string.Join(", ", Ops)}]";
    }

    [Fact]
    public void AnyOperationSequence_SingleThreaded_MatchesDequeModel() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(ScenarioArb(), scenario =>
        {
            string? mismatch = FirstMismatch(scenario, popsOldest: false);
            return (mismatch is null).Label(mismatch ?? "matches");
        }));

    [Fact]
    public void AnyOperationSequence_ModelWithFifoPop_IsFalsified()
    {
        // Proof that the property can fail: a model whose pop took the oldest item must be told apart.
        Exception? failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(ScenarioArb(), scenario =>
        {
            string? mismatch = FirstMismatch(scenario, popsOldest: true);
            return (mismatch is null).Label(mismatch ?? "matches");
        })));
        Assert.NotNull(failure);
        Assert.Contains("Falsifiable", failure.Message, StringComparison.Ordinal);
        output.WriteLine(failure.Message);
    }

    private static Arbitrary<Scenario> ScenarioArb()
    {
        Gen<Op> op = Gen.OneOf(
            Gen.Constant(new Op(OpKind.Push, 0)),
            Gen.Constant(new Op(OpKind.Push, 0)),
            Gen.Choose(0, 100).Select(n => new Op(OpKind.PushMany, n)),
            Gen.Constant(new Op(OpKind.Pop, 0)),
            Gen.Constant(new Op(OpKind.Steal, 0)),
            Gen.Constant(new Op(OpKind.StealBatch, 0)),
            Gen.Constant(new Op(OpKind.StealBatchAndPop, 0)),
            Gen.Constant(new Op(OpKind.ThiefPop, 0)));
        Gen<Scenario> scenario =
            from capacity in Gen.Choose(1, 16)
            from start in Gen.Elements(0L, long.MaxValue - 40, -17L, 1L << 50)
            from length in Gen.Choose(0, 150)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(capacity, start, ops);
        return Arb.From(scenario, Shrink);
    }

    private static IEnumerable<Scenario> Shrink(Scenario scenario)
    {
        foreach (Op[] ops in Shrinking.Shorter(scenario.Ops))
        {
            yield return scenario with { Ops = ops };
        }

        if (scenario.Start != 0)
        {
            yield return scenario with { Start = 0 };
        }
    }

    private static string? FirstMismatch(Scenario scenario, bool popsOldest)
    {
        var victim = new ChaseLevDeque<object, RealAtomics>(scenario.Capacity, scenario.Start);
        var thief = new ChaseLevDeque<object, RealAtomics>(1, scenario.Start);
        var model = new LinkedList<int>();
        var thiefModel = new LinkedList<int>();
        int next = 0;
        for (int i = 0; i < scenario.Ops.Length; i++)
        {
            Op op = scenario.Ops[i];
            string at = $"op {i} ({op})";
            switch (op.Kind)
            {
                case OpKind.Push:
                case OpKind.PushMany:
                    for (int k = 0; k < (op.Kind == OpKind.Push ? 1 : op.N); k++)
                    {
                        victim.Push(next);
                        model.AddLast(next++);
                    }

                    break;

                case OpKind.Pop:
                {
                    bool ok = victim.TryPop(out object? item);
                    if (ok != (model.Count > 0))
                    {
                        return $"{at}: TryPop returned {ok} with {model.Count} items";
                    }

                    if (ok)
                    {
                        int expected = popsOldest ? model.First!.Value : model.Last!.Value;
                        if (popsOldest)
                        {
                            model.RemoveFirst();
                        }
                        else
                        {
                            model.RemoveLast();
                        }

                        if ((int)item! != expected)
                        {
                            return $"{at}: popped {item}, model says {expected}";
                        }
                    }

                    break;
                }

                case OpKind.Steal:
                {
                    StealResult r = victim.TrySteal(out object? item);
                    if (r != (model.Count > 0 ? StealResult.Success : StealResult.Empty))
                    {
                        return $"{at}: TrySteal answered {r} with {model.Count} items";
                    }

                    if (r == StealResult.Success)
                    {
                        if ((int)item! != model.First!.Value)
                        {
                            return $"{at}: stole {item}, model says {model.First.Value}";
                        }

                        model.RemoveFirst();
                    }

                    break;
                }

                case OpKind.StealBatch:
                case OpKind.StealBatchAndPop:
                {
                    bool popOne = op.Kind == OpKind.StealBatchAndPop;
                    int expected = Math.Min((model.Count + 1) / 2, ChaseLevDeque<object, RealAtomics>.MaxBatch);
                    StealResult r = victim.TryStealBatch(ref thief, popOne, out int moved, out object? first);
                    if (r != (expected > 0 ? StealResult.Success : StealResult.Empty) || moved != expected)
                    {
                        return $"{at}: answered {r}, moved {moved}; model expects {expected} of {model.Count}";
                    }

                    for (int k = 0; k < moved; k++)
                    {
                        int value = model.First!.Value;
                        model.RemoveFirst();
                        if (popOne && k == 0)
                        {
                            if ((int)first! != value)
                            {
                                return $"{at}: returned {first}, model says {value}";
                            }
                        }
                        else
                        {
                            thiefModel.AddLast(value);
                        }
                    }

                    break;
                }

                case OpKind.ThiefPop:
                {
                    bool ok = thief.TryPop(out object? item);
                    if (ok != (thiefModel.Count > 0) || (ok && (int)item! != thiefModel.Last!.Value))
                    {
                        return $"{at}: thief's TryPop gave {ok}/{item}, model has {thiefModel.Count} items, last {thiefModel.Last?.Value}";
                    }

                    if (ok)
                    {
                        thiefModel.RemoveLast();
                    }

                    break;
                }
            }

            if (victim.Count != model.Count || thief.Count != thiefModel.Count)
            {
                return $"{at}: Count {victim.Count}/{thief.Count}, model {model.Count}/{thiefModel.Count}";
            }
        }

        return null;
    }
}
