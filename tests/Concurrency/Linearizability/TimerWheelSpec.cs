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

    /// <summary>The driver's <c>AdvanceTo(Tick)</c> returned (its callbacks are separate <see cref="Fire"/> operations).</summary>
    Advance,
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

    /// <summary>The driver advanced the wheel to <paramref name="tick"/>.</summary>
    public static TimerInput Advance(long tick) => new(TimerOpKind.Advance, Tick: tick);

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        TimerOpKind.Schedule => $"Schedule(#{Id}, +{DueIn})",
        TimerOpKind.Cancel => $"Cancel(#{Id})",
        TimerOpKind.Fire => $"Fire(#{Id}) in AdvanceTo({Tick})",
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
/// <item><c>AdvanceTo(t)</c>: no pending timer may be due at or before <c>t</c> any more (each fired or was cancelled first);
/// the published tick becomes <c>t</c>.</item>
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
/// The due tick. The engine computes it from the tick the driver last published, read at some moment during Schedule, and
/// the node becomes visible to the driver's drain later; the spec takes the tick published where Schedule linearizes.
/// With advances one tick at a time and dueIn 0, or dueIn of at least one tick, or dueIn beyond every advance of the
/// history, the two agree on the advance that fires the timer (a dueIn 0 timer whose tick read is overtaken by an advance
/// linearizes after it, and fires at the next advance, as the engine's "due already past" timer does; a later one
/// linearizes at its tick read). Histories with advances of several ticks and short dueIns would need a spec that accepts
/// either tick: the tests keep to single-tick advances.
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

            case TimerOpKind.Advance:
                if (!output || input.Tick < state.Now)
                {
                    return false;
                }

                foreach (long t in state.Timers.Values)
                {
                    if (t >= 0 && t <= input.Tick)
                    {
                        return false; // a pending timer due by now was neither fired nor cancelled
                    }
                }

                next = new TimerWheelState(input.Tick, state.Timers);
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
public sealed class TimerWheelState(long now, ImmutableSortedDictionary<int, long> timers)
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
    public static readonly TimerWheelState Empty = new(0, ImmutableSortedDictionary<int, long>.Empty);

    /// <summary>Structural comparer for memoisation.</summary>
    public static readonly IEqualityComparer<TimerWheelState> Comparer = new StateComparer();

    /// <summary>The tick the driver last published.</summary>
    public long Now { get; } = now;

    /// <summary>Per timer id: its due tick while pending (≥ 0), else <see cref="Fired"/> or <see cref="Cancelled"/>; absent: not scheduled (or ended, past <see cref="DenseIds"/>).</summary>
    public ImmutableSortedDictionary<int, long> Timers { get; } = timers;

    /// <summary>Timer <paramref name="id"/>'s entry.</summary>
    public long Timer(int id) => Timers.TryGetValue(id, out long value) ? value : NotScheduled;

    /// <summary>This state with timer <paramref name="id"/>'s entry set to <paramref name="value"/>.</summary>
    public TimerWheelState With(int id, long value) =>
        new(Now, value < 0 && id >= DenseIds ? Timers.Remove(id) : Timers.SetItem(id, value));

    /// <inheritdoc/>
    public override string ToString() => $"t={Now} [{string.Join(", ", Timers.Select(t => $"#{t.Key}:" + t.Value switch
    {
        Fired => "fired",
        Cancelled => "cancelled",
        _ => $"due {t.Value}",
    }))}]";

    private sealed class StateComparer : IEqualityComparer<TimerWheelState>
    {
        public bool Equals(TimerWheelState? x, TimerWheelState? y) =>
            ReferenceEquals(x, y) || (x is not null && y is not null && x.Now == y.Now && x.Timers.Count == y.Timers.Count && x.Timers.SequenceEqual(y.Timers));

        public int GetHashCode(TimerWheelState state)
        {
            var hash = default(HashCode);
            hash.Add(state.Now);
            foreach (KeyValuePair<int, long> timer in state.Timers)
            {
                hash.Add(timer.Key);
                hash.Add(timer.Value);
            }

            return hash.ToHashCode();
        }
    }
}
