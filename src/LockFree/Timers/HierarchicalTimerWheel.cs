using System.Diagnostics;
using System.Runtime.CompilerServices;
using LockFree.Internal;
using LockFree.Timers;

namespace LockFree;

/// <summary>
/// A hierarchical timer wheel (Varghese and Lauck): one-shot timers with O(1) schedule and cancel from any
/// thread, no allocation per timer, and a next-expiry search that tests one occupancy bitmap per level instead
/// of scanning slots. Driven manually (<see cref="Advance"/>) or by a built-in thread (<see cref="StartDriver"/>)
/// that sleeps until the next expiry.
/// </summary>
/// <remarks>
/// <para>
/// Time is counted in ticks of <see cref="TickDuration"/> from the <see cref="System.TimeProvider"/>. A timer
/// scheduled with <c>dueIn</c> is due at tick <c>CurrentTick + 1 + ceil(dueIn / TickDuration)</c>, computed
/// against the tick the driver last published, not a fresh clock reading (reading the clock costs more than
/// the whole schedule). It fires in the first advance whose clock tick reaches that due tick, so it never fires
/// before <c>dueIn</c> has passed since <see cref="CurrentTick"/> began, and at most two ticks after
/// <c>dueIn</c> plus however late the wheel is driven. Manually driven, <c>dueIn</c> counts from the last
/// <see cref="Advance"/>; with the driver thread, the published tick is current while the driver is awake or
/// napping one tick, and when it sleeps longer (or runs callbacks) <see cref="Schedule"/> reads the clock
/// itself. See <c>docs/timers.md</c> for the exact bounds.
/// </para>
/// <para>
/// Memory: 48 bytes per timer in pooled chunks of 1024, plus about 35 KiB per wheel at the default bound, plus
/// about 9 KiB per thread that schedules on the wheel repeatedly (its lane: two rings of 1024 indices, retired
/// when the thread ends; it may hold up to 1056 free nodes, and their last callbacks, for reuse). The pool grows by chunks up
/// to the maximum given at construction (default 4,194,304 timers), then <see cref="Schedule"/> throws
/// <see cref="InvalidOperationException"/>. Fired and cancelled timers return to the pool when the wheel is
/// next advanced. Schedule followed by Cancel allocates nothing once the pool has grown to the working set.
/// </para>
/// <para>
/// Callbacks run on the advancing thread after the wheel's internal lock is released, in no particular order
/// among timers due on the same tick. A callback that throws is counted (<see cref="FailedCallbackCount"/>),
/// reported through <see cref="CallbackFailed"/>, and does not stop the wheel. A <see cref="System.TimeProvider"/>
/// that throws on the driver thread does not stop it either: counted (<see cref="ClockFailureCount"/>), reported
/// through <see cref="ClockFailed"/>, and the pass retried after a back-off. Disposing stops the driver
/// thread and drops every pending timer (counted in <see cref="DroppedCount"/>); a Schedule racing with Dispose
/// either throws <see cref="ObjectDisposedException"/> or is dropped without running (and counted in <see cref="DroppedCount"/>).
/// The library's own waits on a wheel it was given (<see cref="DelayQueueOptions{T}.TimerWheel"/>,
/// <see cref="AckQueueOptions{T}.TimerWheel"/>, <see cref="RetryPolicyOptions.TimerWheel"/>) are dropped and counted
/// too, but do not hang: they move to a timer of their <see cref="System.TimeProvider"/> at the same due time.
/// </para>
/// </remarks>
[DebuggerDisplay("Tick = {TickDuration}")]
public sealed class HierarchicalTimerWheel : IDisposable
{
    private readonly TimerWheelEngine<RealAtomics> _engine;

    /// <summary>Creates a wheel with the given tick, time source and the default maximum of 4,194,304 timers.</summary>
    /// <param name="tickDuration">The wheel's resolution; positive.</param>
    /// <param name="timeProvider">The clock; default <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tickDuration"/> is zero, negative, or too long for the clock.</exception>
    public HierarchicalTimerWheel(TimeSpan tickDuration, TimeProvider? timeProvider = null)
        : this(tickDuration, timeProvider, DefaultMaxTimers)
    {
    }

    /// <summary>Creates a wheel with the given tick, time source, bound on timers held at once and metrics name.</summary>
    /// <param name="tickDuration">The wheel's resolution; positive.</param>
    /// <param name="timeProvider">The clock; null for <see cref="TimeProvider.System"/>.</param>
    /// <param name="maxTimers">Most timers held at once (pending, or done and not yet reclaimed), in [1, 2^30]; <see cref="DefaultMaxTimers"/> by default.</param>
    /// <param name="name">
    /// The name the wheel's metrics are tagged with (<see cref="TimerWheelMetrics.NameTag"/>); null (the default):
    /// no metrics. Instruments are observable, so Schedule and Cancel pay nothing for them.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public HierarchicalTimerWheel(TimeSpan tickDuration, TimeProvider? timeProvider, int maxTimers, string? name = null)
    {
        _engine = new TimerWheelEngine<RealAtomics>(tickDuration, timeProvider, maxTimers, this);
        Name = name;
        if (name is not null)
        {
            TimerWheelMetrics.Register(this);
        }
    }

    /// <summary>The default bound on timers held at once: 4,194,304.</summary>
    public const int DefaultMaxTimers = TimerWheelEngine<RealAtomics>.DefaultMaxTimers;

    /// <summary>The name the metrics are tagged with, or null (no metrics).</summary>
    public string? Name { get; }

    /// <summary>Raised on the firing thread after a callback threw; exceptions thrown by the handler itself are swallowed.</summary>
    public event EventHandler<Exception>? CallbackFailed
    {
        add => _engine.CallbackFailed += value;
        remove => _engine.CallbackFailed -= value;
    }

    /// <summary>
    /// Raised for each failure counted in <see cref="ClockFailureCount"/>, on the thread that met it (the driver
    /// thread, or the caller of <see cref="Advance"/>); exceptions thrown by the handler itself are swallowed.
    /// </summary>
    public event EventHandler<Exception>? ClockFailed
    {
        add => _engine.ClockFailed += value;
        remove => _engine.ClockFailed -= value;
    }

    /// <summary>
    /// Exceptions thrown by the <see cref="TimeProvider"/> that no caller could see: a clock reading or the sleep
    /// timer's <see cref="ITimer.Change"/> on the driver thread (the driver backs off and retries; it does not stop),
    /// or the lateness reading taken before a batch of due timers fires (the batch fires all the same; its lateness
    /// is not recorded). A clock reading an <see cref="Advance"/> or <see cref="Schedule"/> call makes for itself
    /// throws to that caller instead, before anything is taken.
    /// </summary>
    public long ClockFailureCount => _engine.ClockFailureCount;

    /// <summary>The wheel's resolution.</summary>
    public TimeSpan TickDuration => _engine.TickDuration;

    /// <summary>The longest accepted <c>dueIn</c>: 2^40 ticks (or <see cref="TimeSpan.MaxValue"/>).</summary>
    public TimeSpan MaxDueIn => _engine.MaxDueIn;

    /// <summary>Most timers held at once.</summary>
    public int MaxTimers => _engine.MaxTimers;

    /// <summary>The clock the wheel reads.</summary>
    public TimeProvider TimeProvider => _engine.TimeProvider;

    /// <summary>The tick the wheel has advanced to, counted from construction.</summary>
    public long CurrentTick => _engine.CurrentTick;

    /// <summary>
    /// Timers in the wheel as of the last advance: a snapshot. A timer scheduled since is counted from the next
    /// advance; one cancelled since, until it.
    /// </summary>
    public int PendingCount => _engine.PendingCount;

    /// <summary>Callbacks run so far (including those that threw).</summary>
    public long FiredCount => _engine.FiredCount;

    /// <summary>Callbacks that threw.</summary>
    public long FailedCallbackCount => _engine.FailedCallbackCount;

    /// <summary>Timers still pending when the wheel was disposed (they never run); 0 before.</summary>
    public long DroppedCount => _engine.DroppedCount;

    /// <summary>
    /// Cancelled timers the wheel has reclaimed. Counted by the advancing thread when it takes the cancellation in
    /// (so <see cref="Cancel"/> pays nothing): a cancellation counts from the next advance. Timers dropped by
    /// <see cref="Dispose"/> are counted in <see cref="DroppedCount"/> instead.
    /// </summary>
    public long CancelledCount => _engine.CancelledCount;

    /// <summary>
    /// How late the most recently fired timer ran: the clock when its firing batch began minus the start of its due
    /// tick (zero before any fired). Includes the wheel's own rounding (up to one tick) and how late it was driven;
    /// a timer scheduled at a time already past counts from that time. One clock reading per fired batch; a batch
    /// whose reading threw (<see cref="ClockFailureCount"/>) leaves it unchanged.
    /// </summary>
    public TimeSpan LastLateness => _engine.LastLateness;

    /// <summary>The mean of that lateness over every fired timer whose batch's reading succeeded (zero before any fired).</summary>
    public TimeSpan AverageLateness => _engine.AverageLateness;

    /// <summary>Advances made by the built-in driver thread so far (it sleeps until the next expiry, so this grows with expiries and cascades, not with time).</summary>
    public long DriverPasses => _engine.DriverPasses;

    /// <summary>True while the built-in driver thread runs.</summary>
    public bool IsDriverRunning => _engine.IsDriverRunning;

    /// <summary>
    /// Schedules <paramref name="callback"/>(<paramref name="state"/>) to run once, <paramref name="dueIn"/> from
    /// the wheel's current tick (rounded up to whole ticks, plus one tick; see the remarks on the type). Safe from
    /// any thread; lock-free; allocates nothing (pass a static lambda and the state to avoid a closure).
    /// </summary>
    /// <returns>A handle for <see cref="Cancel"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dueIn"/> is negative or longer than <see cref="MaxDueIn"/>.</exception>
    /// <exception cref="InvalidOperationException">The wheel already holds <see cref="MaxTimers"/> timers.</exception>
    /// <exception cref="ObjectDisposedException">The wheel was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TimerHandle Schedule(TimeSpan dueIn, Action<object?> callback, object? state) => _engine.Schedule(dueIn, callback, state);

    /// <summary>
    /// Schedules <paramref name="callback"/>(<paramref name="state"/>) to run once at an absolute time of
    /// <see cref="TimeProvider"/> (a <see cref="System.TimeProvider.GetTimestamp"/> value): at the first advance
    /// whose clock has reached the start of the first tick at or after it, so never early and at most one tick
    /// (plus the driving latency) late. A time already past fires at the next advance. For primitives that keep
    /// absolute deadlines (a delay queue). Same threading and allocation as <see cref="Schedule"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dueTimestamp"/> is further than <see cref="MaxDueIn"/> ahead.</exception>
    /// <exception cref="InvalidOperationException">The wheel already holds <see cref="MaxTimers"/> timers.</exception>
    /// <exception cref="ObjectDisposedException">The wheel was disposed.</exception>
    public TimerHandle ScheduleAt(long dueTimestamp, Action<object?> callback, object? state) => _engine.ScheduleAt(dueTimestamp, callback, state);

    /// <summary>
    /// Cancels a pending timer. True when this call stopped it: its callback will not run. False when it already
    /// fired or is firing, was cancelled before, the handle is stale or default, or the wheel was disposed. A
    /// stale handle never cancels a newer timer. Safe from any thread; lock-free; allocates nothing.
    /// </summary>
    /// <exception cref="ArgumentException">The handle was issued by another wheel (its node index and generation
    /// could name one of this wheel's live timers, so it is refused rather than looked up).</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Cancel(TimerHandle handle) => _engine.Cancel(handle);

    /// <summary>
    /// Manual driving: takes in the timers scheduled and cancelled since the last call, moves the wheel to the
    /// provider's current time and runs the due callbacks on this thread. Returns how many ran.
    /// </summary>
    /// <exception cref="InvalidOperationException">The driver thread runs.</exception>
    /// <exception cref="ObjectDisposedException">The wheel was disposed.</exception>
    public int Advance() => _engine.Advance();

    /// <summary>
    /// Starts the built-in driver: a background thread that advances the wheel, runs the callbacks, and sleeps
    /// (through a timer of the <see cref="TimeProvider"/>) until the next expiry or cascade, woken early when an
    /// earlier timer is scheduled. Stopped by <see cref="Dispose"/>. When the thread cannot be created or started
    /// (<see cref="OutOfMemoryException"/>, <see cref="ThreadStartException"/>), that exception propagates and the
    /// wheel is left as it was: still driven by <see cref="Advance"/>, and this method may be called again.
    /// </summary>
    /// <exception cref="InvalidOperationException">The driver already runs.</exception>
    /// <exception cref="ObjectDisposedException">The wheel was disposed.</exception>
    public void StartDriver() => _engine.StartDriver();

    /// <summary>
    /// Stops the driver thread (waits for it unless called from a callback on it) and drops every pending timer: a
    /// dropped timer never runs. The library's own wake-ups and retry waits among them (of the queues and policies
    /// given this wheel) move to a timer of their <see cref="System.TimeProvider"/> at the same due time instead of
    /// hanging. A named wheel keeps reporting its final counts (<see cref="DroppedCount"/> among them) until it is collected.
    /// </summary>
    public void Dispose() => _engine.Dispose();

    /// <summary>Tests: replaces the start of the driver thread, to simulate a thread that fails to start.</summary>
    internal Action<Thread>? DriverStartForTest
    {
        get => _engine.DriverStartForTest;
        set => _engine.DriverStartForTest = value;
    }

    /// <summary>Counts a failure of a callback the library ran on the wheel's behalf and raises <see cref="CallbackFailed"/>.</summary>
    internal void ReportCallbackFailure(Exception exception) => _engine.ReportCallbackFailure(exception);
}
