using Xunit;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>
/// Histories recorded on real threads (real cores, real memory model) and checked for linearizability.
/// Threads meet at a barrier every round, which creates the quiescent points the checker splits at; within
/// a round they race freely on a tiny queue so full/empty/wrap races happen often.
/// </summary>
public sealed class RealThreadLinearizabilityTests
{
    private static int Rounds => 400 * Math.Max(1, int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) ? s : 1);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Spsc_RealThreads_Linearizable(int capacity) =>
        Run(new SpscQueue<int>(capacity), producers: 1, consumers: 1, peek: true, exactBatches: false, seed: capacity);

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Mpsc_RealThreads_Linearizable(int capacity) =>
        Run(new MpscQueue<int>(capacity), producers: 2, consumers: 1, peek: true, exactBatches: false, seed: 10 + capacity);

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Spmc_RealThreads_Linearizable(int capacity) =>
        Run(new SpmcQueue<int>(capacity), producers: 1, consumers: 2, peek: false, exactBatches: false, seed: 20 + capacity);

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Mpmc_RealThreads_Linearizable(int capacity) =>
        Run(new MpmcQueue<int>(capacity), producers: 2, consumers: 2, peek: false, exactBatches: false, seed: 30 + capacity);

    [Fact]
    public void PlantedSpuriousEmpty_RealThreads_IsFound()
    {
        // Proof of power: a queue that sometimes answers "empty" while it holds items must be rejected.
        var error = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() =>
            Run(new SpuriousEmptyQueue(new MpmcQueue<int>(4)), producers: 2, consumers: 2, peek: false, exactBatches: false, seed: 99));
        Assert.Contains("Not linearizable", error.Message);
    }

    private static void Run(IBoundedQueue<int> queue, int producers, int consumers, bool peek, bool exactBatches, int seed)
    {
        int threads = producers + consumers;
        var recorder = new HistoryRecorder<QueueInput, QueueOutput>(threads);
        RealThreadRounds.Run(threads, Rounds, seed, thread =>
        {
            int next = (thread + 1) * 1_000_000;
            return random =>
            {
                int ops = random.Next(1, 4);
                for (int i = 0; i < ops; i++)
                {
                    if (thread < producers)
                    {
                        Produce(queue, recorder, thread, random, ref next);
                    }
                    else
                    {
                        Consume(queue, recorder, thread, random, peek);
                    }
                }
            };
        });

        LinearizabilityResult result = LinearizabilityChecker.CheckInSegments(new QueueSpec(queue.Capacity, exactBatches), recorder.History());
        Assert.True(result.IsLinearizable, result.Explanation);
    }

    private static void Produce(IBoundedQueue<int> queue, HistoryRecorder<QueueInput, QueueOutput> recorder, int thread, Random random, ref int next)
    {
        if (random.Next(3) == 0)
        {
            int[] values = Enumerable.Range(next, random.Next(1, 4)).ToArray();
            QueueOutput took = recorder.Record(thread, QueueInput.EnqueueMany(values), input => QueueOutput.Took(queue.TryEnqueueMany(input.Values.AsSpan())));
            next += took.Count;
        }
        else
        {
            int value = next;
            QueueOutput ok = recorder.Record(thread, QueueInput.Enqueue(value), input => queue.TryEnqueue(input.Value) ? QueueOutput.Succeeded : QueueOutput.Failed);
            next += ok.Ok ? 1 : 0;
        }
    }

    private static void Consume(IBoundedQueue<int> queue, HistoryRecorder<QueueInput, QueueOutput> recorder, int thread, Random random, bool peek)
    {
        switch (random.Next(peek ? 3 : 2))
        {
            case 0:
                recorder.Record(thread, QueueInput.DequeueMany(random.Next(1, 4)), input =>
                {
                    int[] buffer = new int[input.Max];
                    int n = queue.TryDequeueMany(buffer);
                    return QueueOutput.Items(buffer.AsSpan(0, n));
                });
                break;
            case 1:
                recorder.Record(thread, QueueInput.Dequeue(), _ => queue.TryDequeue(out int v) ? QueueOutput.Item(v) : QueueOutput.Failed);
                break;
            default:
                recorder.Record(thread, QueueInput.Peek(), _ => Peek(queue, out int v) ? QueueOutput.Peeked(v) : QueueOutput.Failed);
                break;
        }
    }

    private static bool Peek(IBoundedQueue<int> queue, out int value) => queue switch
    {
        SpscQueue<int> spsc => spsc.TryPeek(out value),
        MpscQueue<int> mpsc => mpsc.TryPeek(out value),
        _ => throw new InvalidOperationException("no peek"),
    };

    /// <summary>Planted bug: every 5th TryDequeue answers empty without looking.</summary>
    private sealed class SpuriousEmptyQueue(IBoundedQueue<int> inner) : IBoundedQueue<int>
    {
        private int _calls;

        public int Capacity => inner.Capacity;

        public int Count => inner.Count;

        public bool IsEmpty => inner.IsEmpty;

        public bool TryEnqueue(int item) => inner.TryEnqueue(item);

        public bool TryDequeue(out int item)
        {
            if (Interlocked.Increment(ref _calls) % 5 == 0)
            {
                item = 0;
                return false;
            }

            return inner.TryDequeue(out item);
        }

        public int TryEnqueueMany(ReadOnlySpan<int> items) => inner.TryEnqueueMany(items);

        public int TryDequeueMany(Span<int> destination) => inner.TryDequeueMany(destination);
    }
}
