using LockFree.Internal;
using LockFree.WorkStealing;
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>Single-threaded contract of <see cref="WorkStealingDeque{T}"/> and its <see cref="Stealer{T}"/>.</summary>
public sealed class WorkStealingDequeTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData((1 << 30) + 1)]
    public void Constructor_CapacityOutOfRange_Throws(int capacity)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new WorkStealingDeque<int>(capacity));
        Assert.Equal("initialCapacity", ex.ParamName);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(32, 32)]
    [InlineData(33, 64)]
    public void Constructor_Capacity_RoundsUpToPowerOfTwo(int requested, int expected) =>
        Assert.Equal(expected, new WorkStealingDeque<int>(requested).Capacity);

    [Fact]
    public void Constructor_Default_Is32AndEmpty()
    {
        var deque = new WorkStealingDeque<int>();
        Assert.Equal(32, deque.Capacity);
        Assert.True(deque.IsEmpty);
        Assert.Equal(0, deque.Count);
        Assert.False(deque.TryPop(out _));
        Assert.Equal(StealResult.Empty, deque.Stealer.TrySteal(out _));
    }

    [Fact]
    public void TryPop_AfterPushes_IsLifo()
    {
        var deque = new WorkStealingDeque<int>(4);
        for (int i = 0; i < 10; i++)
        {
            deque.Push(i);
        }

        Assert.Equal(10, deque.Count);
        for (int i = 9; i >= 0; i--)
        {
            Assert.True(deque.TryPop(out int item));
            Assert.Equal(i, item);
        }

        Assert.False(deque.TryPop(out _));
        Assert.True(deque.IsEmpty);
    }

    [Fact]
    public void TrySteal_AfterPushes_IsFifo()
    {
        var deque = new WorkStealingDeque<int>(4);
        for (int i = 0; i < 10; i++)
        {
            deque.Push(i);
        }

        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out int item));
            Assert.Equal(i, item);
        }

        Assert.Equal(StealResult.Empty, deque.Stealer.TrySteal(out _));
    }

    [Fact]
    public void PopAndSteal_FromBothEnds_MeetInTheMiddle()
    {
        var deque = new WorkStealingDeque<int>(2);
        for (int i = 0; i < 6; i++)
        {
            deque.Push(i);
        }

        Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out int a));
        Assert.True(deque.TryPop(out int b));
        Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out int c));
        Assert.True(deque.TryPop(out int d));
        Assert.Equal((0, 5, 1, 4), (a, b, c, d));
        Assert.Equal(2, deque.Count);
    }

    [Fact]
    public void Push_PastCapacityManyTimes_GrowsAndKeepsOrder()
    {
        var deque = new WorkStealingDeque<int>(1);
        const int N = 5000;
        for (int i = 0; i < N; i++)
        {
            deque.Push(i);
        }

        Assert.Equal(8192, deque.Capacity);
        for (int i = 0; i < N / 2; i++)
        {
            Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out int item));
            Assert.Equal(i, item);
        }

        for (int i = N - 1; i >= N / 2; i--)
        {
            Assert.True(deque.TryPop(out int item));
            Assert.Equal(i, item);
        }

        Assert.True(deque.IsEmpty);
    }

    [Fact]
    public void Push_GrowthAfterSteals_CopiesWrappedRange()
    {
        // Steals move top forward, so the live range wraps around the buffer end when growth copies it.
        var deque = new WorkStealingDeque<int>(4);
        int next = 0, expectedSteal = 0;
        for (int round = 0; round < 50; round++)
        {
            deque.Push(next++);
            deque.Push(next++);
            deque.Push(next++);
            Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out int item));
            Assert.Equal(expectedSteal++, item);
            Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out item));
            Assert.Equal(expectedSteal++, item);
        }

        for (int i = expectedSteal; i < next; i++)
        {
            Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out int item));
            Assert.Equal(i, item);
        }

        Assert.Equal(StealResult.Empty, deque.Stealer.TrySteal(out _));
    }

    [Fact]
    public void Push_SteadyStateWithinCapacity_NeverGrows()
    {
        var deque = new WorkStealingDeque<int>(8);
        for (int i = 0; i < 10_000; i++)
        {
            for (int k = 0; k < 8; k++)
            {
                deque.Push(k);
            }

            for (int k = 0; k < 4; k++)
            {
                Assert.True(deque.TryPop(out _));
                Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out _));
            }
        }

        Assert.Equal(8, deque.Capacity);
    }

    [Theory]
    [InlineData(1L << 40)]
    [InlineData(long.MaxValue - 20)]
    [InlineData(long.MaxValue - 3)]
    [InlineData(-2L)]
    public void Positions_NearAndPastLongMaxValue_StillWork(long start)
    {
        // The engine writes every comparison as a difference, so positions may wrap past long.MaxValue.
        var engine = new ChaseLevDeque<int, RealAtomics>(4, start);
        var sink = new ChaseLevDeque<int, RealAtomics>(4, start);
        for (int i = 0; i < 40; i++)
        {
            engine.Push(i);
        }

        Assert.Equal(40, engine.Count);
        Assert.Equal(StealResult.Success, engine.TrySteal(out int stolen));
        Assert.Equal(0, stolen);
        Assert.Equal(StealResult.Success, engine.TryStealBatch(ref sink, popOne: false, out int moved, out _));
        Assert.Equal(20, moved);
        Assert.True(engine.TryPop(out int popped));
        Assert.Equal(39, popped);
        for (int i = 38; i >= 21; i--)
        {
            Assert.True(engine.TryPop(out popped));
            Assert.Equal(i, popped);
        }

        Assert.False(engine.TryPop(out _));
        for (int i = 20; i >= 1; i--)
        {
            Assert.True(sink.TryPop(out popped));
            Assert.Equal(i, popped);
        }
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(10, 5)]
    [InlineData(63, 32)]
    [InlineData(64, 32)]
    [InlineData(65, 32)]
    [InlineData(1000, 32)]
    public void TryStealBatch_MovesHalfRoundedUpCappedAt32(int count, int expected)
    {
        var victim = new WorkStealingDeque<int>(2);
        var thief = new WorkStealingDeque<int>(1);
        for (int i = 0; i < count; i++)
        {
            victim.Push(i);
        }

        StealResult result = victim.Stealer.TryStealBatch(thief, out int moved);
        Assert.Equal(expected == 0 ? StealResult.Empty : StealResult.Success, result);
        Assert.Equal(expected, moved);
        Assert.Equal(expected, thief.Count);
        Assert.Equal(count - expected, victim.Count);

        // The oldest items moved, in order: the thief pops the newest of them first.
        for (int i = expected - 1; i >= 0; i--)
        {
            Assert.True(thief.TryPop(out int item));
            Assert.Equal(i, item);
        }

        if (count > expected)
        {
            Assert.Equal(StealResult.Success, victim.Stealer.TrySteal(out int next));
            Assert.Equal(expected, next);
        }
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    [InlineData(3, 1)]
    [InlineData(64, 31)]
    [InlineData(100, 31)]
    public void TryStealBatchAndPop_ReturnsOldestAndPushesTheRest(int count, int pushed)
    {
        var victim = new WorkStealingDeque<string>(4);
        var thief = new WorkStealingDeque<string>(1);
        for (int i = 0; i < count; i++)
        {
            victim.Push(i.ToString());
        }

        Assert.Equal(StealResult.Success, victim.Stealer.TryStealBatchAndPop(thief, out string? item));
        Assert.Equal("0", item);
        Assert.Equal(pushed, thief.Count);
        for (int i = pushed; i >= 1; i--)
        {
            Assert.True(thief.TryPop(out string? next));
            Assert.Equal(i.ToString(), next);
        }
    }

    [Fact]
    public void TryStealBatch_IntoNonEmptyDestination_AppendsAndGrows()
    {
        var victim = new WorkStealingDeque<int>(64);
        var thief = new WorkStealingDeque<int>(2);
        thief.Push(-1);
        thief.Push(-2);
        for (int i = 0; i < 64; i++)
        {
            victim.Push(i);
        }

        Assert.Equal(StealResult.Success, victim.Stealer.TryStealBatch(thief, out int moved));
        Assert.Equal(32, moved);
        Assert.Equal(34, thief.Count);
        Assert.True(thief.Capacity >= 34);
        Assert.Equal(StealResult.Success, thief.Stealer.TrySteal(out int oldest));
        Assert.Equal(-1, oldest);
        Assert.True(thief.TryPop(out int newest));
        Assert.Equal(31, newest);
    }

    [Fact]
    public void StealBatches_EmptyVictim_ReturnEmptyAndLeaveDestinationAlone()
    {
        var victim = new WorkStealingDeque<int>();
        var thief = new WorkStealingDeque<int>();
        thief.Push(7);
        Assert.Equal(StealResult.Empty, victim.Stealer.TryStealBatch(thief, out int moved));
        Assert.Equal(0, moved);
        Assert.Equal(StealResult.Empty, victim.Stealer.TryStealBatchAndPop(thief, out _));
        Assert.Equal(1, thief.Count);
    }

    [Fact]
    public void StealBatches_BadDestination_ThrowAndLeaveDequeUsable()
    {
        var deque = new WorkStealingDeque<int>();
        deque.Push(1);
        Assert.Equal("destination", Assert.Throws<ArgumentNullException>(() => deque.Stealer.TryStealBatch(null!, out _)).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentNullException>(() => deque.Stealer.TryStealBatchAndPop(null!, out _)).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => deque.Stealer.TryStealBatch(deque, out _)).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => deque.Stealer.TryStealBatchAndPop(deque, out _)).ParamName);
        Assert.True(deque.TryPop(out int item));
        Assert.Equal(1, item);
    }

    [Fact]
    public void Stealer_IsOneSharedInstance() =>
        Assert.Same(new WorkStealingDeque<int>() is var d ? d.Stealer : null, d.Stealer);

    [Fact]
    public void TakenItems_AreNotKeptAlive()
    {
        // Popped slots are cleared at once; stolen slots by the owner when it next runs dry.
        var deque = new WorkStealingDeque<object>(4);
        WeakReference[] refs = Fill(deque, 8);
        Assert.True(deque.TryPop(out _));
        Assert.Equal(StealResult.Success, deque.Stealer.TrySteal(out _));
        var sink = new WorkStealingDeque<object>();
        Assert.Equal(StealResult.Success, deque.Stealer.TryStealBatch(sink, out _));
        while (sink.TryPop(out _))
        {
        }

        while (deque.TryPop(out _))
        {
        }

        Assert.False(deque.TryPop(out _)); // runs dry: clears the stolen slots
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.All(refs, r => Assert.False(r.IsAlive));
        GC.KeepAlive(deque);
        GC.KeepAlive(sink);

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        static WeakReference[] Fill(WorkStealingDeque<object> d, int n)
        {
            var result = new WeakReference[n];
            for (int i = 0; i < n; i++)
            {
                var o = new object();
                result[i] = new WeakReference(o);
                d.Push(o);
            }

            return result;
        }
    }
}
