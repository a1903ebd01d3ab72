using System.Collections.Immutable;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>The kind of a timer-wheel operation in a history.</summary>
public enum TimerOpKind
{
    /// <summary><c>Schedule(dueIn = DueIn ticks)</c> of timer <c>Id</c>; answers a handle (always, in these histories).</summary>
    Schedule,

    /// <summary><c>Cancel(handle of Id)</c>; answers true or false.</summary>
    Cancel,

    /// <summary>The callback of timer <c>Id</c> ran, during the driver's advance to <c>Tick</c>.</summary>
    Fire,

    /// <summary>The driver's <c>AdvanceTo(Tick)</c> as one atomic step, <see cref="Drain"/> then <see cref="Publish"/> (its callbacks are separate <see cref="Fire"/> operations): for hand-written sequential histories.</summary>
    Advance,

    /// <summary>The driver's <c>AdvanceTo(Tick)</c> began taking in scheduled timers (a real advance is recorded as this and a <see cref="Publish"/>, both spanning its call).</summary>
    Drain,

    /// <summary>The driver's <c>AdvanceTo(Tick)</c> published <c>Tick</c>, which later schedules compute their due tick from.</summary>
    Publish,
}

/// <summary>A timer-wheel call: the timer id (Schedule, Cancel, Fire), the dueIn in ticks (Schedule), the target tick (Fire, Advance).</summary>
public sealed record TimerInput(TimerOpKind Kind, int Id = 0, long DueIn = 0, long Tick = 0)
{
    /// <summary>Schedules timer <paramref name="id"/> due <paramref name="dueIn"/> ticks after the next tick.</summary>
    public static TimerInput Schedule(int id, long dueIn) => new(TimerOpKind.Schedule, id, DueIn: dueIn);

    /// <summary>Cancels timer <paramref name="id"/> through its handle.</summary>
    public static TimerInput Cancel(int id) => new(TimerOpKind.Cancel, id);

    /// <summary>Timer <paramref name="id"/>'s callback ran during the advance to <paramref name="tick"/>.</summary>
    public static TimerInput Fire(int id, long tick) => new(TimerOpKind.Fire, id, Tick: tick);

    /// <summary>The driver advanced the wheel to <paramref name="tick"/> (drain and publish in one step).</summary>
    public static TimerInput Advance(long tick) => new(TimerOpKind.Advance, Tick: tick);

    /// <summary>The driver's advance to <paramref name="tick"/> began taking in timers (its first half).</summary>
    public static TimerInput Drain(long tick) => new(TimerOpKind.Drain, Tick: tick);

    /// <summary>The driver's advance to <paramref name="tick"/> published the tick (its second half).</summary>
    public static TimerInput Publish(long tick) => new(TimerOpKind.Publish, Tick: tick);

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        TimerOpKind.Schedule => $"Schedule(#{Id}, +{DueIn})",
        TimerOpKind.Cancel => $"Cancel(#{Id})",
        TimerOpKind.Fire => $"Fire(#{Id}) in AdvanceTo({Tick})",
        TimerOpKind.Drain => $"AdvanceTo({Tick}): drain",
        TimerOpKind.Publish => $"AdvanceTo({Tick}): publish",
        _ => $"AdvanceTo({Tick})",
    };
}

/// <summary>
/// The sequential specification of a timer wheel driven by one thread. The state is the published tick and, per
/// timer id, not scheduled / pending (with its due tick) / fired / cancelled.
/// <list type="bullet">
/// <item><c>Schedule(id, d)</c> at published tick <c>now</c>: the timer is pending, due at <c>now + 1 + d</c> (the +1 is the
/// unknown phase within the current tick, as in the engine).</item>
/// <item><c>Cancel(id)</c> answers true exactly when the timer is pending, and cancels it; false for a fired or cancelled one
/// (a stale handle: its node may meanwhile carry a newer timer).</item>
/// <item><c>Fire(id)</c> during the advance to <c>t</c> (one operation per callback, spanning from the advance's call to the
/// callback): allowed only for a pending timer due at or before <c>t</c>; it is then fired.</item>
/// <item><c>AdvanceTo(t)</c> is two steps, as in the engine, which drains and sweeps under its gate and only then publishes
/// the tick. The drain opens the advance. The publish closes it: no pending timer may then be due at or before <c>t</c>
/// (each fired or was cancelled first), except one scheduled between the two (it may have been pushed after the driver
/// looked, and then fires at the next advance); the published tick becomes <c>t</c>. A harness records a real advance
/// as a <see cref="TimerOpKind.Drain"/> and a <see cref="TimerOpKind.Publish"/>, both spanning its call;
/// <see cref="TimerOpKind.Advance"/> is both at once, for hand-written sequential histories.</item>
/// </list>
/// </summary>
/// <remarks>
/// <para>
/// Firing is per timer, not per advance: an advance claims its due timers one by one, so a Cancel concurrent with it may
/// lose to a timer claimed early in the sweep and then win on one claimed later. An atomic "AdvanceTo answers the set it
/// fired" would reject that correct behaviour; per-timer Fire operations, each linearizable anywhere between the advance's
/// call and its callback, accept it and still reject a timer both fired and cancelled, fired twice, fired early, fired
/// after its cancellation returned, or missed by the advance that passed its due tick.
/// </para>
/// <para>
/// The due tick. The engine computes it from the tick the driver last published, read at some moment during Schedule,
/// and pushes the node for the driver later. The driver's drain does not look at every lane at one instant, so a timer
/// pushed while an advance is under way may be taken in by it or left for the next one; one whose due tick has passed by
/// then fires at that next advance ("due already past"). The spec takes the tick published where Schedule linearizes,
/// and marks a timer scheduled inside an advance (between its drain and its publish) as one that advance may leave. With
/// advances one tick at a time and dueIn 0 or 1 tick (or beyond every advance of the history) that accepts exactly the
/// engine's firing tick: a Schedule whose read and push straddle an advance's publish linearizes inside that advance,
/// reading the tick the engine read; one spanning a whole advance linearizes inside the later one, and its dueIn 0 or 1
/// timer fires at the advance after that either way. Longer dueIns with such spans, or advances of several ticks, would
/// need a spec that accepts either tick: the tests keep to these.
/// </para>
/// <para>
/// s12: the first version took an advance as one atomic step. A real-thread run found a history it rejects and the engine
/// rightly produces: during the advance to 92, one thread scheduled a dueIn 0 timer and then a dueIn 1 timer, both reading
/// tick 91 before the publish and pushing after the drain. The engine fired both at 93 (due 92, already past; due 93).
/// An atomic advance had to place the first schedule after it (it did not fire at 92), the second one too, by program
/// order, and so computed due 94 for it. <c>Spec_SchedulesReadingTheTickBeforeThePublish_FireAtTheNextAdvance</c> keeps
/// that history.
/// </para>
/// </remarks>
public sealed class TimerWheelSpec : ISequentialSpec<TimerWheelState, TimerInput, bool>
{
    /// <inheritdoc/>
    public TimerWheelState Initial => TimerWheelState.Empty;

    /// <inheritdoc/>
    public IEqualityComparer<TimerWheelState> StateComparer => TimerWheelState.Comparer;

    /// <inheritdoc/>
    public bool TryStep(TimerWheelState state, TimerInput input, bool output, out TimerWheelState next)
    {
        next = state;
        long timer = state.Timer(input.Id);
        switch (input.Kind)
        {
            case TimerOpKind.Schedule:
                if (!output || timer != TimerWheelState.NotScheduled)
                {
                    return false; // ids are unique per history; a schedule always answers a handle here
                }

                next = state.With(input.Id, state.Now + 1 + input.DueIn);
                if (state.InAdvance)
                {
                    next = next.WithLate(input.Id); // inside an advance: it may take this timer in, or leave it to the next
                }

                return true;

            case TimerOpKind.Cancel:
                if (timer < 0)
                {
                    return !output; // not pending (never scheduled, fired, cancelled): nothing to cancel
                }

                next = state.With(input.Id, TimerWheelState.Cancelled);
                return output;

            case TimerOpKind.Fire:
                if (!output || timer < 0 || timer > input.Tick)
                {
                    return false; // not pending, or not due by the advance's target
                }

                next = state.With(input.Id, TimerWheelState.Fired);
                return true;

            case TimerOpKind.Drain:
                if (!output || input.Tick < state.Now || state.InAdvance)
                {
                    return false; // backwards, or a second drain before the advance published
                }

                next = new TimerWheelState(state.Now, input.Tick, state.Timers, state.Late);
                return true;

            case TimerOpKind.Publish:
            case TimerOpKind.Advance:
                if (!output || (input.Kind == TimerOpKind.Publish ? state.Draining != input.Tick : input.Tick < state.Now || state.InAdvance))
                {
                    return false; // a publish closes the advance its drain opened; an atomic advance needs none open
                }

                foreach (KeyValuePair<int, long> t in state.Timers)
                {
                    if (t.Value >= 0 && t.Value <= input.Tick && !state.Late.Contains(t.Key))
                    {
                        return false; // a pending timer due by now was neither fired nor cancelled
                    }
                }

                next = new TimerWheelState(input.Tick, input.Tick, state.Timers, []);
                return true;

            default:
                throw new ArgumentOutOfRangeException(nameof(input));
        }
    }

    /// <inheritdoc/>
    public string Describe(TimerInput input, bool output) => input.Kind == TimerOpKind.Cancel ? $"{input} -> {output}" : input.ToString();
}

/// <summary>
/// A timer wheel's abstract state: the published tick and each timer's status (or due tick while pending), with
/// structural equality. Only the first <see cref="DenseIds"/> ids are kept when they end (fired, cancelled), so that
/// long real-thread histories (ids in the thousands) carry only their pending timers: an ended id beyond that reads
/// as not scheduled, which for Cancel and Fire is the same (not pending); only a second Schedule of it would go
/// unnoticed, and the harnesses never reuse an id.
/// </summary>
public sealed class TimerWheelState(long now, long draining, ImmutableSortedDictionary<int, long> timers, ImmutableSortedSet<int> late)
{
    /// <summary>A timer id not scheduled yet.</summary>
    public const long NotScheduled = -1;

    /// <summary>A timer whose callback ran.</summary>
    public const long Fired = -2;

    /// <summary>A timer a Cancel answered true for.</summary>
    public const long Cancelled = -3;

    /// <summary>Ids below this keep their ended status (for failure messages and the double-schedule check).</summary>
    public const int DenseIds = 64;

    /// <summary>Tick 0, no timers.</summary>
    public static readonly TimerWheelState Empty = new(0, 0, ImmutableSortedDictionary<int, long>.Empty, []);

    /// <summary>Structural comparer for memoisation.</summary>
    public static readonly IEqualityComparer<TimerWheelState> Comparer = new StateComparer();

    /// <summary>The tick the driver last published.</summary>
    public long Now { get; } = now;

    /// <summary>The target of the advance under way (between its drain and its publish), else <see cref="Now"/>.</summary>
    public long Draining { get; } = draining;

    /// <summary>Whether an advance is under way: drained, not published yet.</summary>
    public bool InAdvance => Draining != Now;

    /// <summary>The pending timers scheduled inside the advance under way, which it may leave to the next one.</summary>
    public ImmutableSortedSet<int> Late { get; } = late;

    /// <summary>Per timer id: its due tick while pending (≥ 0), else <see cref="Fired"/> or <see cref="Cancelled"/>; absent: not scheduled (or ended, past <see cref="DenseIds"/>).</summary>
    public ImmutableSortedDictionary<int, long> Timers { get; } = timers;

    /// <summary>Timer <paramref name="id"/>'s entry.</summary>
    public long Timer(int id) => Timers.TryGetValue(id, out long value) ? value : NotScheduled;

    /// <summary>This state with timer <paramref name="id"/>'s entry set to <paramref name="value"/>.</summary>
    public TimerWheelState With(int id, long value) =>
        new(Now, Draining, value < 0 && id >= DenseIds ? Timers.Remove(id) : Timers.SetItem(id, value), value < 0 ? Late.Remove(id) : Late);

    /// <summary>This state with timer <paramref name="id"/> scheduled inside the advance under way.</summary>
    public TimerWheelState WithLate(int id) => new(Now, Draining, Timers, Late.Add(id));

    /// <inheritdoc/>
    public override string ToString() => $"t={Now}{(InAdvance ? $" (advancing to {Draining})" : string.Empty)} [{string.Join(", ", Timers.Select(t => $"#{t.Key}:" + t.Value switch
    {
        Fired => "fired",
        Cancelled => "cancelled",
        _ => $"due {t.Value}" + (Late.Contains(t.Key) ? " (late)" : string.Empty),
    }))}]";

    private sealed class StateComparer : IEqualityComparer<TimerWheelState>
    {
        public bool Equals(TimerWheelState? x, TimerWheelState? y) =>
            ReferenceEquals(x, y) || (x is not null && y is not null && x.Now == y.Now && x.Draining == y.Draining && x.Late.SetEquals(y.Late) && x.Timers.Count == y.Timers.Count && x.Timers.SequenceEqual(y.Timers));

        public int GetHashCode(TimerWheelState state)
        {
            var hash = default(HashCode);
            hash.Add(state.Now);
            hash.Add(state.Draining);
            hash.Add(state.Late.Count);
            foreach (KeyValuePair<int, long> timer in state.Timers)
            {
                hash.Add(timer.Key);
                hash.Add(timer.Value);
            }

            return hash.ToHashCode();
        }
    }
}
