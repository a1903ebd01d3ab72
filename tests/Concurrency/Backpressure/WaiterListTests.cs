using System.Threading.Tasks.Sources;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;
using TList = LockFree.Backpressure.WaiterList<LockFree.Tests.Concurrency.Scheduling.TestAtomics>;
using TWaiter = LockFree.Backpressure.Waiter<LockFree.Tests.Concurrency.Scheduling.TestAtomics>;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// The REAL <see cref="WaiterList{TAtomics}"/> and <see cref="Waiter{TAtomics}"/> under the controlled scheduler: its
/// lock (a lock the scheduler controls, <see cref="TestAtomics.EnterLock"/>), links, tickets, pool, gate, the waits'
/// end-exactly-once word, the wheel timer's reference count, and the wake-up (<see cref="TestAtomics.QueueWorkItem"/>
/// runs the waiter's work item inline and wakes the logical thread blocked on it). A waiting thread links, rechecks, and
/// either abandons its wait (<see cref="WaiterList{TAtomics}.Abandon"/>) or blocks until the waiter's value-task source
/// completes and then consumes it through <c>GetResult</c> (Detach, the pool return), as an awaiting caller does.
/// Timeouts are real wheel timers (a <see cref="HierarchicalTimerWheel"/> on a manual clock) that a timer thread fires by
/// advancing the clock. Cancellation is the token callback's own call (<c>TryFinish(Canceled)</c>) from a canceller
/// thread, for the generation it was registered in (the real callback reads the current one, which is the same: Detach
/// waits for a running callback before the waiter is reused; real tokens and that wait are explored in
/// <see cref="WaiterCancellationTests"/>).
/// <para>
/// Scenarios, each with a fault planted in the real code (<see cref="PlantedFault"/>, compiled away in production) that
/// its check finds: the finish racing waiters that link (the count-bounded FinishAll), optionally with timeouts; a
/// writer's one-at-a-time wake of two readers with the pass-on (Abandon without it); a freed slot's signal past a first
/// waiter that leaves by cancellation or timeout (a SignalOne that stops at an ended wait) or is a probe (a SignalOne
/// spent on the probe); a waiter consumed while its fired timer's callback still holds it, then reused (a Detach that
/// ignores the timer's reference); FIFO: the oldest of two waiters gets a signal. Checked on every schedule: no thread
/// is left blocked (a lost wake-up is a deadlock, or a livelock of the spinning freer), every wait ended exactly once
/// (a second completion throws in the value-task source) with an outcome its enders allow, the list and the gate's
/// count empty at the end, and the pool never holds a waiter twice.
/// </para>
/// <para>
/// The links, tickets and pool are guarded accesses through the seam: race-checked, not scheduling points (a switch
/// inside the locked section is the same as one at its edge for every thread that takes the lock); a link read
/// outside the lock is found as a data race. Not covered here: synchronous waits (their event goes through the seam:
/// <see cref="WaiterSyncAbandonTests"/> explores them in the abandon race), store buffers (the list's objects are not pinned; the gate's fences are explored on the gate itself:
/// ParkingGateTests, FirstParkWindowTests, DisarmTests), and real cancellation tokens (their registrations go through the
/// seam since session 15: <see cref="WaiterCancellationTests"/> explores them).
/// </para>
/// </summary>
public sealed class WaiterListTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    private static readonly Func<Strategy>[] Strategies = CiStrategies.Standard(97);

    /// <summary>Schedules per strategy for the scenarios that must pass.</summary>
    private static int Budget => ExplorationBudget.Schedules(400);

    /// <summary>Schedules a planted-fault search may take (it stops at the first failure).</summary>
    private const int SearchBudget = 5000;

    /// <summary>How the first waiter of the room scenario leaves, or what it is.</summary>
    public enum Leaver
    {
        /// <summary>Its wait is cancelled (the token callback's TryFinish).</summary>
        Cancel,

        /// <summary>Its wait times out (a wheel timer fired by the timer thread).</summary>
        Timeout,

        /// <summary>It is a probe (a WaitToWriteAsync): woken, it takes nothing.</summary>
        Probe,
    }

    /// <summary>What a waiting thread saw of one wait.</summary>
    internal enum Outcome
    {
        None,
        Abandoned,
        Signaled,
        Completed,
        TimedOut,
        Canceled,
    }

    /// <summary>What every scenario shares: the list under test, the words of the simulated condition, a test wheel.</summary>
    internal class Run
    {
        public readonly TList List = new(static _ => { }); // its waits arm no user timer (the test wheel): nothing to report
        public readonly long[] Words = new long[4]; // [0] completed / room, [1] items, [2] freed
        public readonly ManualTimeProvider Clock = new();
        public readonly HierarchicalTimerWheel Wheel;
        public StickyBits<TestAtomics> Bits;
        private int _cue;
        private int _cue2;

        public Run() => Wheel = new HierarchicalTimerWheel(Tick, Clock, maxTimers: 16);

        /// <summary>A test-only cue (outside the simulated memory).</summary>
        public ref int Cue => ref _cue;

        public ref int Cue2 => ref _cue2;

        /// <summary>Blocks until <paramref name="waiter"/>'s wait completes, then consumes it (Detach, pool return) as an awaiter does.</summary>
        public static Outcome Await(TWaiter waiter, short version)
        {
            IValueTaskSource<WaitStatus> source = waiter;
            TestAtomics.BlockUntil(waiter, () => source.GetStatus(version) != ValueTaskSourceStatus.Pending);
            try
            {
                return source.GetResult(version) switch
                {
                    WaitStatus.Signaled => Outcome.Signaled,
                    WaitStatus.Completed => Outcome.Completed,
                    WaitStatus.TimedOut => Outcome.TimedOut,
                    WaitStatus status => throw new InvalidOperationException($"unexpected status {status}"),
                };
            }
            catch (OperationCanceledException)
            {
                return Outcome.Canceled;
            }
        }

        /// <summary>Spins (a scheduling point each time) until a test-only condition holds (read outside the simulated memory).</summary>
        public static void AwaitUntil(Func<bool> condition)
        {
            var spinner = default(SpinWait);
            while (!condition())
            {
                TestAtomics.SpinOnce(ref spinner);
            }
        }

        /// <summary>Fires the wheel's due timers on this thread (the driver's pass).</summary>
        public void FireTimers()
        {
            Clock.Advance(TimeSpan.FromMilliseconds(5), fireTimers: false);
            Wheel.Advance();
        }

        /// <summary>The end state every scenario shares: nothing linked, nothing counted, no waiter twice in the pool.</summary>
        public void CheckList()
        {
            Assert.Equal(0, List.Count);
            Assert.False(List.TryPeek(out _, out _), List.Describe());
            var rented = new HashSet<TWaiter>(ReferenceEqualityComparer.Instance);
            for (int i = 0; i < 4; i++)
            {
                Assert.True(rented.Add(List.RentAndLink(synchronous: false)), "the pool handed out one waiter twice");
            }

            Wheel.Dispose();
        }
    }

    // ---------------------------------------------------------------- finish

    /// <summary>Waiters of the finish, and the finisher: publish completion, then FinishAll(Completed).</summary>
    internal sealed class FinishRun(int waiters, bool timed, bool signal = false) : Run
    {
        public readonly Outcome[] Outcomes = new Outcome[waiters];
        private int _waitersDone;

        public void Waiter(int me)
        {
            TWaiter waiter = List.RentAndLink(synchronous: false);
            short version = waiter.Version;
            if (TestAtomics.LoadAcquire(ref Words[0]) != 0)
            {
                List.Abandon(waiter, forwardSignal: false);
                Outcomes[me] = Outcome.Abandoned;
                Interlocked.Increment(ref _waitersDone);
                return;
            }

            if (timed)
            {
                waiter.Arm(Tick, CancellationToken.None, Clock, Wheel);
            }

            Volatile.Write(ref Cue, 1);
            Outcomes[me] = Await(waiter, version);
            Interlocked.Increment(ref _waitersDone);
        }

        public void Finisher(bool afterAPark)
        {
            if (afterAPark)
            {
                WindowSteps.AwaitCue(ref Cue);
            }

            TestAtomics.StoreRelease(ref Words[0], 1); // the publish
            List.FinishAll(WaitStatus.Completed);
        }

        /// <summary>Fires the timers once a waiter armed one (or every waiter is done without parking).</summary>
        public void Timer()
        {
            AwaitUntil(() => Volatile.Read(ref Cue) != 0 || Volatile.Read(ref _waitersDone) == waiters);
            FireTimers();
        }

        public void Check()
        {
            foreach (Outcome outcome in Outcomes)
            {
                Assert.True(outcome is Outcome.Abandoned or Outcome.Completed || (timed && outcome == Outcome.TimedOut) || (signal && outcome == Outcome.Signaled), $"outcomes {string.Join(", ", Outcomes)}");
            }

            CheckList();
        }
    }

    private static ExplorationResult ExploreFinish(Strategy strategy, int waiters, bool timed, bool afterAPark, int iterations, PlantedFault faults = PlantedFault.None, bool signal = false)
    {
        var threads = new List<Action<FinishRun>>();
        for (int i = 0; i < waiters; i++)
        {
            int me = i;
            threads.Add(r => r.Waiter(me));
        }

        threads.Add(r => r.Finisher(afterAPark));
        if (timed)
        {
            threads.Add(r => r.Timer());
        }

        if (signal)
        {
            threads.Add(r => r.List.SignalOne()); // a writer's one-at-a-time wake racing the finish and the timeouts
        }

        return ControlledTest.Explore(
            strategy,
            iterations,
            () => new FinishRun(waiters, timed, signal),
            threads,
            r => r.Check(),
            new ExploreOptions { Faults = faults, Name = $"real waiter list: finish ({waiters} waiters, timed {timed}, signal {signal}, after a park {afterAPark}, faults {faults})" });
    }

    /// <summary>The finish racing waiters that link and register (the window of session 8's lost finish wake-up), and their timeouts.</summary>
    [Theory]
    [InlineData(2, false, false)]
    [InlineData(2, false, true)]
    [InlineData(3, false, true)]
    [InlineData(2, true, false)]
    public void Finish_EveryWaiterEndsOnce(int waiters, bool timed, bool afterAPark)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Report(ExploreFinish(make(), waiters, timed, afterAPark, waiters == 2 ? Budget : Budget / 2));
        }
    }

    /// <summary>A timeout, a signal and the finish racing for the same two waits: each ends once, by one of them.</summary>
    [Fact]
    public void Finish_TimeoutSignalAndFinishRace_EveryWaiterEndsOnce()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Report(ExploreFinish(make(), 2, timed: true, afterAPark: false, Budget, signal: true));
        }
    }

    /// <summary>The pre-session-8 FinishAll, planted in the real list: bounded by the gate's count, it leaves a parked waiter linked.</summary>
    [Fact]
    public void Finish_BoundedByGateCount_IsFoundAsDeadlock() =>
        Found<DeadlockException>("FinishAll bounded by the gate's count", Strategies, s => ExploreFinish(s, 2, timed: false, afterAPark: true, SearchBudget, PlantedFault.FinishAllBoundedByCount));

    // ---------------------------------------------------------------- signal one reader at a time

    /// <summary>A writer publishing one item per reader, each followed by SignalOne; readers that pass a signal they did not need on.</summary>
    internal sealed class SignalRun : Run
    {
        public int Taken;

        public void Writer()
        {
            for (int i = 0; i < 2; i++)
            {
                TestAtomics.Add(ref Words[1], 1); // the publish (a read-modify-write: its own fence)
                if (List.HasWaiters)
                {
                    List.SignalOne();
                }
            }
        }

        public void Reader()
        {
            while (true)
            {
                TWaiter waiter = List.RentAndLink(synchronous: false);
                short version = waiter.Version;
                if (WindowSteps.TryTake(ref Words[1]))
                {
                    List.Abandon(waiter, forwardSignal: true); // a signal that reached it goes on
                    Interlocked.Increment(ref Taken);
                    return;
                }

                Outcome outcome = Await(waiter, version);
                Assert.Equal(Outcome.Signaled, outcome);
            }
        }

        public void Check()
        {
            Assert.Equal(2, Taken);
            Assert.Equal(0, Words[1]);
            CheckList();
        }
    }

    private static ExplorationResult ExploreSignal(Strategy strategy, int iterations, PlantedFault faults = PlantedFault.None) =>
        ControlledTest.Explore<SignalRun>(
            strategy,
            iterations,
            () => new SignalRun(),
            [r => r.Writer(), r => r.Reader(), r => r.Reader()],
            r => r.Check(),
            new ExploreOptions { Faults = faults, Name = $"real waiter list: SignalOne with pass-on (faults {faults})" });

    /// <summary>SignalOne with the pass-on of a signal a successful recheck did not need: every reader takes an item.</summary>
    [Fact]
    public void SignalOne_WithPassOn_EveryReaderTakesAnItem()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Report(ExploreSignal(make(), Budget));
        }
    }

    /// <summary>
    /// Abandon without the pass-on: a reader popped between its link and its registration takes the signal (the count
    /// was low, so the next publish asked nobody), its recheck takes that item, and the other reader sleeps beside it.
    /// Random walk is not asked (the model's measurement: the first reader must stall in that window while the other
    /// parks and the writer publishes twice).
    /// </summary>
    [Fact]
    public void SignalOne_AbandonWithoutPassOn_IsFoundAsDeadlock() =>
        Found<DeadlockException>("Abandon without the pass-on", Strategies.Skip(1), s => ExploreSignal(s, SearchBudget, PlantedFault.AbandonDropsPassOn));

    // ---------------------------------------------------------------- a freed slot past a leaving first waiter

    /// <summary>
    /// Two writers wait for room; a reader frees a slot whenever none is free (at most two), each followed by the
    /// buffer's armed-bit check, HasWaiters and SignalOne. The first writer leaves (cancelled, timed out) or is a probe
    /// that takes nothing. A freed slot nobody is woken for leaves the second writer parked and the freer spinning.
    /// </summary>
    internal sealed class RoomRun(Leaver leaver) : Run
    {
        private const long Armed = 1;
        private TWaiter? _firstWaiter;
        private int _firstGeneration;
        private int _done;
        private int _firstDone;
        private int _aboutToBlock;

        public Outcome First { get; private set; }

        public bool FirstTook { get; private set; }

        public bool SecondTook { get; private set; }

        public int Freed { get; private set; }

        public void FirstWriter()
        {
            bool firstWait = true;
            while (true)
            {
                TWaiter waiter = List.RentAndLink(synchronous: false, ref Bits, Armed, probe: leaver == Leaver.Probe);
                short version = waiter.Version;
                if (firstWait)
                {
                    _firstGeneration = waiter.Generation;
                    Volatile.Write(ref _firstWaiter, waiter); // the canceller's cue: the registration is in place
                }

                bool room = leaver == Leaver.Probe ? TestAtomics.LoadAcquire(ref Words[0]) > 0 : WindowSteps.TryTake(ref Words[0]);
                if (room)
                {
                    List.Abandon(waiter, forwardSignal: true);
                    First = firstWait ? Outcome.Abandoned : First;
                    FirstTook = leaver != Leaver.Probe;
                    break;
                }

                if (firstWait && leaver == Leaver.Timeout)
                {
                    waiter.Arm(Tick, CancellationToken.None, Clock, Wheel);
                    Volatile.Write(ref Cue, 1); // the timer thread's cue
                }

                Interlocked.Increment(ref _aboutToBlock);
                Outcome outcome = Await(waiter, version);
                First = firstWait ? outcome : First;
                firstWait = false;
                if (outcome is Outcome.Canceled or Outcome.TimedOut || leaver == Leaver.Probe)
                {
                    break; // left, or a probe woken: takes nothing
                }
            }

            Volatile.Write(ref _firstDone, 1);
            Interlocked.Increment(ref _done);
        }

        public void SecondWriter()
        {
            while (true)
            {
                TWaiter waiter = List.RentAndLink(synchronous: false, ref Bits, Armed);
                short version = waiter.Version;
                if (WindowSteps.TryTake(ref Words[0]))
                {
                    List.Abandon(waiter, forwardSignal: true);
                    break;
                }

                Interlocked.Increment(ref _aboutToBlock);
                Assert.Equal(Outcome.Signaled, Await(waiter, version));
            }

            SecondTook = true;
            Interlocked.Increment(ref _done);
        }

        /// <summary>
        /// The reader: frees a slot whenever none is free, at most two, until both writers are done. With
        /// <paramref name="afterBothBlock"/> it starts once both writers are about to block (a test-only cue: the
        /// schedules where the signal meets two linked waiters; random walk rarely holds the freer back that long).
        /// </summary>
        public void Freer(bool afterBothBlock)
        {
            if (afterBothBlock)
            {
                AwaitUntil(() => Volatile.Read(ref _aboutToBlock) >= 2);
            }

            var spinner = default(SpinWait);
            while (Volatile.Read(ref _done) < 2)
            {
                if (Freed < 2 && TestAtomics.LoadAcquire(ref Words[0]) == 0)
                {
                    TestAtomics.Add(ref Words[0], 1); // the read's publish of a free slot
                    Freed++;
                    if ((Bits.Read() & Armed) != 0 && List.HasWaiters)
                    {
                        List.SignalOne();
                    }
                }
                else
                {
                    TestAtomics.SpinOnce(ref spinner); // a slot is free: one of the writers is on its way to it (or never will be: a lost wake-up)
                }
            }
        }

        public void Canceller()
        {
            var spinner = default(SpinWait);
            TWaiter? waiter;
            while ((waiter = Volatile.Read(ref _firstWaiter)) is null)
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            waiter.TryFinish(WaitStatus.Canceled, _firstGeneration); // the token callback
        }

        /// <summary>Fires the timers once the first writer armed its timeout (or left without arming one).</summary>
        public void Timer()
        {
            AwaitUntil(() => Volatile.Read(ref Cue) != 0 || Volatile.Read(ref _firstDone) != 0);
            FireTimers();
        }

        public void Check()
        {
            Assert.True(SecondTook);
            Outcome[] allowed = leaver switch
            {
                Leaver.Cancel => [Outcome.Abandoned, Outcome.Signaled, Outcome.Canceled],
                Leaver.Timeout => [Outcome.Abandoned, Outcome.Signaled, Outcome.TimedOut],
                _ => [Outcome.Abandoned, Outcome.Signaled],
            };
            Assert.Contains(First, allowed);
            Assert.Equal(Freed, (FirstTook ? 1 : 0) + 1 + Words[0]); // every freed slot taken once or still free
            CheckList();
        }
    }

    private static ExplorationResult ExploreRoom(Strategy strategy, Leaver leaver, int iterations, PlantedFault faults = PlantedFault.None, bool afterBothBlock = false)
    {
        // The leaver's ender before the freer: the bounded search's free choices take the lowest thread id first, so it
        // reaches "the ender ends the wait, then the freer signals before the ender unlinks" with one preemption.
        var threads = new List<Action<RoomRun>> { r => r.FirstWriter(), r => r.SecondWriter() };
        if (leaver == Leaver.Cancel)
        {
            threads.Add(r => r.Canceller());
        }
        else if (leaver == Leaver.Timeout)
        {
            threads.Add(r => r.Timer());
        }

        threads.Add(r => r.Freer(afterBothBlock));

        return ControlledTest.Explore(
            strategy,
            iterations,
            () => new RoomRun(leaver),
            threads,
            r => r.Check(),
            new ExploreOptions { Faults = faults, MaxSteps = 5000, Name = $"real waiter list: room past a {leaver} (faults {faults}, after both block {afterBothBlock})" });
    }

    /// <summary>A freed slot's signal passes a first waiter that was cancelled, timed out, or is a probe, on to the second.</summary>
    [Theory]
    [InlineData(Leaver.Cancel, false)]
    [InlineData(Leaver.Cancel, true)]
    [InlineData(Leaver.Timeout, false)]
    [InlineData(Leaver.Timeout, true)]
    [InlineData(Leaver.Probe, false)]
    public void Room_SignalPassesTheLeaver_SecondWriterTakesTheSlot(Leaver leaver, bool afterBothBlock)
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Report(ExploreRoom(make(), leaver, Budget, afterBothBlock: afterBothBlock));
        }
    }

    /// <summary>
    /// SignalOne that stops at a wait that had already ended: the cancelled or timed-out waiter swallows the signal. The
    /// canceller (or timer) must stall between its CAS and its unlink while the freer signals. The bounded search runs
    /// with one preemption: it is depth-first from the last choice, and with two it did not get back to that early
    /// preemption within 5,000 schedules (with one: about 300).
    /// </summary>
    [Theory]
    [InlineData(Leaver.Cancel)]
    [InlineData(Leaver.Timeout)]
    public void Room_SignalStopsAtEndedWait_IsFoundAsLivelock(Leaver leaver) =>
        Found<LivelockException>($"SignalOne stopping at an ended wait ({leaver})", [.. Strategies.Take(3), () => Strategy.BoundedPreemption(1)], s => ExploreRoom(s, leaver, SearchBudget, PlantedFault.SignalOneStopsAtEnded, afterBothBlock: true));

    /// <summary>SignalOne spent on a probe: the writer behind it sleeps beside the free slot.</summary>
    [Fact]
    public void Room_SignalSpentOnProbe_IsFoundAsLivelock() =>
        Found<LivelockException>("SignalOne spent on a probe", Strategies, s => ExploreRoom(s, Leaver.Probe, SearchBudget, PlantedFault.SignalOneSpentOnProbe));

    // ---------------------------------------------------------------- pool reuse under a late timer callback

    /// <summary>
    /// One waiter thread waits twice: first with a short wheel timeout that the timer thread fires, racing a signal; then
    /// (the pool may hand it the same waiter) with a timeout that never fires, ended only by the second signal. A waiter
    /// consumed while its fired timer's callback still holds it must not be reused before that callback is done with it:
    /// the callback would read the new wait's generation and time it out.
    /// </summary>
    internal sealed class ReuseRun : Run
    {
        private int _timerDone;

        public Outcome FirstOutcome { get; private set; }

        public Outcome SecondOutcome { get; private set; }

        public void Waiter()
        {
            TWaiter first = List.RentAndLink(synchronous: false);
            short version = first.Version;
            first.Arm(Tick, CancellationToken.None, Clock, Wheel);
            Volatile.Write(ref Cue, 1);
            FirstOutcome = Await(first, version);

            TWaiter second = List.RentAndLink(synchronous: false);
            version = second.Version;
            second.Arm(TimeSpan.FromHours(1), CancellationToken.None, Clock, Wheel);
            Volatile.Write(ref Cue2, 1);
            SecondOutcome = Await(second, version);
        }

        public void Signaller()
        {
            WindowSteps.AwaitCue(ref Cue);
            List.SignalOne();
            AwaitUntil(() => Volatile.Read(ref Cue2) != 0 && Volatile.Read(ref _timerDone) != 0); // after any late callback: the second wait's outcome is then exact
            List.SignalOne();
        }

        public void Timer()
        {
            WindowSteps.AwaitCue(ref Cue);
            FireTimers();
            Volatile.Write(ref _timerDone, 1);
        }

        public void Check()
        {
            Assert.Contains(FirstOutcome, new[] { Outcome.Signaled, Outcome.TimedOut });
            Assert.Equal(Outcome.Signaled, SecondOutcome); // its timer never fires: only the second signal ends it
            CheckList();
        }
    }

    private static ExplorationResult ExploreReuse(Strategy strategy, int iterations, PlantedFault faults = PlantedFault.None) =>
        ControlledTest.Explore<ReuseRun>(
            strategy,
            iterations,
            () => new ReuseRun(),
            [r => r.Waiter(), r => r.Signaller(), r => r.Timer()],
            r => r.Check(),
            new ExploreOptions { Faults = faults, Name = $"real waiter list: reuse under a late timer callback (faults {faults})" });

    /// <summary>The timer's reference keeps a consumed waiter out of the pool until its late callback is done.</summary>
    [Fact]
    public void Reuse_LateTimerCallback_NeverEndsTheNextWait()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Report(ExploreReuse(make(), Budget));
        }
    }

    /// <summary>
    /// Detach that returns the waiter while its fired timer's callback holds it: the callback times the next wait out.
    /// The timer thread must stall between the wheel's claim of the first timeout and its callback's read of the armed
    /// generation while the waiter is signalled, consumed, rented again and re-armed; random walk is not asked (it
    /// rarely holds one thread back for that long).
    /// </summary>
    [Fact]
    public void Reuse_DetachIgnoringTimerReference_IsFound() =>
        Found<Xunit.Sdk.XunitException>("Detach ignoring the timer's reference", Strategies.Skip(1), s => ExploreReuse(s, SearchBudget, PlantedFault.DetachIgnoresTimerRef));

    // ---------------------------------------------------------------- FIFO

    /// <summary>Two waiters linked one after the other, then one signal and the finish: the older one gets the signal.</summary>
    internal sealed class FifoRun : Run
    {
        public Outcome Older { get; private set; }

        public Outcome Newer { get; private set; }

        public void OlderWaiter()
        {
            TWaiter waiter = List.RentAndLink(synchronous: false);
            short version = waiter.Version;
            Volatile.Write(ref Cue, 1); // linked and registered
            Older = Await(waiter, version);
        }

        public void NewerWaiter()
        {
            WindowSteps.AwaitCue(ref Cue);
            TWaiter waiter = List.RentAndLink(synchronous: false);
            short version = waiter.Version;
            Volatile.Write(ref Cue2, 1);
            Newer = Await(waiter, version);
        }

        public void Signaller()
        {
            WindowSteps.AwaitCue(ref Cue2);
            List.SignalOne();
            List.FinishAll(WaitStatus.Completed);
        }

        public void Check()
        {
            Assert.Equal((Outcome.Signaled, Outcome.Completed), (Older, Newer));
            CheckList();
        }
    }

    private static ExplorationResult ExploreFifo(Strategy strategy, int iterations, PlantedFault faults = PlantedFault.None) =>
        ControlledTest.Explore<FifoRun>(
            strategy,
            iterations,
            () => new FifoRun(),
            [r => r.OlderWaiter(), r => r.NewerWaiter(), r => r.Signaller()],
            r => r.Check(),
            new ExploreOptions { Faults = faults, Name = $"real waiter list: FIFO (faults {faults})" });

    /// <summary>SignalOne wakes the oldest linked waiter; the finish ends the other.</summary>
    [Fact]
    public void Fifo_SignalOne_WakesTheOlderWaiter()
    {
        foreach (Func<Strategy> make in Strategies)
        {
            Report(ExploreFifo(make(), Budget / 3));
        }
    }

    /// <summary>A SignalOne that wakes the newest waiter is found (on the first schedules: any order shows it).</summary>
    [Fact]
    public void Fifo_SignalOneNewestFirst_IsFound() =>
        Found<Xunit.Sdk.XunitException>("SignalOne newest first", Strategies, s => ExploreFifo(s, 100, PlantedFault.SignalOneNewestFirst));

    // ---------------------------------------------------------------- the race detector sees the links

    /// <summary>
    /// The links are guarded accesses (<see cref="TestAtomics.LoadGuarded"/>: race-checked, not scheduling points). Proof
    /// that the detector sees them: a thread that reads a linked waiter's <c>Next</c> without the lock while another
    /// links a waiter behind it is reported as a data race, whichever runs first.
    /// </summary>
    [Fact]
    public void Links_ReadOutsideTheLock_IsFoundAsDataRace()
    {
        var found = ScenarioRunner.AssertEachFinds<DataRaceException>(Strategies, strategy => ControlledTest.Explore<(TList List, TWaiter First)>(
            strategy,
            SearchBudget,
            () =>
            {
                var list = new TList(static _ => { });
                return (list, list.RentAndLink(synchronous: false));
            },
            [s => s.List.RentAndLink(synchronous: false), s => _ = s.First.Next],
            options: new ExploreOptions { Name = "real waiter list: a link read outside the lock" }));
        output.WriteLine("a link read outside the lock: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }

    // ---------------------------------------------------------------- helpers

    private void Report(ExplorationResult result) =>
        output.WriteLine($"{result.Strategy}: {result.Iterations} schedules, exhausted {result.Exhausted}, max {result.MaxSteps} steps, {result.Elapsed.TotalMilliseconds:F0} ms");

    private void Found<TCause>(string what, IEnumerable<Func<Strategy>> strategies, Func<Strategy, ExplorationResult> explore)
        where TCause : Exception
    {
        var found = ScenarioRunner.AssertEachFinds<TCause>(strategies, explore);
        output.WriteLine($"{what}: found by " + string.Join("; ", found.Select(f => $"{f.Strategy}: schedule {f.Failure.Iteration + 1}")));
    }
}
