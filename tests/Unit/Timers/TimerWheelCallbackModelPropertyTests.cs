using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Model-based property (review, 2026-11-23), beside <see cref="TimerWheelModelPropertyTests"/>: relative and absolute
/// timers (<see cref="HierarchicalTimerWheel.ScheduleAt"/>, due times in the past included), cancels from outside and
/// from inside callbacks (of a timer in the same firing batch, a later one, an ended one, itself), schedules from inside
/// callbacks, on a clock whose timestamps start at an arbitrary origin. Checked after every advance: exactly the due,
/// uncancelled timers fired, each once; every Cancel answered true exactly when the timer then never ran (fire xor
/// cancel); FiredCount, CancelledCount and PendingCount agree.
/// </summary>
public sealed class TimerWheelCallbackModelPropertyTests
{
    private const int MaxTests = 150;
    private const long TickTicks = TimeSpan.TicksPerMillisecond;

    public enum OpKind
    {
        Schedule,
        ScheduleAt,
        ScheduleCanceller,
        ScheduleScheduler,
        Cancel,
        Step,
    }

    /// <summary>Value: a due time (relative ticks, or absolute offset from now), a timer pick, or a clock step.</summary>
    public readonly record struct Op(OpKind Kind, long Value, int Pick)
    {
        public override string ToString() => $"{Kind}({Value},{Pick})";
    }

    public sealed record Scenario(long Origin, Op[] Ops)
    {
        public override string ToString() => $"origin {Origin}: [{string.Join(", ", Ops)}]";
    }

    [Fact]
    public void AnyOperationSequence_WithCallbacksThatCancelAndSchedule_MatchesModel()
    {
        Gen<long> due = Gen.OneOf(
            Gen.Choose(0, 20 * (int)TickTicks).Select(t => (long)t),
            Gen.Choose(0, 300).Select(t => t * TickTicks),
            Gen.Choose(0, 100_000).Select(t => (t * TickTicks) + 1));
        Gen<long> absolute = Gen.OneOf(due, Gen.Choose(-50 * (int)TickTicks, 0).Select(t => (long)t));
        Gen<long> step = Gen.OneOf(
            Gen.Choose(0, 3 * (int)TickTicks).Select(t => (long)t),
            Gen.Choose(0, 50).Select(t => t * TickTicks),
            Gen.Choose(0, 70_000).Select(t => t * TickTicks));
        Gen<int> pick = Gen.Choose(0, 1000);
        Gen<Op> op = Gen.Frequency(
            (3, due.Select(d => new Op(OpKind.Schedule, d, 0))),
            (2, absolute.Select(d => new Op(OpKind.ScheduleAt, d, 0))),
            (2, from d in due from p in pick select new Op(OpKind.ScheduleCanceller, d, p)),
            (1, from d in due from p in Gen.Choose(0, 3) select new Op(OpKind.ScheduleScheduler, d, p)),
            (2, pick.Select(p => new Op(OpKind.Cancel, 0, p))),
            (3, step.Select(s => new Op(OpKind.Step, s, 0))));
        Gen<Scenario> scenario =
            from origin in Gen.Elements(0L, -TimeSpan.FromDays(400).Ticks, long.MaxValue / 2, 123_456_789L)
            from length in Gen.Choose(0, 100)
            from ops in Gen.ArrayOf(op, length)
            select new Scenario(origin, ops);
        Arbitrary<Scenario> arb = Arb.From(scenario, s => Shrinking.Shorter(s.Ops).Select(o => s with { Ops = o }));

        Check.One(Config.QuickThrowOnFailure.WithMaxTest(MaxTests), Prop.ForAll(arb, s =>
        {
            string? mismatch = FirstMismatch(s);
            return (mismatch is null).Label(mismatch ?? "matches");
        }));
    }

    private sealed class Model
    {
        public readonly List<TimerHandle> Handles = new();
        public readonly List<long> DueTick = new();
        public readonly List<int> Status = new(); // 0 pending, 1 fired, 2 cancelled
        public readonly List<int> Fired = new();  // ids, in firing order
        public readonly List<(int Target, bool Answer, int By)> CallbackCancels = new();
        public readonly List<Op> Children = new(); // relative schedules requested by callbacks (taken in after the advance)
        public long Tick;
        public long CancelledTotal;
    }

    private static string? FirstMismatch(Scenario scenario)
    {
        var clock = new ClockOriginTests.ShiftedClock(new ManualTimeProvider(), 0);
        clock = new ClockOriginTests.ShiftedClock(clock.Inner, unchecked(scenario.Origin - clock.Inner.GetTimestamp()));
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromTicks(TickTicks), clock);
        long origin = clock.GetTimestamp();
        var m = new Model();
        HierarchicalTimerWheel w = wheel;

        void Add(TimerHandle handle, long dueTick)
        {
            m.Handles.Add(handle);
            m.DueTick.Add(dueTick);
            m.Status.Add(0);
        }

        long RelativeDue(long dueIn) => m.Tick + 1 + ((dueIn + TickTicks - 1) / TickTicks);

        // Two empty steps at the end: the first fires what is due now, the second takes in the cancels made by its callbacks.
        Op[] ops = [.. scenario.Ops, new Op(OpKind.Step, 0, 0), new Op(OpKind.Step, 0, 0)];
        for (int i = 0; i < ops.Length; i++)
        {
            Op op = ops[i];
            int id = m.Handles.Count;
            switch (op.Kind)
            {
                case OpKind.Schedule:
                    Add(wheel.Schedule(TimeSpan.FromTicks(op.Value), s => m.Fired.Add((int)s!), id), RelativeDue(op.Value));
                    break;

                case OpKind.ScheduleAt:
                {
                    long at = clock.GetTimestamp() + op.Value;
                    long since = at - origin;
                    long dueTick = since <= 0 ? 0 : (since + TickTicks - 1) / TickTicks;
                    Add(wheel.ScheduleAt(at, s => m.Fired.Add((int)s!), id), dueTick);
                    break;
                }

                case OpKind.ScheduleCanceller:
                {
                    // Its callback cancels the timer picked among those scheduled so far (itself included).
                    int target = op.Pick % (id + 1);
                    Add(
                        wheel.Schedule(
                            TimeSpan.FromTicks(op.Value),
                            s =>
                            {
                                m.Fired.Add((int)s!);
                                m.CallbackCancels.Add((target, w.Cancel(m.Handles[target]), (int)s!));
                            },
                            id),
                        RelativeDue(op.Value));
                    break;
                }

                case OpKind.ScheduleScheduler:
                {
                    // Its callback schedules a child timer Pick ticks on (0: due at the next tick).
                    long childIn = op.Pick * TickTicks;
                    Add(
                        wheel.Schedule(
                            TimeSpan.FromTicks(op.Value),
                            s =>
                            {
                                m.Fired.Add((int)s!);
                                int child = m.Handles.Count;
                                m.Handles.Add(w.Schedule(TimeSpan.FromTicks(childIn), c => m.Fired.Add((int)c!), child));
                                m.DueTick.Add(RelativeDue(childIn)); // the callback sees the tick just advanced to
                                m.Status.Add(0);
                            },
                            id),
                        RelativeDue(op.Value));
                    break;
                }

                case OpKind.Cancel:
                {
                    if (id == 0)
                    {
                        continue;
                    }

                    int k = op.Pick % id;
                    bool expected = m.Status[k] == 0;
                    if (wheel.Cancel(m.Handles[k]) != expected)
                    {
                        return $"op {i}: Cancel({k}) answered {!expected}, model {expected}";
                    }

                    if (expected)
                    {
                        m.Status[k] = 2;
                        m.CancelledTotal++;
                    }

                    break;
                }

                default:
                {
                    clock.Inner.Advance(TimeSpan.FromTicks(op.Value));
                    long tick = (clock.GetTimestamp() - origin) / TickTicks;
                    var due = Enumerable.Range(0, m.Status.Count).Where(t => m.Status[t] == 0 && m.DueTick[t] <= tick).ToHashSet();
                    m.Fired.Clear();
                    m.CallbackCancels.Clear();
                    m.Tick = tick; // callbacks that schedule count from the tick advanced to
                    int ran = wheel.Advance();
                    if (wheel.CurrentTick != tick)
                    {
                        return $"op {i}: CurrentTick {wheel.CurrentTick}, model {tick}";
                    }

                    if (ran != m.Fired.Count || m.Fired.Distinct().Count() != m.Fired.Count)
                    {
                        return $"op {i}: Advance returned {ran}, fired [{string.Join(",", m.Fired)}]";
                    }

                    // Cancels from callbacks: a target of this batch not yet run may be stopped (true: it must not run);
                    // a pending later one must be (true); an ended one, or a running one (itself), must answer false.
                    var stopped = new HashSet<int>();
                    foreach ((int target, bool answer, int by) in m.CallbackCancels)
                    {
                        bool inBatch = due.Contains(target);
                        bool laterPending = !inBatch && target < m.Status.Count && m.Status[target] == 0;
                        bool ran2 = m.Fired.Contains(target);
                        if (answer && (ran2 || !(inBatch || laterPending) || target == by))
                        {
                            return $"op {i}: callback {by} cancelled {target} with true, but it ran or had ended";
                        }

                        if (!answer && !ran2 && (inBatch || laterPending) && !stopped.Contains(target))
                        {
                            return $"op {i}: callback {by} cancel of {target} answered false, yet it did not run";
                        }

                        if (answer)
                        {
                            stopped.Add(target);
                            m.CancelledTotal++;
                        }
                    }

                    var expectedFired = due.Where(t => !stopped.Contains(t)).OrderBy(t => t).ToList();
                    if (!expectedFired.SequenceEqual(m.Fired.OrderBy(t => t)))
                    {
                        return $"op {i}: at tick {tick} fired [{string.Join(",", m.Fired.OrderBy(t => t))}], model [{string.Join(",", expectedFired)}]";
                    }

                    foreach (int t in m.Fired)
                    {
                        m.Status[t] = 1;
                    }

                    foreach (int t in stopped)
                    {
                        m.Status[t] = 2;
                    }

                    // A snapshot of the advance: a cancel made by a callback counts until the next advance.
                    int pending = m.Status.Count(s => s == 0);
                    if (wheel.PendingCount > pending + stopped.Count)
                    {
                        return $"op {i}: PendingCount {wheel.PendingCount} > model {pending} + {stopped.Count} cancelled by callbacks";
                    }

                    if (wheel.FiredCount != m.Status.Count(s => s == 1))
                    {
                        return $"op {i}: FiredCount {wheel.FiredCount}, model {m.Status.Count(s => s == 1)}";
                    }

                    break;
                }
            }
        }

        // Every cancellation has been reclaimed by an advance since.
        if (wheel.CancelledCount != m.CancelledTotal)
        {
            return $"end: CancelledCount {wheel.CancelledCount}, model {m.CancelledTotal}";
        }

        int stillPending = m.Status.Count(s => s == 0);
        if (wheel.PendingCount != stillPending)
        {
            return $"end: PendingCount {wheel.PendingCount}, model {stillPending}";
        }

        return null;
    }
}
