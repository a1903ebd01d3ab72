using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>Stress tests share the cores with nothing else in the run, so their timings and timeouts mean something.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StressCollection
{
    public const string Name = "Stress";
}

/// <summary>
/// Real-thread stress of the queue family for every valid thread-role mix, single and batch operations
/// mixed, small capacities so the ring wraps constantly and full/empty races are frequent. Sizes scale
/// with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class QueueStressTests
{
    /// <summary>Items moved by one test at scale 1, shared among its producers.</summary>
    private const long ItemsPerTest = 200_000;

    private static readonly TimeSpan TimeoutAtScaleOne = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper _output;

    public QueueStressTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(16)]
    [InlineData(1024)]
    public void SpscQueue_OneProducerOneConsumer_EveryItemOnceInOrder(int capacity)
    {
        RunAndAssert(new SpscQueue<long>(capacity), producers: 1, consumers: 1);
    }

    /// <summary>
    /// The SPSC engine tuned to take its streaming path (a read of the producer's index, and a pause whenever it trails
    /// the producer) every <paramref name="streak"/> takes, which the default tuning reaches only when streaming flat out.
    /// </summary>
    [Theory]
    [InlineData(16, 1, 1)]
    [InlineData(16, 2, 8)]
    [InlineData(1024, 4, 64)]
    public void SpscEngine_EagerStreamingPath_EveryItemOnceInOrder(int capacity, int streak, int distance)
    {
        var queue = new EagerSpscQueue(capacity, streak, distance);

        RunAndAssert(queue, producers: 1, consumers: 1, queue.TryPeek);
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 16)]
    [InlineData(3, 2)]
    [InlineData(3, 1024)]
    [InlineData(4, 1)]
    [InlineData(4, 16)]
    public void MpscQueue_ManyProducersOneConsumer_EveryItemOnceInProducerOrder(int producers, int capacity)
    {
        RunAndAssert(new MpscQueue<long>(capacity), producers, consumers: 1);
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 16)]
    [InlineData(3, 2)]
    [InlineData(3, 1024)]
    [InlineData(4, 1)]
    [InlineData(4, 16)]
    public void SpmcQueue_OneProducerManyConsumers_EveryItemOnceInProducerOrder(int consumers, int capacity)
    {
        RunAndAssert(new SpmcQueue<long>(capacity), producers: 1, consumers);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 1024)]
    [InlineData(2, 1)]
    [InlineData(2, 16)]
    [InlineData(4, 2)]
    [InlineData(4, 1024)]
    public void MpmcQueue_ProducersAndConsumers_EveryItemOnceInProducerOrder(int threadsPerRole, int capacity)
    {
        RunAndAssert(new MpmcQueue<long>(capacity), threadsPerRole, threadsPerRole);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    public void SpscQueue_PeekMixedIn_PeekSeesWhatDequeueTakes(int capacity)
    {
        var queue = new SpscQueue<long>(capacity);

        RunAndAssert(queue, producers: 1, consumers: 1, queue.TryPeek);
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(2, 16)]
    public void MpscQueue_PeekMixedIn_PeekSeesWhatDequeueTakes(int producers, int capacity)
    {
        var queue = new MpscQueue<long>(capacity);

        RunAndAssert(queue, producers, consumers: 1, queue.TryPeek);
    }

    [Theory]
    [InlineData("Spsc", 1, 1)]
    [InlineData("Mpsc", 3, 1)]
    [InlineData("Spmc", 1, 3)]
    [InlineData("Mpmc", 2, 2)]
    public void Queue_ReferencePayload_EveryItemOnceInProducerOrder(string kind, int producers, int consumers)
    {
        const int capacity = 16;
        IBoundedQueue<Payload> queue = kind switch
        {
            "Spsc" => new SpscQueue<Payload>(capacity),
            "Mpsc" => new MpscQueue<Payload>(capacity),
            "Spmc" => new SpmcQueue<Payload>(capacity),
            _ => new MpmcQueue<Payload>(capacity),
        };
        long perProducer = StressScale.Items(ItemsPerTest / 2) / producers;

        QueueStressOutcome outcome = QueueStressRun.Run(
            queue, value => new Payload(value), payload => payload.Value, producers, consumers, perProducer,
            StressScale.Timeout(TimeoutAtScaleOne), Seed(kind, producers, consumers, capacity));

        AssertExact(outcome, queue);
    }

    private void RunAndAssert(IBoundedQueue<long> queue, int producers, int consumers, PeekFunc<long>? peek = null)
    {
        long perProducer = StressScale.Items(ItemsPerTest) / producers;

        QueueStressOutcome outcome = QueueStressRun.Run(
            queue, producers, consumers, perProducer, StressScale.Timeout(TimeoutAtScaleOne),
            Seed(queue.GetType().Name, producers, consumers, queue.Capacity), peek);

        AssertExact(outcome, queue);
    }

    private void AssertExact<T>(QueueStressOutcome outcome, IBoundedQueue<T> queue)
    {
        _output.WriteLine($"scale {StressScale.Factor}: {outcome.Report.Received} items in {outcome.Elapsed.TotalMilliseconds:F0} ms; {outcome.Progress}");
        Assert.False(outcome.TimedOut, $"Run did not finish ({outcome.Elapsed}): {outcome.Progress}. {outcome.Report}");
        Assert.Empty(outcome.ThreadFailures);
        Assert.True(outcome.Report.IsExact, outcome.Report.ToString());
        Assert.True(queue.IsEmpty);
        Assert.Equal(0, queue.Count);
        Assert.False(queue.TryDequeue(out _));
    }

    /// <summary>A fixed seed per scenario, so a failing mix of operations can be rerun (thread timing still varies).</summary>
    private static int Seed(string kind, int producers, int consumers, int capacity) =>
        (kind.Length * 7919) ^ (producers * 104729) ^ (consumers * 1299709) ^ capacity;

    /// <summary>A reference-type item, so slots hold object references that are written, read and cleared.</summary>
    private sealed record Payload(long Value);

    /// <summary><see cref="LockFree.Queues.SpscRing{T, TAtomics}"/> with its streaming tuning given, behind the queue interface.</summary>
    private sealed class EagerSpscQueue(int capacity, int streak, int distance) : IBoundedQueue<long>
    {
        private LockFree.Queues.SpscRing<long, LockFree.Internal.RealAtomics> _ring = new(capacity, streak, distance);

        public int Capacity => _ring.Capacity;

        public int Count => _ring.Count;

        public bool IsEmpty => _ring.IsEmpty;

        public bool TryEnqueue(long item) => _ring.TryEnqueue(item);

        public bool TryDequeue(out long item) => _ring.TryDequeue(out item);

        public bool TryPeek(out long item) => _ring.TryPeek(out item);

        public int TryEnqueueMany(ReadOnlySpan<long> items) => _ring.TryEnqueueMany(items);

        public int TryDequeueMany(Span<long> destination) => _ring.TryDequeueMany(destination);
    }
}
