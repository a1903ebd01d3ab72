using Xunit;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>Proof that the accounting can fail: planted losses, duplicates, inventions and reorderings are each reported.</summary>
[Collection(StressCollection.Name)]
public sealed class ExactlyOnceCheckerTests
{
    private static long Item(int producer, long sequence) => ExactlyOnceChecker.Encode(producer, sequence);

    [Fact]
    public void Check_EveryItemOnceInOrder_IsExact()
    {
        var checker = new ExactlyOnceChecker(producers: 2, itemsPerProducer: 3);

        ExactlyOnceReport report = checker.Check([
            [Item(0, 0), Item(1, 0), Item(0, 1)],
            [Item(1, 1), Item(0, 2), Item(1, 2)],
        ]);

        Assert.True(report.IsExact, report.ToString());
    }

    [Fact]
    public void Check_LostItem_ReportsLost()
    {
        var checker = new ExactlyOnceChecker(producers: 1, itemsPerProducer: 3);

        ExactlyOnceReport report = checker.Check([[Item(0, 0), Item(0, 2)]]);

        Assert.False(report.IsExact);
        Assert.Equal(1, report.Lost);
        Assert.Contains("lost: producer 0 #1", report.Details, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_DuplicatedItemAcrossConsumers_ReportsDuplicate()
    {
        var checker = new ExactlyOnceChecker(producers: 1, itemsPerProducer: 2);

        ExactlyOnceReport report = checker.Check([[Item(0, 0), Item(0, 1)], [Item(0, 1)]]);

        Assert.False(report.IsExact);
        Assert.Equal(1, report.Duplicated);
        Assert.Equal(0, report.Lost);
    }

    [Fact]
    public void Check_InventedItems_ReportsInvented()
    {
        var checker = new ExactlyOnceChecker(producers: 1, itemsPerProducer: 2);

        // An unknown producer, a sequence number past the end, and a null payload (-1).
        ExactlyOnceReport report = checker.Check([[Item(0, 0), Item(3, 0), Item(0, 1), Item(0, 2), -1]]);

        Assert.False(report.IsExact);
        Assert.Equal(3, report.Invented);
    }

    [Fact]
    public void Check_ProducerOrderSwappedAtOneConsumer_ReportsOutOfOrder()
    {
        var checker = new ExactlyOnceChecker(producers: 2, itemsPerProducer: 2);

        ExactlyOnceReport report = checker.Check([[Item(0, 1), Item(1, 0), Item(0, 0), Item(1, 1)]]);

        Assert.False(report.IsExact);
        Assert.Equal(1, report.OutOfOrder);
        Assert.Equal(0, report.Lost);
    }

    [Fact]
    public void Check_SameProducerSplitAcrossConsumers_IsExact()
    {
        // Different consumers may see one producer's items interleaved; only order within a consumer counts.
        var checker = new ExactlyOnceChecker(producers: 1, itemsPerProducer: 4);

        ExactlyOnceReport report = checker.Check([[Item(0, 1), Item(0, 3)], [Item(0, 0), Item(0, 2)]]);

        Assert.True(report.IsExact, report.ToString());
    }

    [Fact]
    public void Run_QueueThatLosesAnItem_ReportsLoss()
    {
        var queue = new LosesOneItem(new MpmcQueue<long>(16), dropAt: 1000);

        QueueStressOutcome outcome = QueueStressRun.Run(
            queue, producers: 2, consumers: 2, itemsPerProducer: 5_000, TimeSpan.FromSeconds(30), seed: 1);

        Assert.False(outcome.TimedOut, outcome.Progress);
        Assert.False(outcome.Report.IsExact);
        Assert.Equal(1, outcome.Report.Lost);
    }

    [Fact]
    public void Run_QueueThatRepeatsAnItem_ReportsDuplicate()
    {
        var queue = new RepeatsOneItem(new MpscQueue<long>(16), repeatAt: 1000);

        QueueStressOutcome outcome = QueueStressRun.Run(
            queue, producers: 2, consumers: 1, itemsPerProducer: 5_000, TimeSpan.FromSeconds(30), seed: 2);

        Assert.False(outcome.TimedOut, outcome.Progress);
        Assert.False(outcome.Report.IsExact);
        Assert.Equal(1, outcome.Report.Duplicated);
    }

    [Theory]
    [InlineData(null, 1)]
    [InlineData("", 1)]
    [InlineData("50", 50)]
    public void StressScale_Parse_ValidValue_ReturnsFactor(string? value, int expected)
    {
        Assert.Equal(expected, StressScale.Parse(value));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("big")]
    public void StressScale_Parse_InvalidValue_Throws(string value)
    {
        Assert.Throws<InvalidOperationException>(() => StressScale.Parse(value));
    }

    /// <summary>Planted bug: the dequeue with the given ordinal (counted over all consumers) discards its item.</summary>
    private sealed class LosesOneItem(IBoundedQueue<long> inner, long dropAt) : IBoundedQueue<long>
    {
        private long _dequeued;

        public int Capacity => inner.Capacity;

        public int Count => inner.Count;

        public bool IsEmpty => inner.IsEmpty;

        public bool TryEnqueue(long item) => inner.TryEnqueue(item);

        public int TryEnqueueMany(ReadOnlySpan<long> items) => inner.TryEnqueueMany(items);

        public bool TryDequeue(out long item)
        {
            while (inner.TryDequeue(out item))
            {
                if (Interlocked.Increment(ref _dequeued) != dropAt)
                {
                    return true;
                }
            }

            return false;
        }

        public int TryDequeueMany(Span<long> destination) => TryDequeue(out destination[0]) ? 1 : 0;
    }

    /// <summary>Planted bug: the dequeue with the given ordinal hands out its item and leaves it in place for the next one.</summary>
    private sealed class RepeatsOneItem(IBoundedQueue<long> inner, long repeatAt) : IBoundedQueue<long>
    {
        private long _dequeued;
        private long _repeat = -1;

        public int Capacity => inner.Capacity;

        public int Count => inner.Count;

        public bool IsEmpty => inner.IsEmpty && _repeat < 0;

        public bool TryEnqueue(long item) => inner.TryEnqueue(item);

        public int TryEnqueueMany(ReadOnlySpan<long> items) => inner.TryEnqueueMany(items);

        public bool TryDequeue(out long item)
        {
            if (_repeat >= 0)
            {
                (item, _repeat) = (_repeat, -1);
                return true;
            }

            if (!inner.TryDequeue(out item))
            {
                return false;
            }

            if (++_dequeued == repeatAt)
            {
                _repeat = item; // single consumer: no race on _repeat
            }

            return true;
        }

        public int TryDequeueMany(Span<long> destination) => TryDequeue(out destination[0]) ? 1 : 0;
    }
}
