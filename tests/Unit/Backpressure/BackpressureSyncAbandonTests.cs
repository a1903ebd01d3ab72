using System.Reflection;
using LockFree.Backpressure;
using LockFree.Internal;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A blocking write (or read) whose recheck succeeds after a signal already ended its wait abandons a synchronous waiter
/// that the signal won: it goes back to the pool once the signaller has set its event (Waiter.AbandonEnded), so a steady
/// state of such races creates no waiters. Before (session 13), it was left to the GC and every race created one. The race
/// is made on one thread, deterministically, with <see cref="WaiterList{TAtomics}.BeforeRegister"/>: between its link and
/// its registration the waiter's own thread frees room (or publishes an item) and sends the signal a read (or write) on
/// another thread would send once the waiter counts (SignalOne pops the linked waiter, ends it, sets its event); the
/// recheck after the registration then succeeds and abandons the ended wait. The waiters created are counted by
/// <see cref="PoolGrowth"/>, process-wide: so the class runs alone, and passes when some run of races created none (a
/// waiter left to the GC shows in every run: one per race). And the abandon's wait for the set keeps an interrupt: posted
/// again, never thrown.
/// </summary>
[Collection(ProcessWideAllocationCollection.Name)]
public sealed class BackpressureSyncAbandonTests(ITestOutputHelper output)
{
    private const int Races = 200;

    private const int MaxRuns = 5;

    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    [Fact]
    public void Write_RecheckSucceedsAfterAReadSignalledIt_CreatesNoWaiters()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1 });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        WaiterList writers = List(buffer, "_writers");
        int races = 0;
        writers.BeforeRegister = () =>
        {
            races++;
            Assert.True(buffer.TryRead(out _)); // room, but the waiter does not count yet: the read asks nobody
            Assert.True(writers.SignalOne()); // the read's signal: pops the linked waiter, ends it, sets its event
        };

        AssertNoWaitersCreated(
            () =>
            {
                Assert.Equal(WriteResult.Accepted, buffer.Write(1, Generous)); // full: parks, rechecks after the signal, writes
                Assert.Equal(1, buffer.Count);
            },
            () => races,
            writers,
            "blocking write");
    }

    [Fact]
    public void TryRead_RecheckSucceedsAfterAWriteSignalledIt_CreatesNoWaiters()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1 });
        WaiterList readers = List(buffer, "_readers");
        int races = 0;
        readers.BeforeRegister = () =>
        {
            races++;
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(races)); // an item, but the waiter does not count yet
            Assert.True(readers.SignalOne()); // the write's signal
        };

        AssertNoWaitersCreated(
            () =>
            {
                Assert.True(buffer.TryRead(out int item, Generous)); // empty: parks, rechecks after the signal, reads
                Assert.Equal(races, item);
            },
            () => races,
            readers,
            "blocking read");
    }

    /// <summary>
    /// The abandon waits for the ender's event set; a <see cref="Thread.Interrupt"/> of the writer meanwhile is neither
    /// thrown from the write (whose item was written) nor lost: it reaches the writer's next blocking wait. The ender is a
    /// cancellation's finish on another thread (CAS, unlink, set), held between its unlink and its set by
    /// <see cref="WaiterList{TAtomics}.Unlinked"/> until the writer blocks in the abandon's wait with the interrupt pending.
    /// </summary>
    [Fact]
    public void Write_AbandonWaitsForTheEndersSet_InterruptIsPostedAgainNotThrown()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1 });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        WaiterList writers = List(buffer, "_writers");
        using var enderHeld = new ManualResetEventSlim();
        using var releaseEnder = new ManualResetEventSlim();
        Thread? ender = null;
        bool hookDone = false;
        writers.Unlinked = () =>
        {
            if (Thread.CurrentThread == ender)
            {
                enderHeld.Set();
                releaseEnder.Wait(Generous); // between the cancellation's unlink and its event set
            }
        };
        writers.BeforeRegister = () =>
        {
            writers.BeforeRegister = null;
            Assert.True(buffer.TryRead(out _)); // room for the recheck
            Assert.True(writers.TryPeek(out Waiter? waiter, out int generation));
            ender = new Thread(() => waiter.TryFinish(WaitStatus.Canceled, generation)) { IsBackground = true };
            ender.Start();
            Assert.True(enderHeld.Wait(Generous), "the ender never unlinked the wait");
            Thread.CurrentThread.Interrupt(); // pending: the abandon's wait for the set receives it
            Volatile.Write(ref hookDone, true);
        };

        WriteResult result = default;
        bool interruptReachedNextWait = false;
        Exception? failure = null;
        var writer = new Thread(() =>
        {
            try
            {
                result = buffer.Write(1, Generous);
                try
                {
                    Thread.Sleep(Generous); // the next blocking wait: the interrupt posted again ends it at once
                }
                catch (ThreadInterruptedException)
                {
                    interruptReachedNextWait = true;
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }) { IsBackground = true };
        writer.Start();
        Assert.True(enderHeld.Wait(Generous), "the writer never parked");
        // Past the hook, the writer's only blocking wait before the set is the abandon's (it cannot leave it before the set).
        bool waited = SpinWait.SpinUntil(() => !writer.IsAlive || (Volatile.Read(ref hookDone) && (writer.ThreadState & ThreadState.WaitSleepJoin) != 0), Generous);
        Assert.True(writer.IsAlive, $"the writer left before the ender's set: {failure?.GetType().Name ?? result.Outcome.ToString()}");
        Assert.True(waited, "the writer never waited for the set");
        releaseEnder.Set();
        Assert.True(writer.Join(Generous), "the writer never finished");
        Assert.True(ender!.Join(Generous), "the ender never finished");
        Assert.Null(failure);
        Assert.Equal(WriteResult.Accepted, result);
        Assert.True(interruptReachedNextWait, "the interrupt was lost");
        Assert.Equal(0, writers.Count);
        Assert.Equal(1, buffer.Count);
    }

    /// <summary>
    /// Runs one race to fill the pool, then runs of <see cref="Races"/> races until one creates no waiter (at most
    /// <see cref="MaxRuns"/>); each run must have raced every time and left nothing linked.
    /// </summary>
    private void AssertNoWaitersCreated(Action race, Func<int> racesSeen, WaiterList list, string label)
    {
        race(); // a fresh buffer's pool is empty: its first wait creates the waiter
        Assert.Equal(1, racesSeen());
        var growths = new List<long>();
        for (int run = 0; run < MaxRuns; run++)
        {
            int racesBefore = racesSeen();
            long before = PoolGrowth.Created;
            for (int i = 0; i < Races; i++)
            {
                race();
            }

            long growth = PoolGrowth.Created - before;
            growths.Add(growth);
            output.WriteLine($"{label}: run {run + 1}, {racesSeen() - racesBefore} races, {growth} objects created by pools");
            Assert.Equal(Races, racesSeen() - racesBefore);
            Assert.Equal(0, list.Count);
            if (growth == 0)
            {
                return;
            }
        }

        Assert.Fail($"{label}: every run of {Races} races created objects ({string.Join(", ", growths)}): the abandoned synchronous waiters are not going back to the pool");
    }

    private static WaiterList List(BackpressureBuffer<int> buffer, string field) =>
        (WaiterList)typeof(BackpressureBuffer<int>).GetField(field, BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(buffer)!;
}
