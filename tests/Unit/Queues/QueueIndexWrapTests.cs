using System.Reflection;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// The queues' positions are 64-bit and never wrap, but every slot index, batch length and count is an int computed
/// from them: these tests start a queue's positions just below 2^31, 2^32 and 2^53 (by reflection, as if that many
/// items had passed) and run single and batch operations across those points against a FIFO model, so an int
/// truncation of a position (a cast before the mask, a difference taken in int) would show.
/// </summary>
public sealed class QueueIndexWrapTests
{
    private const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;

    public static TheoryData<string, long, int> Cases
    {
        get
        {
            var data = new TheoryData<string, long, int>();
            foreach (string name in new[] { "Spsc", "Mpsc", "Spmc", "Mpmc" })
            {
                foreach (long start in new[] { int.MaxValue - 5L, uint.MaxValue - 5L, (1L << 53) - 5 })
                {
                    foreach (int capacity in new[] { 1, 4, 8 })
                    {
                        data.Add(name, start, capacity);
                    }
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Operations_AcrossPositionsNear32And53Bits_MatchTheFifoModel(string name, long start, int capacity)
    {
        IBoundedQueue<int> queue = Create(name, capacity);
        StartAt(queue, start);
        Assert.Equal(start, ((IQueuePositions)queue).EnqueuedPositions);
        Assert.Equal(start, ((IQueuePositions)queue).DequeuedPositions);
        Assert.True(queue.IsEmpty);
        Assert.Equal(0, queue.Count);

        var model = new Queue<int>();
        var random = new Random(capacity * 31 + (int)(start & 0xFFFF));
        int next = 0;
        int[] buffer = new int[2 * capacity + 1];
        for (int step = 0; step < 400; step++)
        {
            switch (random.Next(5))
            {
                case 0:
                    bool added = queue.TryEnqueue(next);
                    Assert.Equal(model.Count < capacity, added);
                    if (added)
                    {
                        model.Enqueue(next++);
                    }

                    break;
                case 1:
                    bool taken = queue.TryDequeue(out int item);
                    Assert.Equal(model.Count > 0, taken);
                    if (taken)
                    {
                        Assert.Equal(model.Dequeue(), item);
                    }

                    break;
                case 2:
                    int length = random.Next(buffer.Length + 1);
                    for (int i = 0; i < length; i++)
                    {
                        buffer[i] = next + i;
                    }

                    int accepted = queue.TryEnqueueMany(buffer.AsSpan(0, length));
                    Assert.Equal(Math.Min(length, capacity - model.Count), accepted);
                    for (int i = 0; i < accepted; i++)
                    {
                        model.Enqueue(next++);
                    }

                    break;
                case 3:
                    int wanted = random.Next(buffer.Length + 1);
                    int got = queue.TryDequeueMany(buffer.AsSpan(0, wanted));
                    Assert.Equal(Math.Min(wanted, model.Count), got);
                    for (int i = 0; i < got; i++)
                    {
                        Assert.Equal(model.Dequeue(), buffer[i]);
                    }

                    break;
                default:
                    if (Peek(queue, out bool peeked, out int head))
                    {
                        Assert.Equal(model.Count > 0, peeked);
                        if (peeked)
                        {
                            Assert.Equal(model.Peek(), head);
                        }
                    }

                    break;
            }

            Assert.Equal(model.Count, queue.Count);
            Assert.Equal(model.Count == 0, queue.IsEmpty);
        }

        Assert.True(next > 5 + capacity, "the run crossed the point with items in the queue"); // start is 5 below it
        Assert.Equal(start + next, ((IQueuePositions)queue).EnqueuedPositions);
    }

    private static bool Peek(IBoundedQueue<int> queue, out bool peeked, out int head)
    {
        switch (queue)
        {
            case SpscQueue<int> spsc:
                peeked = spsc.TryPeek(out head);
                return true;
            case MpscQueue<int> mpsc:
                peeked = mpsc.TryPeek(out head);
                return true;
            default:
                peeked = false;
                head = 0;
                return false;
        }
    }

    private static IBoundedQueue<int> Create(string name, int capacity) => name switch
    {
        "Spsc" => new SpscQueue<int>(capacity),
        "Mpsc" => new MpscQueue<int>(capacity),
        "Spmc" => new SpmcQueue<int>(capacity),
        "Mpmc" => new MpmcQueue<int>(capacity),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Unknown queue."),
    };

    /// <summary>
    /// Moves an empty, unused queue's positions to <paramref name="position"/>, as if that many items had passed: both
    /// indices and the cached copies a single side keeps; for the sequenced rings also every slot's sequence (2p: empty,
    /// ready for the producer of position p). The SPSC ring's slot sequences stay stale (0 is at most any position).
    /// </summary>
    private static void StartAt(IBoundedQueue<int> queue, long position)
    {
        FieldInfo ringField = queue.GetType().GetField("_ring", Private)!;
        object ring = ringField.GetValue(queue)!; // a boxed copy of the engine struct, written back below
        Type type = ring.GetType();
        bool spsc = type.Name.StartsWith("SpscRing", StringComparison.Ordinal);
        bool singleProducer = queue is SpscQueue<int> or SpmcQueue<int>;
        bool singleConsumer = queue is SpscQueue<int> or MpscQueue<int>;
        SetIndex(ring, spsc ? "_producer" : "_producers", position, setCached: spsc || singleConsumer); // Cached: a recent head
        SetIndex(ring, spsc ? "_consumer" : "_consumers", position, setCached: spsc || singleProducer); // Cached: a recent tail (SPSC: the known-published bound)
        if (!spsc)
        {
            var slots = (Array)type.GetField("_slots", Private)!.GetValue(ring)!;
            int capacity = queue.Capacity;
            int padding = (slots.Length - capacity) / 2;
            long mask = capacity - 1;
            for (long p = position; p < position + capacity; p++)
            {
                int index = (int)(p & mask) + padding;
                object slot = slots.GetValue(index)!;
                slot.GetType().GetField("Sequence")!.SetValue(slot, 2 * p);
                slots.SetValue(slot, index);
            }
        }

        ringField.SetValue(queue, ring);
    }

    private static void SetIndex(object ring, string field, long position, bool setCached)
    {
        FieldInfo pairField = ring.GetType().GetField(field, Private)!;
        object pair = pairField.GetValue(ring)!;
        pair.GetType().GetField("Index")!.SetValue(pair, position);
        if (setCached)
        {
            pair.GetType().GetField("Cached")!.SetValue(pair, position);
        }

        pairField.SetValue(ring, pair);
    }
}
