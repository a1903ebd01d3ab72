using Xunit;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>
/// The TSO model on ordinary (unpinned) objects (<see cref="ExploreOptions.HoldObjectsStill"/>, session 20): it reorders a
/// store with a later load in a plain class, keeps a thread's stores in order when one of them bypasses the buffer, reads a
/// thread's own buffered store through <see cref="TestAtomics.LoadOwn{T}"/>, drains when every thread spins, and fails a
/// schedule during which a collection could have moved the objects.
/// </summary>
[Collection(StillObjectsCollection.Name)]
public sealed class StoreBufferModelTests
{
    private static readonly ExploreOptions Tso = new ExploreOptions { Name = "TSO on ordinary objects" }.WithTso();

    private sealed class Dekker
    {
        public long Flag1;
        public long Flag2;
        public int Inside;
        public int MaxInside;

        public void Enter(ref long mine, ref long other, bool fence)
        {
            TestAtomics.StoreRelease(ref mine, 1);
            if (fence)
            {
                TestAtomics.FullFence();
            }

            if (TestAtomics.LoadAcquire(ref other) == 0)
            {
                Inside++;
                MaxInside = Math.Max(MaxInside, Inside);
                _ = TestAtomics.LoadAcquire(ref other); // a scheduling point inside the critical section
                Inside--;
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dekker_InAPlainObject_BreaksWithoutItsFenceOnly(bool fence)
    {
        void Explore() => ControlledTest.Explore(
            Strategy.RandomWalk(20),
            2000,
            () => new Dekker(),
            [d => d.Enter(ref d.Flag1, ref d.Flag2, fence), d => d.Enter(ref d.Flag2, ref d.Flag1, fence)],
            d => Assert.True(d.MaxInside <= 1, "both threads entered"),
            Tso);

        if (fence)
        {
            Explore();
        }
        else
        {
            var failure = Assert.Throws<ScheduleFailureException>(Explore);
            Assert.Contains("both threads entered", failure.Message, StringComparison.Ordinal);
        }
    }

    private sealed class Publication
    {
        public long Data;
        public object? Ready;
        public long Seen = -1;
        public long Spare;
    }

    [Fact]
    public void DirectStore_AfterBufferedOnes_NeverOvertakesThem()
    {
        // The data store waits in the buffer; the reference store goes to memory directly (references are not buffered),
        // so it first drains the buffer: a reader that sees the reference sees the data, as on x86 (stores in order).
        ControlledTest.Explore(
            Strategy.RandomWalk(21),
            2000,
            () => new Publication(),
            [
                p =>
                {
                    TestAtomics.StorePlain(ref p.Data, 7);
                    TestAtomics.StoreReleaseReference(ref p.Ready, new object());
                    _ = TestAtomics.LoadAcquire(ref p.Spare); // a scheduling point before the thread ends (its end drains the buffer)
                },
                p =>
                {
                    if (TestAtomics.LoadAcquireReference(ref p.Ready) is not null)
                    {
                        p.Seen = TestAtomics.LoadAcquire(ref p.Data);
                    }
                },
            ],
            p => Assert.True(p.Seen is -1 or 7, $"the reference was seen before the data ({p.Seen})"),
            Tso);
    }

    [Fact]
    public void LoadOwn_ReadsTheThreadsOwnBufferedStore_AndADirectReadDoesNot()
    {
        long own = -1, direct = -1;
        ControlledTest.Explore(
            Strategy.Pct(22, depth: 2),
            1,
            () => new Publication(),
            [
                p =>
                {
                    TestAtomics.StoreRelease(ref p.Data, 5);
                    own = TestAtomics.LoadOwn(ref p.Data);
                    direct = Volatile.Read(ref p.Data); // what a read that bypasses the seam sees: memory, the store still buffered
                },
            ],
            options: Tso with { StoreBufferDrainOdds = 1_000_000 });
        Assert.Equal(5, own);
        Assert.Equal(0, direct);
    }

    private sealed class Handshake
    {
        public long A;
        public long B;
    }

    [Fact]
    public void EveryThreadSpinning_DrainsTheBuffers_SoBoundedPreemptionEnds()
    {
        // Each thread stores its flag and spins until it sees the other's. Bounded-preemption search takes the first
        // choice at every drain decision (keep the store buffered): without the drain when every enabled thread spins,
        // both would spin on stores that were made, to the step bound.
        static void Run(ref long mine, ref long other)
        {
            TestAtomics.StoreRelease(ref mine, 1);
            var spinner = default(SpinWait);
            while (TestAtomics.LoadAcquire(ref other) == 0)
            {
                TestAtomics.SpinOnce(ref spinner);
            }
        }

        ExplorationResult result = ControlledTest.Explore(
            Strategy.BoundedPreemption(2),
            200,
            () => new Handshake(),
            [h => Run(ref h.A, ref h.B), h => Run(ref h.B, ref h.A)],
            options: Tso with { MaxSteps = 2000 });
        Assert.True(result.Iterations > 0);
    }

    [Fact]
    public void HoldObjectsStill_ACollectionVoidsTheSchedule_AndTooManyFailTheExploration()
    {
        // A schedule during which a collection ran is no evidence (its buffered stores were dropped): its failing check is
        // discarded, not reported.
        ControlledTest.Explore(
            Strategy.RandomWalk(23),
            1,
            () => new Handshake(),
            [h => { TestAtomics.StoreRelease(ref h.A, 1); GC.Collect(); }],
            h => Assert.Fail("a voided schedule's verdict was used"),
            Tso);
        Assert.NotEqual(System.Runtime.GCLatencyMode.NoGCRegion, System.Runtime.GCSettings.LatencyMode); // the region ended

        // More than a few voided schedules fail the exploration: a scenario that allocates too much is told so.
        var error = Assert.Throws<InvalidOperationException>(() => ControlledTest.Explore(
            Strategy.RandomWalk(24),
            10,
            () => new Handshake(),
            [h => { TestAtomics.StoreRelease(ref h.A, 1); GC.Collect(); }],
            options: Tso));
        Assert.Contains("a garbage collection ran during 3 of 3 schedules", error.Message, StringComparison.Ordinal);

        // The next exploration starts a region of its own.
        ControlledTest.Explore(Strategy.RandomWalk(25), 5, () => new Handshake(), [h => TestAtomics.StoreRelease(ref h.A, 1)], options: Tso);
    }
}
