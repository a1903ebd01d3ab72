using System.Text;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// The back-pressure buffer itself under the controlled scheduler (acceptance gap C): <see cref="BackpressureBuffer{T}"/>
/// here is the composed build, the library's own source compiled again with the atomics seam bound to
/// <see cref="TestAtomics"/> (Composed/README.md), so every shared access of the buffer, its engine, its waiter lists,
/// gates and marks is a scheduling point. Scenarios: blocking writes and reads (the <c>Wait</c> policy's park and
/// wake-up handshake on every engine), non-blocking writes and reads under each policy, and completion racing parked
/// writers and readers. After every schedule: no deadlock (a lost wake-up leaves a thread blocked for ever, which the
/// scheduler reports); every accepted item comes out exactly once (read, evicted to the callback, or left for the
/// drain); each <c>EvictedOldest</c> answer handed exactly one item to the callback; the statistics agree with what
/// the threads saw; and, without completion, the history is linearizable against <see cref="QueueSpec"/> (a blocking
/// write that succeeded is an enqueue that succeeded, a blocking read a dequeue, a dropped incoming write a full
/// answer, an evicting write the place-or-evict step). Proof of power:
/// <see cref="PlantedFault.WriterParksWithoutRecheck"/> (a writer that parks without its recheck) is found, blocking
/// (a deadlock) and asynchronous (the awaiting thread polls for ever: a livelock); and the watermark check before
/// session 17, which this class found (<see cref="PlantedFault.PressureCheckWithStaleDepth"/>: a stale depth paused an
/// empty buffer for good), is found as a pause state that disagrees with the depth.
/// </summary>
public sealed class BufferScheduleTests(ITestOutputHelper output)
{
    /// <summary>Schedules per strategy in CI (scaled by LOCKFREE_STRESS_SCALE).</summary>
    private const int PerStrategy = 300;

    /// <summary>What a thread does.</summary>
    public enum Step
    {
        /// <summary><c>Write(item, Timeout.InfiniteTimeSpan)</c>: blocks while full (under <c>Wait</c>).</summary>
        BlockingWrite,

        /// <summary><c>TryWrite(item)</c>: the policy's answer at once.</summary>
        TryWrite,

        /// <summary><c>TryRead(out item, Timeout.InfiniteTimeSpan)</c>: blocks while empty, false once completed and drained.</summary>
        BlockingRead,

        /// <summary><c>TryRead(out item)</c>.</summary>
        TryRead,

        /// <summary><c>TryComplete()</c>.</summary>
        Complete,

        /// <summary><c>WriteAsync(item)</c>: a pooled asynchronous wait while full (under <c>Wait</c>), awaited by polling.</summary>
        WriteAsync,

        /// <summary><c>ReadAsync()</c>: a pooled asynchronous wait while empty; throws once completed and drained.</summary>
        ReadAsync,

        /// <summary>The adapter's reading shape: <c>TryRead</c>, else <c>WaitToReadAsync</c> and again; false ends it.</summary>
        WaitToRead,

        /// <summary>The adapter's writing shape: <c>TryWrite</c>, else <c>WaitToWriteAsync</c> and again; false ends it.</summary>
        WaitToWrite,

        /// <summary><c>TryReadMany</c> into a span of two.</summary>
        ReadMany,

        /// <summary><c>Write(item, Timeout.InfiniteTimeSpan, token)</c> with the run's shared token: cancelled, it leaves no trace.</summary>
        CancellableWrite,

        /// <summary><c>WriteAsync(item, token)</c> with the run's shared token.</summary>
        CancellableWriteAsync,

        /// <summary><c>TryRead(out item, Timeout.InfiniteTimeSpan, token)</c> with the run's shared token: cancelled, it takes nothing.</summary>
        CancellableRead,

        /// <summary>Cancels the run's shared token (its callbacks run on this thread, as on a real one).</summary>
        Cancel,

        /// <summary><c>Dispose()</c>: parked calls wake with <see cref="ObjectDisposedException"/>; items left stay readable.</summary>
        Dispose,

        /// <summary>
        /// <c>WriteAsync(item, Wait, timeout)</c>, the timeout <see cref="TimeoutTicks"/> on the run's manual clock: accepted,
        /// or rejected with <see cref="RejectReason.TimedOut"/> leaving no trace.
        /// </summary>
        TimedWriteAsync,

        /// <summary>As <see cref="TimedWriteAsync"/> with the run's shared token: the timeout, the cancellation and a read's room race.</summary>
        TimedCancellableWriteAsync,

        /// <summary>Moves the manual clock one tick at a time until every timed write has ended (its timers fire on this thread).</summary>
        Advance,

        /// <summary><c>ReadAllAsync()</c>: one enumerator takes <c>Count</c> items, then is disposed; it ends early once completed and drained.</summary>
        ReadAll,

        /// <summary>
        /// <c>Write(item, Wait, timeout)</c>, blocking, the timeout <see cref="SyncTimeout"/> on the run's virtual clock (session
        /// 19): its event wait may time out at any scheduling point before its set (the strategy chooses), which moves the
        /// clock on; accepted, or rejected with <see cref="RejectReason.TimedOut"/> leaving no trace.
        /// </summary>
        TimedWrite,

        /// <summary><c>TryRead(out item, timeout)</c>, blocking, timed as <see cref="TimedWrite"/>: an item, or false having taken nothing.</summary>
        TimedRead,
    }

    /// <summary>The timed writes' timeout, in ticks of the run's manual clock (one tick per <see cref="Step.Advance"/> step).</summary>
    private const long TimeoutTicks = 1;

    /// <summary>The blocking timed calls' timeout, on the controlled run's virtual clock (it moves only when a timed wait times out).</summary>
    private static readonly TimeSpan SyncTimeout = TimeSpan.FromMilliseconds(10);

    private static bool IsTimedWrite(Step step) => step is Step.TimedWriteAsync or Step.TimedCancellableWriteAsync or Step.TimedWrite;

    /// <summary>A thread's program: <paramref name="Count"/> times <paramref name="Step"/>.</summary>
    public sealed record Program(Step Step, int Count = 1)
    {
        public override string ToString() => Count == 1 ? Step.ToString() : $"{Step} x{Count}";
    }

    /// <summary>A scenario: the buffer's shape and its threads.</summary>
    public sealed record Scenario(int Capacity, bool SingleWriter, bool SingleReader, OverflowPolicy Mode, int Prefill, Program[] Threads, int High = 0, int Low = 0, bool TrackAge = false);

    public static TheoryData<string> Scenarios() => [.. All.Keys];

    internal static readonly Dictionary<string, Scenario> All = new()
    {
        // The Wait policy's park and wake-up, on each engine: writers block on a full buffer, readers on an empty one.
        ["spsc wait cap 1: write x3 | read x3"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 3), new(Step.BlockingRead, 3)]),
        ["mpsc wait cap 1: write x2 | write x2 | read x4"] = new(1, false, true, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 2), new(Step.BlockingWrite, 2), new(Step.BlockingRead, 4)]),
        ["spmc wait cap 1: write x4 | read x2 | read x2"] = new(1, true, false, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 4), new(Step.BlockingRead, 2), new(Step.BlockingRead, 2)]),
        ["mpmc wait cap 2: write x2 | write x2 | read x2 | read x2"] = new(2, false, false, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 2), new(Step.BlockingWrite, 2), new(Step.BlockingRead, 2), new(Step.BlockingRead, 2)]),
        ["mpsc wait cap 1 full: write | write | read x3"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.BlockingWrite), new(Step.BlockingWrite), new(Step.BlockingRead, 3)]),

        // Non-blocking writers meeting blocked readers, and the other policies on a full buffer.
        ["spsc wait cap 1: try-write x3 | read x1"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.TryWrite, 3), new(Step.BlockingRead, 1)]),
        ["mpmc drop-oldest cap 1 full: try-write x2 | try-write x2 | try-read x2"] = new(1, false, false, OverflowPolicy.DropOldest, 1, [new(Step.TryWrite, 2), new(Step.TryWrite, 2), new(Step.TryRead, 2)]),
        // (A blocking reader must be owed its items whatever the evictions do: here the prefill covers both readers.)
        ["spmc drop-oldest cap 2 full: try-write x3 | read | try-read"] = new(2, true, false, OverflowPolicy.DropOldest, 2, [new(Step.TryWrite, 3), new(Step.BlockingRead), new(Step.TryRead)]),
        ["mpsc drop-incoming cap 1: try-write x2 | try-write x2 | read x1"] = new(1, false, true, OverflowPolicy.DropIncoming, 0, [new(Step.TryWrite, 2), new(Step.TryWrite, 2), new(Step.BlockingRead, 1)]),
        ["mpmc reject cap 1: try-write x2 | try-write x2 | try-read x2"] = new(1, false, false, OverflowPolicy.Reject, 0, [new(Step.TryWrite, 2), new(Step.TryWrite, 2), new(Step.TryRead, 2)]),

        // The asynchronous waits (pooled operations on hand-off waiters; a wake-up runs the operation's next steps on
        // the waking thread, as a pool thread would), alone and beside the blocking ones.
        ["spsc wait cap 1: write-async x3 | read-async x3"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.WriteAsync, 3), new(Step.ReadAsync, 3)]),
        ["mpsc wait cap 1: write-async x2 | write x2 | wait-to-read x4"] = new(1, false, true, OverflowPolicy.Wait, 0, [new(Step.WriteAsync, 2), new(Step.BlockingWrite, 2), new(Step.WaitToRead, 4)]),
        ["spmc wait cap 1: write-async x3 | read-async x2 | read"] = new(1, true, false, OverflowPolicy.Wait, 0, [new(Step.WriteAsync, 3), new(Step.ReadAsync, 2), new(Step.BlockingRead)]),
        ["mpmc wait cap 1: write-async x2 | write-async x2 | read-async x2 | wait-to-read x2"] = new(1, false, false, OverflowPolicy.Wait, 0, [new(Step.WriteAsync, 2), new(Step.WriteAsync, 2), new(Step.ReadAsync, 2), new(Step.WaitToRead, 2)]),
        ["mpmc wait cap 1 full: write-async | write-async | read-async x3 | complete"] = new(1, false, false, OverflowPolicy.Wait, 1, [new(Step.WriteAsync), new(Step.WriteAsync), new(Step.ReadAsync, 3), new(Step.Complete)]),
        ["spsc wait cap 1: wait-to-read x2 | write-async | complete"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.WaitToRead, 2), new(Step.WriteAsync), new(Step.Complete)]),

        // Watermarks: every crossing reported once and in order, and once the threads stop, IsPaused (and the last event)
        // agrees with the depth: paused only above the low watermark, resumed only below the high one.
        ["spsc wait cap 4 marks 2/0: try-write x3 | try-read x3"] = new(4, true, true, OverflowPolicy.Wait, 0, [new(Step.TryWrite, 3), new(Step.TryRead, 3)], High: 2, Low: 0),
        ["mpsc wait cap 4 marks 2/1: try-write x2 | try-write x2 | read x3"] = new(4, false, true, OverflowPolicy.Wait, 0, [new(Step.TryWrite, 2), new(Step.TryWrite, 2), new(Step.BlockingRead, 3)], High: 2, Low: 1),
        ["mpmc wait cap 2 marks 2/0: write x2 | write | read x2 | try-read"] = new(2, false, false, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 2), new(Step.BlockingWrite), new(Step.BlockingRead, 2), new(Step.TryRead)], High: 2, Low: 0),
        ["spmc drop-oldest cap 2 marks 2/0 full: try-write x2 | try-read | try-read"] = new(2, true, false, OverflowPolicy.DropOldest, 2, [new(Step.TryWrite, 2), new(Step.TryRead), new(Step.TryRead)], High: 2, Low: 0),

        // Item ages (the stamping adapter over the engine), under Wait and DropOldest.
        ["mpsc wait cap 1 ages: write x2 | write-async | read x3"] = new(1, false, true, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 2), new(Step.WriteAsync), new(Step.BlockingRead, 3)], TrackAge: true),
        ["mpmc drop-oldest cap 1 ages full: try-write x2 | try-write | try-read x2"] = new(1, false, false, OverflowPolicy.DropOldest, 1, [new(Step.TryWrite, 2), new(Step.TryWrite), new(Step.TryRead, 2)], TrackAge: true),

        // Cancellation racing the wake-up of parked writers and readers: a cancelled call leaves no trace (its item is
        // not in the buffer, a cancelled read took nothing), and a signal it swallowed is passed on (no lost wake-up).
        ["spsc wait cap 1 full: cancellable-write x2 | read | cancel"] = new(1, true, true, OverflowPolicy.Wait, 1, [new(Step.CancellableWrite, 2), new(Step.BlockingRead), new(Step.Cancel)]),
        // (A blocking reader must be owed its items even when every cancellable write is cancelled, and a blocking writer
        // its room even when every cancellable write gets in: so blocking writers join cancellable ones only where the
        // blocking reads make room for all of them; and no other reader may take the items a blocking reader is owed.)
        ["mpmc wait cap 1 full: cancellable-write-async | cancellable-write | read | cancel"] = new(1, false, false, OverflowPolicy.Wait, 1, [new(Step.CancellableWriteAsync), new(Step.CancellableWrite), new(Step.BlockingRead), new(Step.Cancel)]),
        ["mpmc wait cap 1 full: cancellable-write-async x2 | cancellable-write x2 | read | cancel"] = new(1, false, false, OverflowPolicy.Wait, 1, [new(Step.CancellableWriteAsync, 2), new(Step.CancellableWrite, 2), new(Step.BlockingRead), new(Step.Cancel)]),
        ["mpsc wait cap 1 full: cancellable-write | write | read x2 | cancel"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.CancellableWrite), new(Step.BlockingWrite), new(Step.BlockingRead, 2), new(Step.Cancel)]),
        ["spmc wait cap 1: cancellable-read | read | write x2 | cancel"] = new(1, true, false, OverflowPolicy.Wait, 0, [new(Step.CancellableRead), new(Step.BlockingRead), new(Step.BlockingWrite, 2), new(Step.Cancel)]),
        ["spsc wait cap 1: cancellable-read x2 | write | cancel"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.CancellableRead, 2), new(Step.BlockingWrite), new(Step.Cancel)]),

        // The adapter's shapes on the buffer (WaitToWriteAsync probes take nothing when woken), and batch reads.
        ["mpsc wait cap 1 full: wait-to-write x2 | wait-to-write | read x4"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.WaitToWrite, 2), new(Step.WaitToWrite), new(Step.BlockingRead, 4)]),
        ["spsc wait cap 1: wait-to-write x3 | read x3"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.WaitToWrite, 3), new(Step.BlockingRead, 3)]),
        ["spsc wait cap 2: try-write x4 | read-many x3"] = new(2, true, true, OverflowPolicy.Wait, 0, [new(Step.TryWrite, 4), new(Step.ReadMany, 3)]),
        ["mpmc drop-oldest cap 2 full: try-write x2 | try-write | read-many x2"] = new(2, false, false, OverflowPolicy.DropOldest, 2, [new(Step.TryWrite, 2), new(Step.TryWrite), new(Step.ReadMany, 2)]),

        // Disposal racing parked calls: writers throw ObjectDisposedException leaving no item, readers still get every
        // item left and then the exception, nothing is lost.
        ["spsc wait cap 1 full: write x2 | read x3 | dispose"] = new(1, true, true, OverflowPolicy.Wait, 1, [new(Step.BlockingWrite, 2), new(Step.BlockingRead, 3), new(Step.Dispose)]),
        ["mpmc wait cap 1 full: write | write-async | read x2 | read-async | dispose"] = new(1, false, false, OverflowPolicy.Wait, 1, [new(Step.BlockingWrite), new(Step.WriteAsync), new(Step.BlockingRead, 2), new(Step.ReadAsync), new(Step.Dispose)]),
        ["spmc wait cap 1: read-async | wait-to-read | write x2 | dispose"] = new(1, true, false, OverflowPolicy.Wait, 0, [new(Step.ReadAsync), new(Step.WaitToRead), new(Step.BlockingWrite, 2), new(Step.Dispose)]),

        // Completion racing parked writers (they answer Completed or get in) and parked readers (they drain, then false).
        ["spsc wait cap 1 full: write x2 | read x3 | complete"] = new(1, true, true, OverflowPolicy.Wait, 1, [new(Step.BlockingWrite, 2), new(Step.BlockingRead, 3), new(Step.Complete)]),
        ["mpmc wait cap 1 full: write | write | read x3 | complete"] = new(1, false, false, OverflowPolicy.Wait, 1, [new(Step.BlockingWrite), new(Step.BlockingWrite), new(Step.BlockingRead, 3), new(Step.Complete)]),
        ["mpsc wait cap 1: read x2 | write | complete"] = new(1, false, true, OverflowPolicy.Wait, 0, [new(Step.BlockingRead, 2), new(Step.BlockingWrite), new(Step.Complete)]),
        ["spmc wait cap 1: read | read | write | complete"] = new(1, true, false, OverflowPolicy.Wait, 0, [new(Step.BlockingRead), new(Step.BlockingRead), new(Step.BlockingWrite), new(Step.Complete)]),

        // Timed asynchronous writes on a manual clock (session 18): a write whose timeout passes answers TimedOut and leaves
        // no item; one woken by a read's room at or after its deadline passes that room on to the next parked writer (the
        // blocking writer beside it is owed its room: without the pass-on it sleeps beside it, and the reader waits for its
        // item: a deadlock); the timeout races cancellation, completion and disposal. A blocking writer is owed its room
        // whatever the timed one does: the timed writes take at most the rooms the reads make beyond it.
        ["spsc wait cap 1 full: timed-write-async x2 | read | advance"] = new(1, true, true, OverflowPolicy.Wait, 1, [new(Step.TimedWriteAsync, 2), new(Step.BlockingRead), new(Step.Advance)]),
        ["mpsc wait cap 1 full: timed-write-async | write | read x2 | advance"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.TimedWriteAsync), new(Step.BlockingWrite), new(Step.BlockingRead, 2), new(Step.Advance)]),
        ["mpmc wait cap 1 full: timed-write-async | write-async | read | read-async | advance"] = new(1, false, false, OverflowPolicy.Wait, 1, [new(Step.TimedWriteAsync), new(Step.WriteAsync), new(Step.BlockingRead), new(Step.ReadAsync), new(Step.Advance)]),
        ["mpsc wait cap 1 full: timed-cancellable-write-async | write | read x2 | advance | cancel"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.TimedCancellableWriteAsync), new(Step.BlockingWrite), new(Step.BlockingRead, 2), new(Step.Advance), new(Step.Cancel)]),
        ["spsc wait cap 1 full: timed-write-async x2 | read | advance | complete"] = new(1, true, true, OverflowPolicy.Wait, 1, [new(Step.TimedWriteAsync, 2), new(Step.BlockingRead), new(Step.Advance), new(Step.Complete)]),
        ["mpsc wait cap 1 full: timed-write-async | timed-write-async | read | advance | dispose"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.TimedWriteAsync), new(Step.TimedWriteAsync), new(Step.BlockingRead), new(Step.Advance), new(Step.Dispose)]),

        // Timed blocking calls (session 19): the seam's event wait may time out at any of its scheduling points before its
        // set, moving the run's virtual clock (the deadline's clock) on; a timeout racing a read's room, a write's item, a
        // blocking writer parked beside it, timed calls on both sides, completion and disposal. (An untimed reader beside a timed one may be owed
        // nothing: the timed one can take the only item while every timed write times out.)
        ["spsc wait cap 1 full: timed-write x2 | read"] = new(1, true, true, OverflowPolicy.Wait, 1, [new(Step.TimedWrite, 2), new(Step.BlockingRead)]),
        ["mpsc wait cap 1 full: timed-write | write | read x2"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.TimedWrite), new(Step.BlockingWrite), new(Step.BlockingRead, 2)]),
        ["mpmc wait cap 1: timed-read | timed-read | write"] = new(1, false, false, OverflowPolicy.Wait, 0, [new(Step.TimedRead), new(Step.TimedRead), new(Step.BlockingWrite)]),
        ["spsc wait cap 1: timed-write x2 | timed-read x2"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.TimedWrite, 2), new(Step.TimedRead, 2)]),
        ["mpmc wait cap 1 full: timed-write | timed-write | timed-read | timed-read"] = new(1, false, false, OverflowPolicy.Wait, 1, [new(Step.TimedWrite), new(Step.TimedWrite), new(Step.TimedRead), new(Step.TimedRead)]),
        ["spsc wait cap 1 full: timed-write x2 | read | complete"] = new(1, true, true, OverflowPolicy.Wait, 1, [new(Step.TimedWrite, 2), new(Step.BlockingRead), new(Step.Complete)]),
        ["mpsc wait cap 1 full: timed-write | timed-write | read | dispose"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.TimedWrite), new(Step.TimedWrite), new(Step.BlockingRead), new(Step.Dispose)]),

        // ReadAllAsync (session 18): the iterator awaits WaitToReadAsync, so a wake-up runs its next steps (the TryRead
        // loop and the yield) on the waking thread, as a pool thread would.
        ["spsc wait cap 1: write-async x3 | read-all x3"] = new(1, true, true, OverflowPolicy.Wait, 0, [new(Step.WriteAsync, 3), new(Step.ReadAll, 3)]),
        ["mpmc wait cap 1: write x2 | write-async x2 | read-all x2 | read-all x2"] = new(1, false, false, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 2), new(Step.WriteAsync, 2), new(Step.ReadAll, 2), new(Step.ReadAll, 2)]),
        ["mpsc wait cap 1 full: write | write-async | read-all x4 | complete"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.BlockingWrite), new(Step.WriteAsync), new(Step.ReadAll, 4), new(Step.Complete)]),

        // More mixes (session 18): an asynchronous reader on DropOldest; batch reads beside blocking ones and parked
        // writers; watermarks under asynchronous waits; item ages on the manual clock with a timed write; Reject beside a
        // blocking reader; completion racing batch reads.
        // (An eviction leaves fewer items than writes: the asynchronous reader is owed one only while it reads alone.)
        ["spmc drop-oldest cap 1 full: try-write x2 | read-async"] = new(1, true, false, OverflowPolicy.DropOldest, 1, [new(Step.TryWrite, 2), new(Step.ReadAsync)]),
        ["spmc wait cap 2 full: write x2 | read x2 | read-many"] = new(2, true, false, OverflowPolicy.Wait, 2, [new(Step.BlockingWrite, 2), new(Step.BlockingRead, 2), new(Step.ReadMany)]),
        ["mpsc wait cap 2 marks 2/0 full: write-async | write-async | read-async x3"] = new(2, false, true, OverflowPolicy.Wait, 2, [new(Step.WriteAsync), new(Step.WriteAsync), new(Step.ReadAsync, 3)], High: 2, Low: 0),
        ["mpsc wait cap 1 ages full: timed-write-async | write | read x2 | advance"] = new(1, false, true, OverflowPolicy.Wait, 1, [new(Step.TimedWriteAsync), new(Step.BlockingWrite), new(Step.BlockingRead, 2), new(Step.Advance)], TrackAge: true),
        ["spsc reject cap 1: try-write x3 | read"] = new(1, true, true, OverflowPolicy.Reject, 0, [new(Step.TryWrite, 3), new(Step.BlockingRead)]),
        ["spmc wait cap 2: write x2 | read-many x2 | read | complete"] = new(2, true, false, OverflowPolicy.Wait, 0, [new(Step.BlockingWrite, 2), new(Step.ReadMany, 2), new(Step.BlockingRead), new(Step.Complete)]),
    };

    /// <summary>Write outcomes seen over an exploration, by <see cref="WriteOutcome"/> value (the tests of this class run one at a time).</summary>
    private static readonly long[] Outcomes = new long[8];

    /// <summary>Calls cancelled over an exploration.</summary>
    private static long s_canceled;

    /// <summary>Calls that threw <see cref="ObjectDisposedException"/> over an exploration.</summary>
    private static long s_disposedCalls;

    /// <summary>Timed writes that timed out, and that got in, over an exploration.</summary>
    private static long s_timedOut;
    private static long s_timedIn;

    /// <summary>ReadAllAsync enumerations that ended (completed and drained) over an exploration.</summary>
    private static long s_readAllEnded;

    /// <summary>Timed blocking reads that timed out, and that took an item, over an exploration.</summary>
    private static long s_readTimedOut;
    private static long s_readTimedIn;

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Explore_RealBuffer_NoLostWakeupEveryItemOnceLinearizable(string name)
    {
        Scenario scenario = All[name];
        Array.Clear(Outcomes);
        s_canceled = s_disposedCalls = s_timedOut = s_timedIn = s_readAllEnded = s_readTimedOut = s_readTimedIn = 0;
        long schedules = ComposedRuns.ExploreStandard(
            output.WriteLine, name, 2600 + name.Length, ExplorationBudget.Schedules(PerStrategy), (strategy, budget) => Explore(strategy, name, scenario, PlantedFault.None, budget));

        output.WriteLine("outcomes: " + string.Join(", ", Enum.GetValues<WriteOutcome>().Select(o => $"{o} {Outcomes[(int)o]}")) + $"; cancelled calls {s_canceled}, disposed calls {s_disposedCalls}, timed writes timed out {s_timedOut}, got in {s_timedIn}; timed reads timed out {s_readTimedOut}, took one {s_readTimedIn}");
        Assert.True(schedules >= 4, name);

        // The races the scenario is for happened in some schedule.
        Program[] threads = scenario.Threads;
        if (scenario.Mode == OverflowPolicy.DropOldest)
        {
            Assert.True(Outcomes[(int)WriteOutcome.EvictedOldest] > 0, "no write evicted");
        }
        else if (scenario.Mode == OverflowPolicy.DropIncoming)
        {
            Assert.True(Outcomes[(int)WriteOutcome.DroppedIncoming] > 0, "no write was dropped");
        }
        else if (scenario.Prefill + threads.Where(p => p.Step == Step.TryWrite).Sum(p => p.Count) > scenario.Capacity)
        {
            Assert.True(Outcomes[(int)WriteOutcome.Rejected] > 0, "no write was refused");
        }

        if (threads.Any(p => p.Step == Step.Dispose))
        {
            Assert.True(s_disposedCalls > 0, "no call met the disposal");
        }

        if (threads.Any(p => IsTimedWrite(p.Step)))
        {
            Assert.True(s_timedOut > 0, "no timed write timed out");
            Assert.True(s_timedIn > 0, "no timed write got in");
        }

        if (threads.Any(p => p.Step == Step.TimedRead))
        {
            Assert.True(s_readTimedOut > 0, "no timed read timed out");
            Assert.True(s_readTimedIn > 0, "no timed read took an item");
        }

        if (threads.Any(p => p.Step == Step.Cancel))
        {
            Assert.True(s_canceled > 0, "no call was cancelled");
            Assert.True(Outcomes[(int)WriteOutcome.Accepted] > 0, "no write got in");
        }

        if (threads.Any(p => p.Step == Step.ReadAll) && threads.Any(p => p.Step == Step.Complete))
        {
            Assert.True(s_readAllEnded > 0, "no ReadAllAsync met the completion");
        }

        if (threads.Any(p => p.Step == Step.Complete) && threads.Any(p => p.Step == Step.BlockingWrite) && scenario.Prefill > 0)
        {
            Assert.True(Outcomes[(int)WriteOutcome.Completed] > 0, "no write met the completion");
        }
    }

    [Theory]
    [InlineData(Step.BlockingWrite, "deadlock")]
    [InlineData(Step.WriteAsync, "livelock")]
    public void Explore_WriterParksWithoutRecheck_IsFound(Step write, string expected)
    {
        // One writer waits on a full buffer of one; the reader takes the item before the writer's park is visible (so
        // it signals nobody). Without the recheck after linking, the writer sleeps beside the room, and the reader, which
        // waits for the writer's item, sleeps too: a deadlock (blocking), or a livelock of the test's polling await
        // (asynchronous: the parked operation is nobody's thread).
        Scenario scenario = new(1, true, true, OverflowPolicy.Wait, 1, [new(write), new(Step.BlockingRead, 2)]);
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "park without recheck",
            91,
            PlantedFault.WriterParksWithoutRecheck,
            (strategy, fault, budget) => Explore(strategy, "planted: park without recheck", scenario, fault, budget),
            failure => Assert.Contains(expected, failure.Message, StringComparison.OrdinalIgnoreCase));

        // The control: the same scenario on the real buffer passes.
        ComposedRuns.ExploreStandard(output.WriteLine, "control", 91, 300, (strategy, budget) => Explore(strategy, "control", scenario, PlantedFault.None, budget));
    }

    [Theory]
    [InlineData("mpsc wait cap 1 full: timed-write-async | write | read x2 | advance", 94)]
    [InlineData("mpsc wait cap 1 full: timed-write | write | read x2", 95)]
    public void Explore_TimedOutWriterDropsPassOn_IsFound(string name, int seed)
    {
        // A timed writer and a blocking one park on a full buffer; a read's room wakes the timed one, whose deadline passes
        // before it acts on it. It answers TimedOut; without passing the room on, the blocking writer sleeps beside it and
        // the reader waits for that writer's item: a deadlock. Asynchronous (WriteAsync): the manual clock moves past the
        // deadline before the woken operation runs again. Blocking (Write, session 19): the writer's event wait times out
        // while the read's signal is on its way (the read won the wait's state, its set not yet done), so the wait ends
        // Signaled with the deadline passed.
        Scenario scenario = All[name];
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "timed-out writer drops the pass-on",
            seed,
            PlantedFault.TimedOutDropsPassOn,
            (strategy, fault, budget) => Explore(strategy, "planted: timed-out writer drops the pass-on, " + name, scenario, fault, budget),
            failure => Assert.Contains("deadlock", failure.Message, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Explore_PressureCheckWithStaleDepth_IsFound()
    {
        // The watermark check before session 17 (found by this class's first run): a writer reads the depth at the high
        // watermark, the reader empties the buffer (resumed and below the mark: nothing to do), and the writer's CAS
        // then pauses an empty buffer for good.
        Scenario scenario = All["spsc wait cap 4 marks 2/0: try-write x3 | try-read x3"];
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "pressure check with a stale depth",
            93,
            PlantedFault.PressureCheckWithStaleDepth,
            (strategy, fault, budget) => Explore(strategy, "planted: pressure check with a stale depth", scenario, fault, budget),
            failure => Assert.Contains("IsPaused", failure.InnerException!.Message, StringComparison.Ordinal));
    }

    /// <summary>
    /// One exploration of <paramref name="scenario"/>. With <paramref name="storeBuffers"/> the run is x86-TSO: stores wait
    /// in per-thread buffers (<see cref="ExploreOptions.StoreBuffers"/>), each schedule in a no-GC region so the buffer's
    /// objects stay put (<see cref="ExploreOptions.HoldObjectsStill"/>: only from <see cref="StillObjectsCollection"/>).
    /// </summary>
    internal static ExplorationResult Explore(Strategy strategy, string name, Scenario scenario, PlantedFault faults, int budget, bool storeBuffers = false, PlantedBug bugs = PlantedBug.None, int drainOdds = 2)
    {
        return ControlledTest.Explore(
            strategy,
            budget,
            () => new Run(scenario),
            ComposedRuns.Bodies<Run>(scenario.Threads.Length, (run, thread) => run.RunThread(thread)),
            run => run.Check(),
            new ExploreOptions { Faults = faults, Name = name, StoreBufferDrainOdds = drainOdds, Bugs = bugs }.WithTso(storeBuffers));
    }

    private sealed class Run
    {
        private const int Stride = 1000;
        private readonly Scenario _scenario;
        private readonly BackpressureBuffer<int> _buffer;
        private readonly List<Operation<QueueInput, QueueOutput>> _history = [];
        private readonly List<int> _placed = [];
        private readonly List<int> _out = []; // read, evicted or dropped-incoming... of placed items: read or evicted only
        private readonly List<int> _droppedIncoming = [];
        private readonly int?[] _evictedBy = new int?[8]; // the item the callback got during the current write of each logical thread
        private readonly StringBuilder _log = new();
        private readonly long[] _outcomes = new long[8];
        private readonly List<bool> _pressure = []; // PressureChanged events, in delivery order
        private readonly List<int> _canceled = []; // items of writes that ended without getting in: cancelled, timed out, disposed
        private readonly ManualTimeProvider? _clock; // the buffer's clock when a thread writes with a timeout
        private readonly int _timedWriters;
        private int _timedDone; // test-only cue, outside the simulated memory: timed writers finished
        private int _timedOut;
        private int _timedIn;
        private int _readAllEnded;
        private int _readTimedOut;
        private int _readTimedIn;
        private int _loopRefusals; // refusals of TryWrite inside the WaitToWriteAsync loop (counted by the buffer, not in _outcomes)
        private readonly CancellationTokenSource _cancel = new();
        private int _cancellations;
        private int _disposedCalls;
        private bool _completing; // set before the completing (or disposing) call
        private bool _completed;
        private bool _disposed;

        public Run(Scenario scenario)
        {
            _scenario = scenario;
            _timedWriters = scenario.Threads.Count(p => p.Step is Step.TimedWriteAsync or Step.TimedCancellableWriteAsync);
            _clock = _timedWriters > 0 ? new ManualTimeProvider() : null;
            _buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
            {
                TimeProvider = (TimeProvider?)_clock ?? TimeProvider.System,
                Capacity = scenario.Capacity,
                FullMode = scenario.Mode,
                SingleWriter = scenario.SingleWriter,
                SingleReader = scenario.SingleReader,
                ItemDropped = OnDropped,
                HighWatermark = scenario.High,
                LowWatermark = scenario.Low,
                TrackItemAge = scenario.TrackAge,
            });
            _buffer.PressureChanged += (_, paused) => _pressure.Add(paused);
            for (int i = 0; i < scenario.Prefill; i++)
            {
                if (_buffer.TryWrite(i).Outcome != WriteOutcome.Accepted)
                {
                    throw new InvalidOperationException("prefill");
                }

                _placed.Add(i);
                _history.Add(new(0, QueueInput.Enqueue(i), QueueOutput.Succeeded, -2 * (scenario.Prefill - i) - 1, -2 * (scenario.Prefill - i)));
            }
        }

        private void OnDropped(int item, DropReason reason)
        {
            int thread = ControlledScheduler.CurrentThread;
            if (reason == DropReason.Oldest)
            {
                Assert(_evictedBy[thread] is null, $"one write of T{thread} evicted two items ({_evictedBy[thread]} and {item})");
                _evictedBy[thread] = item;
                _out.Add(item);
            }
            else
            {
                _droppedIncoming.Add(item);
            }
        }

        public void RunThread(int thread)
        {
            Program program = _scenario.Threads[thread - 1];
            switch (program.Step)
            {
                case Step.Advance:
                    AdvanceWhileTimedWritersWait(thread);
                    return;
                case Step.ReadAll:
                    ReadAll(thread, program.Count);
                    return;
                case Step.TimedWriteAsync:
                case Step.TimedCancellableWriteAsync:
                    try
                    {
                        RunSteps(thread, program);
                    }
                    finally
                    {
                        _timedDone++; // only the advancing thread reads it, outside the simulated memory
                    }

                    return;
                default:
                    RunSteps(thread, program);
                    return;
            }
        }

        private void AdvanceWhileTimedWritersWait(int thread)
        {
            int ticks = ComposedRuns.AdvanceWhile(_clock!, () => Volatile.Read(ref _timedDone) < _timedWriters); // the timed waits' timers fire on this thread
            _log.Append('T').Append(thread).Append(" advanced ").Append(ticks).Append(" ticks; ");
        }

        private void ReadAll(int thread, int count)
        {
            bool all = ComposedRuns.ReadAll(_buffer.ReadAllAsync(), count, (item, call) =>
            {
                _out.Add(item);
                _history.Add(new(thread, QueueInput.Dequeue(), QueueOutput.Item(item), call, ControlledScheduler.ReturnTime(windowFirst: true)));
                _log.Append('T').Append(thread).Append(" read-all -> ").Append(item).Append("; ");
            });
            if (!all)
            {
                Assert(_completing, $"T{thread}'s ReadAllAsync ended on a buffer not completed");
                _readAllEnded++;
                _log.Append('T').Append(thread).Append(" read-all -> ended; ");
            }
        }

        private void RunSteps(int thread, Program program)
        {
            for (int i = 0; i < program.Count; i++)
            {
                long call = ControlledScheduler.Now;
                int value = (thread * Stride) + i;
                int item;
                QueueInput input;
                QueueOutput result;
                switch (program.Step)
                {
                    case Step.Complete:
                        _completing = true;
                        _buffer.TryComplete();
                        _completed = true;
                        _log.Append('T').Append(thread).Append(" complete; ");
                        return;

                    case Step.Dispose:
                        _completing = true; // before the call: a racing call may see it before it returns
                        _buffer.Dispose();
                        _completed = _disposed = true;
                        _log.Append('T').Append(thread).Append(" dispose; ");
                        return;

                    case Step.Cancel:
                        _cancel.Cancel();
                        _log.Append('T').Append(thread).Append(" cancel; ");
                        return;

                    case Step.BlockingWrite:
                    case Step.TryWrite:
                    case Step.WriteAsync:
                    case Step.WaitToWrite:
                    case Step.CancellableWrite:
                    case Step.CancellableWriteAsync:
                    case Step.TimedWriteAsync:
                    case Step.TimedCancellableWriteAsync:
                    case Step.TimedWrite:
                    {
                        _evictedBy[thread] = null;
                        WriteResult written;
                        try
                        {
                            written = program.Step switch
                            {
                                Step.BlockingWrite => _buffer.Write(value, Timeout.InfiniteTimeSpan),
                                Step.TryWrite => _buffer.TryWrite(value),
                                Step.WriteAsync => ComposedRuns.Await(_buffer.WriteAsync(value)),
                                Step.WaitToWrite => WaitThenWrite(value),
                                Step.CancellableWrite => _buffer.Write(value, Timeout.InfiniteTimeSpan, _cancel.Token),
                                Step.TimedWriteAsync => ComposedRuns.Await(_buffer.WriteAsync(value, OverflowPolicy.Wait, TimeSpan.FromTicks(TimeoutTicks))),
                                Step.TimedCancellableWriteAsync => ComposedRuns.Await(_buffer.WriteAsync(value, OverflowPolicy.Wait, TimeSpan.FromTicks(TimeoutTicks), _cancel.Token)),
                                Step.TimedWrite => _buffer.Write(value, OverflowPolicy.Wait, SyncTimeout),
                                _ => ComposedRuns.Await(_buffer.WriteAsync(value, _cancel.Token)),
                            };
                        }
                        catch (ObjectDisposedException)
                        {
                            Assert(_completing, $"T{thread}'s write of {value} threw ObjectDisposedException before the disposal");
                            _canceled.Add(value); // no trace, as a cancelled write
                            _log.Append('T').Append(thread).Append(" write ").Append(value).Append(" -> disposed; ");
                            _disposedCalls++;
                            continue;
                        }
                        catch (OperationCanceledException)
                        {
                            _canceled.Add(value); // no trace: checked in Check (never read, evicted or left)
                            _cancellations++;
                            _log.Append('T').Append(thread).Append(" write ").Append(value).Append(" -> canceled; ");
                            continue;
                        }

                        _outcomes[(int)written.Outcome]++;
                        if (IsTimedWrite(program.Step))
                        {
                            if (written.Outcome == WriteOutcome.Rejected)
                            {
                                Assert(written.Reason == RejectReason.TimedOut, $"T{thread}'s timed write of {value} was refused for {written.Reason}");
                                _canceled.Add(value); // no trace: checked in Check (never read or left)
                                _timedOut++;
                            }
                            else if (written.Outcome == WriteOutcome.Accepted)
                            {
                                _timedIn++;
                            }
                        }

                        int? evicted = _evictedBy[thread];
                        Assert((written.Outcome == WriteOutcome.EvictedOldest) == evicted.HasValue, $"T{thread}'s write of {value} answered {written.Outcome}, and the callback got {(evicted.HasValue ? evicted.Value.ToString() : "no item")}");
                        switch (written.Outcome)
                        {
                            case WriteOutcome.Accepted:
                                _placed.Add(value);
                                input = QueueInput.Enqueue(value);
                                result = QueueOutput.Succeeded;
                                break;
                            case WriteOutcome.EvictedOldest:
                                _placed.Add(value);
                                input = QueueInput.EnqueueOrEvict(value);
                                result = QueueOutput.PlacedEvicting(evicted!.Value);
                                break;
                            case WriteOutcome.DroppedIncoming:
                                Assert(_droppedIncoming.Count > 0 && _droppedIncoming[^1] == value, $"T{thread}'s write of {value} was dropped but the callback did not get it");
                                input = QueueInput.Enqueue(value);
                                result = QueueOutput.Failed; // the buffer was full
                                break;
                            case WriteOutcome.Rejected:
                                Assert(program.Step == Step.TryWrite || IsTimedWrite(program.Step), $"a waiting write with no deadline answered {written}");
                                input = QueueInput.Enqueue(value);
                                result = QueueOutput.Failed;
                                break;
                            default: // Completed: the spec does not model completion (checked in Check)
                                Assert(_completing, $"T{thread}'s write of {value} answered Completed before any completion");
                                _log.Append('T').Append(thread).Append(" write ").Append(value).Append(" -> Completed; ");
                                continue;
                        }

                        break;
                    }

                    case Step.ReadMany:
                    {
                        var into = new int[2];
                        int n = _buffer.TryReadMany(into);
                        _out.AddRange(into.Take(n));
                        input = QueueInput.DequeueMany(2);
                        result = QueueOutput.Items(into.AsSpan(0, n));
                        break;
                    }

                    case Step.BlockingRead:
                    case Step.ReadAsync:
                    case Step.WaitToRead:
                    case Step.CancellableRead:
                    case Step.TimedRead:
                    {
                        bool ok;
                        try
                        {
                            ok = program.Step switch
                            {
                                Step.BlockingRead => _buffer.TryRead(out item, Timeout.InfiniteTimeSpan),
                                Step.ReadAsync => TryReadAsync(out item),
                                Step.WaitToRead => WaitThenRead(out item),
                                Step.TimedRead => _buffer.TryRead(out item, SyncTimeout),
                                _ => _buffer.TryRead(out item, Timeout.InfiniteTimeSpan, _cancel.Token),
                            };
                        }
                        catch (ObjectDisposedException)
                        {
                            Assert(_completing, $"T{thread}'s read threw ObjectDisposedException before the disposal");
                            _log.Append('T').Append(thread).Append(" read -> disposed; ");
                            _disposedCalls++;
                            return; // disposed and drained: later reads would throw the same
                        }
                        catch (OperationCanceledException)
                        {
                            _log.Append('T').Append(thread).Append(" read -> canceled; ");
                            _cancellations++;
                            continue; // took nothing: an item it had taken would be missing in Check
                        }

                        if (!ok && program.Step == Step.TimedRead && !_completing)
                        {
                            // Timed out, having taken nothing: it saw the buffer empty within its call (the check before
                            // each park), so as a queue operation it is a failed dequeue.
                            _readTimedOut++;
                            input = QueueInput.Dequeue();
                            result = QueueOutput.Failed;
                            break;
                        }

                        if (ok && program.Step == Step.TimedRead)
                        {
                            _readTimedIn++;
                        }

                        if (!ok)
                        {
                            Assert(_completing, $"T{thread}'s waiting read ({program.Step}) answered false on a buffer not completed");
                            _log.Append('T').Append(thread).Append(" read -> finished; ");
                            return; // completed and drained: later reads would answer the same
                        }

                        _out.Add(item);
                        input = QueueInput.Dequeue();
                        result = QueueOutput.Item(item);
                        break;
                    }

                    default:
                    {
                        bool ok = _buffer.TryRead(out item);
                        if (ok)
                        {
                            _out.Add(item);
                        }

                        input = QueueInput.Dequeue();
                        result = ok ? QueueOutput.Item(item) : QueueOutput.Failed;
                        break;
                    }
                }

                _history.Add(new(thread, input, result, call, ControlledScheduler.ReturnTime(windowFirst: true)));
                _log.Append('T').Append(thread).Append(' ').Append(input).Append(" -> ").Append(result).Append("; ");
            }
        }

        private bool TryReadAsync(out int item)
        {
            try
            {
                item = ComposedRuns.Await(_buffer.ReadAsync(), polls => Assert(polls < 4000, $"a ReadAsync never ended ({_buffer.Count} items in the buffer)"));
                return true;
            }
            catch (InvalidOperationException error) when (_buffer.IsCompleted && error is not ObjectDisposedException)
            {
                item = 0;
                return false; // completed and drained (a disposal's exception goes to the caller's handler)
            }
        }

        private WriteResult WaitThenWrite(int value)
        {
            while (true)
            {
                WriteResult written = _buffer.TryWrite(value);
                if (written.Outcome != WriteOutcome.Rejected)
                {
                    return written;
                }

                _loopRefusals++;

                if (!ComposedRuns.Await(_buffer.WaitToWriteAsync()))
                {
                    return WriteResult.Completed;
                }
            }
        }

        private bool WaitThenRead(out int item)
        {
            while (!_buffer.TryRead(out item))
            {
                if (!ComposedRuns.Await(_buffer.WaitToReadAsync()))
                {
                    return false; // completed and drained
                }
            }

            return true;
        }

        public void Check()
        {
            for (int o = 0; o < _outcomes.Length; o++)
            {
                Outcomes[o] += _outcomes[o];
            }

            s_canceled += _cancellations;
            s_disposedCalls += _disposedCalls;
            s_timedOut += _timedOut;
            s_timedIn += _timedIn;
            s_readAllEnded += _readAllEnded;
            s_readTimedOut += _readTimedOut;
            s_readTimedIn += _readTimedIn;

            BackpressureStatistics before = _buffer.GetStatistics();
            if (_scenario.High != 0)
            {
                // Once the threads stop, the state agrees with the depth (hysteresis) and the last event with the state.
                bool paused = _buffer.IsPaused;
                string events = string.Join(",", _pressure.Select(p => p ? "pause" : "resume"));
                Assert(paused ? before.Remaining > _scenario.Low : before.Remaining < _scenario.High, $"IsPaused {paused} with {before.Remaining} items left (watermarks {_scenario.High}/{_scenario.Low}); events: {events}");
                Assert(_pressure.Count == 0 ? !paused : _pressure[^1] == paused, $"the last event does not match IsPaused {paused}; events: {events}");
                for (int i = 0; i < _pressure.Count; i++)
                {
                    Assert(_pressure[i] == (i % 2 == 0), $"events out of order: {events}");
                }
            }

            long t0 = _history.Count == 0 ? 0 : _history.Max(o => o.Return) + 1;
            int drained = 0;
            while (_buffer.TryRead(out int item))
            {
                _out.Add(item);
                drained++;
                _history.Add(new(0, QueueInput.Dequeue(), QueueOutput.Item(item), t0, t0 + 1));
                t0 += 2;
            }

            Assert(drained <= _buffer.Capacity, $"the drain found {drained} items in a buffer of capacity {_buffer.Capacity}");
            Assert(before.Remaining == drained, $"the statistics said {before.Remaining} remained; the drain found {drained}");
            var counts = _out.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
            foreach (var (value, n) in counts)
            {
                Assert(n == 1, $"item {value} came out {n} times");
                Assert(_placed.Contains(value), $"item {value} came out but was never accepted");
            }

            foreach (int value in _placed)
            {
                Assert(counts.ContainsKey(value), $"item {value} was accepted but lost");
            }

            foreach (int value in _canceled)
            {
                Assert(!counts.ContainsKey(value), $"the cancelled write of {value} left its item in the buffer");
            }

            // The counters agree with what the threads saw (the prefill counts as enqueued; the drain is not in "before").
            long evictions = _outcomes[(int)WriteOutcome.EvictedOldest];
            Assert(before.Enqueued == _placed.Count, $"Enqueued {before.Enqueued}, but {_placed.Count} writes got in");
            Assert(before.Evicted == evictions, $"Evicted {before.Evicted}, but {evictions} writes evicted");
            Assert(before.DroppedIncoming == _droppedIncoming.Count, $"DroppedIncoming {before.DroppedIncoming}, but the callback got {_droppedIncoming.Count}");
            Assert(before.Enqueued == before.Dequeued + before.Evicted + before.Remaining, $"accounting: {before}");
            if (_scenario.Mode is OverflowPolicy.Reject or OverflowPolicy.Wait)
            {
                // Every refusal a caller saw is counted once (a timed-out write included), and nothing else is: a waiting
                // write's failed attempts are not refusals.
                long refused = _outcomes[(int)WriteOutcome.Rejected] + _loopRefusals;
                Assert(before.Rejected == refused, $"Rejected {before.Rejected}, but {refused} writes were refused");
            }

            if (_completed)
            {
                Assert(_buffer.IsCompleted && (_disposed || _buffer.TryWrite(-1).Outcome == WriteOutcome.Completed), "a write after the completion did not answer Completed");
                return; // the spec does not model completion's answers
            }

            var result = LinearizabilityChecker.Check(new QueueSpec(_buffer.Capacity, exactBatches: false), _history);
            Assert(result.IsLinearizable, "not linearizable: " + result.Explanation);
        }

        private void Assert(bool condition, string message)
        {
            if (!condition)
            {
                throw new CheckFailedException(message + "\nhistory: " + _log + "\nstate: " + _buffer.DescribeWaitState());
            }
        }
    }
}
