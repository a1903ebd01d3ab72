using System.Runtime.CompilerServices;
using LockFree.Tests.Unit.Internal;
using Xunit;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// The single-threaded contract every <see cref="IBoundedQueue{T}"/> keeps, run over each queue by a small
/// derived class. Everything goes through the interface; members outside it (TryPeek) go through the
/// concrete type in <see cref="PeekableBoundedQueueContractTests"/>.
/// </summary>
/// <remarks>
/// Single-threaded, every queue answers exactly: full/empty never spurious, batches take exactly
/// min(length, free) / min(length, count).
/// </remarks>
public abstract class BoundedQueueContractTests
{
    /// <summary>Creates the queue under test through its public constructor.</summary>
    protected abstract IBoundedQueue<T> Create<T>(int capacity);

    [Theory]
    [MemberData(nameof(QueueCapacityTests.OutOfRangeCapacities), MemberType = typeof(QueueCapacityTests))]
    public void Constructor_CapacityOutOfRange_ThrowsArgumentOutOfRange(int capacity)
    {
        var exception = Assert.Throws<ArgumentOutOfRangeException>(() => Create<object>(capacity));
        Assert.Equal("capacity", exception.ParamName);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(5, 8)]
    [InlineData(1000, 1024)]
    [InlineData(1024, 1024)]
    [InlineData(1025, 2048)]
    public void Capacity_RequestedCapacity_RoundsUpToPowerOfTwo(int requested, int expected)
    {
        var queue = Create<int>(requested);

        Assert.Equal(expected, queue.Capacity);
        Assert.Equal(expected, FillToFull(queue, start: 0));
    }

    [Fact]
    public void Constructor_NewQueue_IsEmptyWithCountZero()
    {
        var queue = Create<int>(8);

        Assert.True(queue.IsEmpty);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void TryDequeue_Empty_ReturnsFalseAndDefault()
    {
        var values = Create<int>(4);
        var references = Create<string>(4);

        Assert.False(values.TryDequeue(out int value));
        Assert.Equal(0, value);
        Assert.False(references.TryDequeue(out string? reference));
        Assert.Null(reference);
    }

    [Fact]
    public void TryDequeue_AfterDrain_ReturnsFalse()
    {
        var queue = Create<int>(4);
        queue.TryEnqueue(1);
        queue.TryDequeue(out _);

        Assert.False(queue.TryDequeue(out _));
        Assert.True(queue.IsEmpty);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(16)]
    public void TryEnqueue_Full_ReturnsFalseAndLeavesQueueUnchanged(int capacity)
    {
        var queue = Create<int>(capacity);
        FillToFull(queue, start: 0);

        Assert.False(queue.TryEnqueue(-1));
        Assert.False(queue.TryEnqueue(-2));
        Assert.Equal(capacity, queue.Count);
        Assert.False(queue.IsEmpty);
        Assert.Equal(Enumerable.Range(0, capacity), Drain(queue));
    }

    [Fact]
    public void TryEnqueue_FullThenOneDequeued_AcceptsExactlyOneMore()
    {
        var queue = Create<int>(4);
        FillToFull(queue, start: 0);

        Assert.True(queue.TryDequeue(out int first));
        Assert.Equal(0, first);
        Assert.True(queue.TryEnqueue(4));
        Assert.False(queue.TryEnqueue(5));
        Assert.Equal([1, 2, 3, 4], Drain(queue));
    }

    [Fact]
    public void TryEnqueue_CapacityOne_HoldsOneItemAtATime()
    {
        var queue = Create<int>(1);

        for (int i = 0; i < 1000; i++)
        {
            Assert.True(queue.TryEnqueue(i));
            Assert.False(queue.TryEnqueue(-1));
            Assert.Equal(1, queue.Count);
            Assert.True(queue.TryDequeue(out int item));
            Assert.Equal(i, item);
            Assert.False(queue.TryDequeue(out _));
            Assert.True(queue.IsEmpty);
        }
    }

    [Fact]
    public void TryEnqueue_NullReference_RoundTripsAsNull()
    {
        var queue = Create<string?>(2);

        Assert.True(queue.TryEnqueue(null));
        Assert.True(queue.TryEnqueue("x"));
        Assert.True(queue.TryDequeue(out string? first));
        Assert.True(queue.TryDequeue(out string? second));
        Assert.Null(first);
        Assert.Equal("x", second);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void TryEnqueue_ThousandsOfLaps_PreservesFifoAndCount(int requested)
    {
        var queue = Create<int>(requested);
        int capacity = queue.Capacity;
        int next = 0;
        int expected = 0;
        for (int lap = 0; lap < 5000; lap++)
        {
            // Vary the fill level so the head and tail meet the wrap point at every offset.
            int fill = 1 + (lap % capacity);
            for (int i = 0; i < fill; i++)
            {
                Assert.True(queue.TryEnqueue(next++));
            }

            Assert.Equal(fill, queue.Count);
            Assert.False(queue.IsEmpty);
            for (int i = 0; i < fill; i++)
            {
                Assert.True(queue.TryDequeue(out int item));
                Assert.Equal(expected++, item);
            }

            Assert.True(queue.IsEmpty);
            Assert.Equal(0, queue.Count);
        }
    }

    [Fact]
    public void Count_AfterEachOperation_TracksItemsHeld()
    {
        var queue = Create<int>(8);
        int held = 0;
        var random = new Random(12345);
        for (int step = 0; step < 2000; step++)
        {
            if (random.Next(2) == 0)
            {
                held += queue.TryEnqueue(step) ? 1 : 0;
            }
            else
            {
                held -= queue.TryDequeue(out _) ? 1 : 0;
            }

            Assert.Equal(held, queue.Count);
            Assert.Equal(held == 0, queue.IsEmpty);
        }
    }

    [Fact]
    public void TryEnqueueMany_EmptySpan_ReturnsZeroOnEmptyAndFullQueues()
    {
        var queue = Create<int>(4);

        Assert.Equal(0, queue.TryEnqueueMany(ReadOnlySpan<int>.Empty));
        Assert.True(queue.IsEmpty);
        FillToFull(queue, start: 0);
        Assert.Equal(0, queue.TryEnqueueMany(ReadOnlySpan<int>.Empty));
        Assert.Equal(4, queue.Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public void TryEnqueueMany_ExactlyFree_TakesAllAndFills(int capacity)
    {
        var queue = Create<int>(capacity);
        int[] items = Enumerable.Range(0, capacity).ToArray();

        Assert.Equal(capacity, queue.TryEnqueueMany(items));
        Assert.False(queue.TryEnqueue(-1));
        Assert.Equal(items, Drain(queue));
    }

    [Fact]
    public void TryEnqueueMany_MoreThanFree_TakesPrefixThatFits()
    {
        var queue = Create<int>(8);
        queue.TryEnqueue(100);
        queue.TryEnqueue(101);
        int[] items = Enumerable.Range(0, 10).ToArray();

        Assert.Equal(6, queue.TryEnqueueMany(items));
        Assert.Equal([100, 101, 0, 1, 2, 3, 4, 5], Drain(queue));
    }

    [Fact]
    public void TryEnqueueMany_LongerThanCapacityOnEmpty_TakesCapacity()
    {
        var queue = Create<int>(4);

        Assert.Equal(4, queue.TryEnqueueMany(Enumerable.Range(0, 100).ToArray()));
        Assert.Equal([0, 1, 2, 3], Drain(queue));
    }

    [Fact]
    public void TryEnqueueMany_Full_ReturnsZero()
    {
        var queue = Create<int>(4);
        FillToFull(queue, start: 0);

        Assert.Equal(0, queue.TryEnqueueMany([7, 8]));
        Assert.Equal([0, 1, 2, 3], Drain(queue));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(13)]
    public void TryEnqueueMany_AcrossWrapPoint_PreservesOrder(int offset)
    {
        var queue = Create<int>(8);
        Advance(queue, offset);
        int[] items = Enumerable.Range(0, 8).ToArray();

        Assert.Equal(8, queue.TryEnqueueMany(items));
        Assert.Equal(8, queue.Count);
        Assert.Equal(items, Drain(queue));
    }

    [Fact]
    public void TryDequeueMany_EmptySpan_ReturnsZeroAndRemovesNothing()
    {
        var queue = Create<int>(4);
        queue.TryEnqueue(1);

        Assert.Equal(0, queue.TryDequeueMany(Span<int>.Empty));
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void TryDequeueMany_Empty_ReturnsZeroAndLeavesDestinationUntouched()
    {
        var queue = Create<int>(4);
        int[] destination = [-1, -1, -1];

        Assert.Equal(0, queue.TryDequeueMany(destination));
        Assert.Equal([-1, -1, -1], destination);
    }

    [Fact]
    public void TryDequeueMany_LargerDestination_TakesAllAndLeavesTailUntouched()
    {
        var queue = Create<int>(8);
        queue.TryEnqueueMany([1, 2, 3]);
        int[] destination = Enumerable.Repeat(-1, 6).ToArray();

        Assert.Equal(3, queue.TryDequeueMany(destination));
        Assert.Equal([1, 2, 3, -1, -1, -1], destination);
        Assert.True(queue.IsEmpty);
    }

    [Fact]
    public void TryDequeueMany_SmallerDestination_TakesPrefixAndKeepsRestInOrder()
    {
        var queue = Create<int>(8);
        queue.TryEnqueueMany([1, 2, 3, 4, 5]);
        int[] destination = new int[2];

        Assert.Equal(2, queue.TryDequeueMany(destination));
        Assert.Equal([1, 2], destination);
        Assert.Equal(3, queue.Count);
        Assert.Equal([3, 4, 5], Drain(queue));
    }

    [Fact]
    public void TryDequeueMany_ExactlyCount_EmptiesQueue()
    {
        var queue = Create<int>(4);
        FillToFull(queue, start: 10);
        int[] destination = new int[4];

        Assert.Equal(4, queue.TryDequeueMany(destination));
        Assert.Equal([10, 11, 12, 13], destination);
        Assert.True(queue.IsEmpty);
        Assert.False(queue.TryDequeue(out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(9)]
    public void TryDequeueMany_AcrossWrapPoint_PreservesOrder(int offset)
    {
        var queue = Create<int>(8);
        Advance(queue, offset);
        FillToFull(queue, start: 0);
        int[] destination = new int[8];

        Assert.Equal(8, queue.TryDequeueMany(destination));
        Assert.Equal(Enumerable.Range(0, 8), destination);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 3)]
    [InlineData(4, 4)]
    [InlineData(8, 5)]
    public void TryEnqueueMany_ThousandsOfLapsInBatches_PreservesFifo(int capacity, int batch)
    {
        var queue = Create<int>(capacity);
        int[] source = new int[batch];
        int[] destination = new int[batch];
        int next = 0;
        int expected = 0;
        for (int lap = 0; lap < 3000; lap++)
        {
            for (int i = 0; i < batch; i++)
            {
                source[i] = next + i;
            }

            int added = queue.TryEnqueueMany(source);
            Assert.Equal(Math.Min(batch, capacity), added);
            next += added;
            int taken = queue.TryDequeueMany(destination);
            Assert.Equal(added, taken);
            for (int i = 0; i < taken; i++)
            {
                Assert.Equal(expected++, destination[i]);
            }
        }
    }

    [Fact]
    public void Batch_InterleavedWithSingleOps_PreservesFifo()
    {
        var queue = Create<int>(8);
        var model = new Queue<int>();
        var random = new Random(4242);
        int next = 0;
        int[] buffer = new int[12];
        for (int step = 0; step < 5000; step++)
        {
            switch (random.Next(4))
            {
                case 0:
                    bool added = queue.TryEnqueue(next);
                    Assert.Equal(model.Count < 8, added);
                    if (added)
                    {
                        model.Enqueue(next++);
                    }

                    break;
                case 1:
                    Assert.Equal(model.TryDequeue(out int expected), queue.TryDequeue(out int actual));
                    Assert.Equal(expected, actual);
                    break;
                case 2:
                    int length = random.Next(buffer.Length + 1);
                    for (int i = 0; i < length; i++)
                    {
                        buffer[i] = next + i;
                    }

                    int count = queue.TryEnqueueMany(buffer.AsSpan(0, length));
                    Assert.Equal(Math.Min(length, 8 - model.Count), count);
                    for (int i = 0; i < count; i++)
                    {
                        model.Enqueue(next++);
                    }

                    break;
                default:
                    int wanted = random.Next(buffer.Length + 1);
                    int taken = queue.TryDequeueMany(buffer.AsSpan(0, wanted));
                    Assert.Equal(Math.Min(wanted, model.Count), taken);
                    for (int i = 0; i < taken; i++)
                    {
                        Assert.Equal(model.Dequeue(), buffer[i]);
                    }

                    break;
            }

            Assert.Equal(model.Count, queue.Count);
        }
    }

    [Fact]
    public void TryDequeue_ReferenceItem_ReleasesSlotForGc()
    {
        var queue = Create<object>(4);
        queue.TryEnqueue(new object()); // shift the ring so the cleared slot is not slot 0
        queue.TryDequeue(out _);

        WeakReference reference = EnqueueThenDequeue(queue);

        AssertCollected(reference);
        GC.KeepAlive(queue);
    }

    [Fact]
    public void TryDequeueMany_ReferenceItems_ReleaseSlotsForGc()
    {
        var queue = Create<object>(4);
        Advance(queue, 3); // the batch wraps around the end of the ring

        WeakReference[] references = EnqueueManyThenDequeueMany(queue, 4);

        foreach (WeakReference reference in references)
        {
            AssertCollected(reference);
        }

        GC.KeepAlive(queue);
    }

    [Fact]
    public void TryEnqueue_RejectedWhenFull_DoesNotKeepItemAlive()
    {
        var queue = Create<object>(1);
        queue.TryEnqueue(new object());

        WeakReference reference = OfferToFullQueue(queue);

        AssertCollected(reference);
        GC.KeepAlive(queue);
    }

    /// <summary>Enqueues until full, items counting up from <paramref name="start"/>; returns how many fit.</summary>
    protected static int FillToFull(IBoundedQueue<int> queue, int start)
    {
        int count = 0;
        while (queue.TryEnqueue(start + count))
        {
            count++;
        }

        return count;
    }

    /// <summary>Dequeues every item, in order.</summary>
    protected static List<int> Drain(IBoundedQueue<int> queue)
    {
        var items = new List<int>();
        while (queue.TryDequeue(out int item))
        {
            items.Add(item);
        }

        return items;
    }

    /// <summary>Moves head and tail forward by <paramref name="positions"/> on an empty queue.</summary>
    protected static void Advance<T>(IBoundedQueue<T> queue, int positions)
    {
        for (int i = 0; i < positions; i++)
        {
            Assert.True(queue.TryEnqueue(default!));
            Assert.True(queue.TryDequeue(out _));
        }
    }

    protected static void AssertCollected(WeakReference reference)
    {
        for (int attempt = 0; attempt < 3 && reference.IsAlive; attempt++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
        }

        Assert.False(reference.IsAlive, "The queue still references an item it no longer holds.");
    }

    // The helpers below allocate in their own frame (NoInlining), so no local of the test method keeps the
    // item alive and only the queue could.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference EnqueueThenDequeue(IBoundedQueue<object> queue)
    {
        var item = new object();
        Assert.True(queue.TryEnqueue(item));
        Assert.True(queue.TryDequeue(out object? taken));
        Assert.Same(item, taken);
        return new WeakReference(item);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference[] EnqueueManyThenDequeueMany(IBoundedQueue<object> queue, int count)
    {
        object[] items = new object[count];
        for (int i = 0; i < count; i++)
        {
            items[i] = new object();
        }

        Assert.Equal(count, queue.TryEnqueueMany(items));
        object[] destination = new object[count];
        Assert.Equal(count, queue.TryDequeueMany(destination));
        Assert.Equal(items, destination);
        return items.Select(item => new WeakReference(item)).ToArray();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference OfferToFullQueue(IBoundedQueue<object> queue)
    {
        var item = new object();
        Assert.False(queue.TryEnqueue(item));
        Assert.Equal(0, queue.TryEnqueueMany([item]));
        return new WeakReference(item);
    }
}

/// <summary>The contract plus TryPeek, for the queues with a single consumer.</summary>
public abstract class PeekableBoundedQueueContractTests : BoundedQueueContractTests
{
    /// <summary>Calls the concrete type's TryPeek.</summary>
    protected abstract bool TryPeek<T>(IBoundedQueue<T> queue, out T? item);

    [Fact]
    public void TryPeek_Empty_ReturnsFalseAndDefault()
    {
        var queue = Create<string>(4);

        Assert.False(TryPeek(queue, out string? item));
        Assert.Null(item);
    }

    [Fact]
    public void TryPeek_NonEmpty_ReturnsHeadWithoutRemovingIt()
    {
        var queue = Create<int>(4);
        queue.TryEnqueueMany([1, 2]);

        Assert.True(TryPeek(queue, out int first));
        Assert.True(TryPeek(queue, out int again));
        Assert.Equal(1, first);
        Assert.Equal(1, again);
        Assert.Equal(2, queue.Count);
        Assert.True(queue.TryDequeue(out int dequeued));
        Assert.Equal(1, dequeued);
        Assert.True(TryPeek(queue, out int second));
        Assert.Equal(2, second);
    }

    [Fact]
    public void TryPeek_AfterDrain_ReturnsFalse()
    {
        var queue = Create<int>(2);
        queue.TryEnqueue(1);
        queue.TryDequeue(out _);

        Assert.False(TryPeek(queue, out _));
    }

    [Fact]
    public void TryPeek_ThousandsOfLaps_AlwaysSeesHead()
    {
        var queue = Create<int>(3);
        for (int i = 0; i < 4000; i++)
        {
            Assert.True(queue.TryEnqueue(i));
            Assert.True(TryPeek(queue, out int head));
            Assert.Equal(i, head);
            Assert.True(queue.TryDequeue(out _));
        }
    }

    [Fact]
    public void TryPeek_FullQueue_ReturnsHeadAndStaysFull()
    {
        var queue = Create<int>(4);
        FillToFull(queue, start: 20);

        Assert.True(TryPeek(queue, out int head));
        Assert.Equal(20, head);
        Assert.False(queue.TryEnqueue(99));
    }
}

public sealed class SpscQueueTests : PeekableBoundedQueueContractTests
{
    protected override IBoundedQueue<T> Create<T>(int capacity) => new SpscQueue<T>(capacity);

    protected override bool TryPeek<T>(IBoundedQueue<T> queue, out T? item) where T : default =>
        ((SpscQueue<T>)queue).TryPeek(out item);
}

public sealed class MpscQueueTests : PeekableBoundedQueueContractTests
{
    protected override IBoundedQueue<T> Create<T>(int capacity) => new MpscQueue<T>(capacity);

    protected override bool TryPeek<T>(IBoundedQueue<T> queue, out T? item) where T : default =>
        ((MpscQueue<T>)queue).TryPeek(out item);
}

public sealed class SpmcQueueTests : BoundedQueueContractTests
{
    protected override IBoundedQueue<T> Create<T>(int capacity) => new SpmcQueue<T>(capacity);
}

public sealed class MpmcQueueTests : BoundedQueueContractTests
{
    protected override IBoundedQueue<T> Create<T>(int capacity) => new MpmcQueue<T>(capacity);
}
