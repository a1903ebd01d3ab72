using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real-thread stress of <see cref="DelayQueue{T}"/> on the system clock: async producers (each with its own constant
/// delay, so each producer's items stay in order), async readers parked in DequeueAsync and polling readers on
/// dedicated threads. Every item is dequeued exactly once (or evicted, under DropOldest), in producer order at each
/// reader, and never before its due time: each item's due time has a lower bound taken before its enqueue, and the
/// reader's clock after the dequeue must not be below it. A planted bug (items visible early) must be caught by the
/// same check. Runs are bounded: on timeout the queue is disposed (waking every parked reader) and the test fails
/// with the progress so far. Sizes scale with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class DelayQueueStressTests(ITestOutputHelper output)
{
    /// <summary>Items per test at scale 1: delays of 0-2 ms through a small queue keep every path busy for a few seconds at most.</summary>
    private const long ItemsPerTest = 12_000;

    private static readonly TimeSpan TimeoutAtScaleOne = TimeSpan.FromSeconds(60);

    private delegate ValueTask<WriteResult> Enqueue(DelayQueue<long> queue, long item, TimeSpan delay);

    [Theory]
    [InlineData(1, 1, 0, 4)]
    [InlineData(3, 2, 0, 16)]
    [InlineData(2, 0, 2, 8)]
    [InlineData(4, 2, 1, 64)]
    [InlineData(3, 2, 1, 1024)] // above the heap's near-tier threshold (session 19): items due before the backlog take the near heap
    public async Task Wait_ProducersAndReaders_EveryItemOnceInProducerOrderNeverEarly(int producers, int asyncReaders, int pollers, int capacity)
    {
        Outcome outcome = await Run(OverflowPolicy.Wait, producers, asyncReaders, pollers, capacity, StressScale.Items(ItemsPerTest), p => (p + 1) % 3, (q, item, delay) => q.EnqueueAsync(item, delay));

        ExactlyOnceReport report = new ExactlyOnceChecker(producers, outcome.PerProducer).Check(outcome.ReaderLogs);
        output.WriteLine($"scale {StressScale.Factor}: {report.Expected} items, {outcome.Early} early, {outcome.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(report.IsExact, report.ToString());
        Assert.Equal(0, outcome.Early);
        BackpressureStatistics stats = outcome.Statistics;
        Assert.Equal((report.Expected, report.Expected, 0L, 0), (stats.Enqueued, stats.Dequeued, stats.Evicted, stats.Remaining));
    }

    [Theory]
    [InlineData(3, 1, 1, 2)]
    [InlineData(2, 2, 0, 8)]
    public async Task DropOldest_ProducersAndReaders_DequeuedPlusEvictedAccountForEveryItemNeverEarly(int producers, int asyncReaders, int pollers, int capacity)
    {
        Outcome outcome = await Run(OverflowPolicy.DropOldest, producers, asyncReaders, pollers, capacity, StressScale.Items(ItemsPerTest / 4), p => p == 0 ? 1 : 0, (q, item, delay) => new ValueTask<WriteResult>(q.TryEnqueue(item, delay)), pace: 2000);

        var seen = new int[producers, outcome.PerProducer];
        foreach (long item in outcome.ReaderLogs.SelectMany(l => l).Concat(outcome.Evicted))
        {
            seen[ExactlyOnceChecker.ProducerOf(item), ExactlyOnceChecker.SequenceOf(item)]++;
        }

        long wrong = seen.Cast<int>().Count(n => n != 1);
        output.WriteLine($"{outcome.ReaderLogs.Sum(l => l.Count)} dequeued, {outcome.Evicted.Count} evicted, {wrong} not exactly once, {outcome.Early} early");
        Assert.Equal(0, wrong);
        Assert.Equal(0, outcome.Early);
        BackpressureStatistics stats = outcome.Statistics;
        Assert.Equal(outcome.Evicted.Count, stats.Evicted);
        Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);
    }

    [Theory]
    [InlineData(2, 2, 16)]
    [InlineData(3, 1, 8)]
    public async Task Wait_WheelDrivenWakeups_EveryItemOnceInProducerOrderNeverEarly(int producers, int asyncReaders, int capacity)
    {
        // Parked readers only, so every wait ends through a wake-up, and those are timers on a wheel whose driver
        // thread serves the queue (re-armed from the readers' paths while the driver fires the previous ones).
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), TimeProvider.System);
        wheel.StartDriver();
        Outcome outcome = await Run(OverflowPolicy.Wait, producers, asyncReaders, pollers: 0, capacity, StressScale.Items(ItemsPerTest / 4), p => 1 + (p % 2), (q, item, delay) => q.EnqueueAsync(item, delay), wheel: wheel);

        ExactlyOnceReport report = new ExactlyOnceChecker(producers, outcome.PerProducer).Check(outcome.ReaderLogs);
        output.WriteLine($"scale {StressScale.Factor}: {report.Expected} items, {outcome.Early} early, {outcome.Elapsed.TotalMilliseconds:F0} ms, wheel fired {wheel.FiredCount}, cancelled {wheel.CancelledCount}");
        Assert.True(report.IsExact, report.ToString());
        Assert.Equal(0, outcome.Early);
        Assert.True(wheel.FiredCount > 0, "the wheel drove no wake-up");
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(false, 20)]
    [InlineData(true, 20)]
    [InlineData(false, 50)]
    [InlineData(true, 50)]
    public async Task Wait_ClockWrapsDuringTheRun_EveryItemOnceInProducerOrderNeverEarly(bool onAWheel, int wrapsInMs)
    {
        // s11-rev: the queue's clock is the system clock shifted to pass long.MaxValue a few milliseconds into the run
        // (2 to 50 ms: well inside every run; the oracle keeps the unshifted Stopwatch, which does not wrap), so due times, the known reading, the published
        // root and the wake-ups cross the wrap under real threads; on a wheel created before the wrap, too.
        var time = new WrappingSystemClock(TimeSpan.FromMilliseconds(wrapsInMs));
        using var wheel = new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), time);
        if (onAWheel)
        {
            wheel.StartDriver();
        }

        Outcome outcome = await Run(OverflowPolicy.Wait, 3, 2, onAWheel ? 0 : 1, 16, StressScale.Items(ItemsPerTest / 4), p => p % 3, (q, item, delay) => q.EnqueueAsync(item, delay), wheel: onAWheel ? wheel : null, time: time);

        ExactlyOnceReport report = new ExactlyOnceChecker(3, outcome.PerProducer).Check(outcome.ReaderLogs);
        output.WriteLine($"scale {StressScale.Factor}: {report.Expected} items, {outcome.Early} early, {outcome.Elapsed.TotalMilliseconds:F0} ms, wrapped {time.HasWrapped}");
        Assert.True(report.IsExact, report.ToString());
        Assert.Equal(0, outcome.Early);
        Assert.True(time.HasWrapped, "the clock did not pass long.MaxValue during the run");
    }

    /// <summary>The system clock shifted so that it passes long.MaxValue <c>wrapsIn</c> after its creation; timers are the system's (relative).</summary>
    private sealed class WrappingSystemClock(TimeSpan wrapsIn) : TimeProvider
    {
        private readonly long _offset = unchecked(long.MaxValue - Stopwatch.GetTimestamp() - (long)(wrapsIn.TotalSeconds * Stopwatch.Frequency));

        public override long TimestampFrequency => Stopwatch.Frequency;

        public bool HasWrapped => GetTimestamp() < 0;

        public override long GetTimestamp() => unchecked(Stopwatch.GetTimestamp() + _offset);
    }

    [Fact]
    public async Task PlantedBug_ItemsVisibleEarly_IsCaughtByTheDueCheck()
    {
        // Planted: the enqueue shortens each delay by 2 ms, so items come out before the due time their producer set.
        Outcome outcome = await Run(
            OverflowPolicy.Wait, producers: 2, asyncReaders: 0, pollers: 2, capacity: 64, totalItems: 2_000, delayMs: _ => 3,
            (q, item, delay) => q.EnqueueAsync(item, delay - TimeSpan.FromMilliseconds(2)));

        output.WriteLine($"{outcome.Early} of 2000 items came out early");
        Assert.True(outcome.Early > 0, "the due check must catch items made visible early");
    }

    private sealed record Outcome(long PerProducer, List<long>[] ReaderLogs, List<long> Evicted, long Early, BackpressureStatistics Statistics, TimeSpan Elapsed);

    private static async Task<Outcome> Run(
        OverflowPolicy policy, int producers, int asyncReaders, int pollers, int capacity, long totalItems, Func<int, int> delayMs, Enqueue enqueue, int pace = 0, HierarchicalTimerWheel? wheel = null, TimeProvider? time = null)
    {
        long perProducer = totalItems / producers;
        var evicted = new List<long>();
        using var queue = new DelayQueue<long>(capacity, new DelayQueueOptions<long>
        {
            FullMode = policy,
            TimerWheel = wheel,
            TimeProvider = time ?? TimeProvider.System,
            ItemDropped = (item, _) =>
            {
                lock (evicted)
                {
                    evicted.Add(item);
                }
            },
        });
        var dueAtLeast = new long[producers][];
        var produced = new long[producers];
        var readerLogs = Enumerable.Range(0, asyncReaders + pollers).Select(_ => new List<long>()).ToArray();
        long early = 0;
        var clock = Stopwatch.StartNew();

        void Log(int reader, long item)
        {
            long now = Stopwatch.GetTimestamp(); // after the dequeue
            if (now < dueAtLeast[ExactlyOnceChecker.ProducerOf(item)][ExactlyOnceChecker.SequenceOf(item)])
            {
                Interlocked.Increment(ref early);
            }

            readerLogs[reader].Add(item);
        }

        async Task Produce(int p)
        {
            dueAtLeast[p] = new long[perProducer];
            TimeSpan delay = TimeSpan.FromMilliseconds(delayMs(p));
            long delayTicks = (long)(delay.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));
            for (long seq = 0; seq < perProducer; seq++)
            {
                long item = ExactlyOnceChecker.Encode(p, seq);
                Volatile.Write(ref dueAtLeast[p][seq], Stopwatch.GetTimestamp() + delayTicks); // published by the enqueue
                WriteResult result = await enqueue(queue, item, delay).ConfigureAwait(false);
                Assert.True(result.IsAccepted, result.ToString());
                Volatile.Write(ref produced[p], seq + 1);
                if (pace > 0)
                {
                    Thread.SpinWait(pace); // lets readers keep up, so both dequeues and evictions happen often
                }
            }
        }

        async Task ReadAsync(int reader)
        {
            while (true)
            {
                long item;
                try
                {
                    item = await queue.DequeueAsync().ConfigureAwait(false);
                }
                catch (InvalidOperationException) when (queue.Completion.IsCompleted)
                {
                    return;
                }

                Log(reader, item);
            }
        }

        void Poll(int reader)
        {
            var spinner = default(SpinWait);
            while (true)
            {
                if (queue.TryDequeue(out long item))
                {
                    Log(reader, item);
                    spinner = default;
                }
                else if (queue.Completion.IsCompleted)
                {
                    return;
                }
                else
                {
                    spinner.SpinOnce();
                }
            }
        }

        Task[] producerTasks = Enumerable.Range(0, producers).Select(p => Task.Run(() => Produce(p))).ToArray();
        Task[] readerTasks =
        [
            .. Enumerable.Range(0, asyncReaders).Select(r => Task.Run(() => ReadAsync(r))),
            .. Enumerable.Range(asyncReaders, pollers).Select(r => Task.Factory.StartNew(() => Poll(r), TaskCreationOptions.LongRunning)),
        ];
        Task producersDone = Task.WhenAll(producerTasks).ContinueWith(t => { queue.TryComplete(); return t; }, TaskScheduler.Default).Unwrap();
        Task all = Task.WhenAll(producersDone, Task.WhenAll(readerTasks), queue.Completion);
        TimeSpan timeout = StressScale.Timeout(TimeoutAtScaleOne);
        if (await Task.WhenAny(all, Task.Delay(timeout)).ConfigureAwait(false) != all)
        {
            BackpressureStatistics stuck = queue.GetStatistics();
            queue.Dispose(); // wakes parked readers; pollers see completion
            Assert.Fail($"timed out after {timeout}: produced {string.Join("/", produced)} of {perProducer} each; {stuck}; " +
                $"readers {string.Join(", ", readerTasks.Select(t => t.Status))}");
        }

        await all.ConfigureAwait(false); // surfaces a producer's or reader's assertion
        return new Outcome(perProducer, readerLogs, evicted, Interlocked.Read(ref early), queue.GetStatistics(), clock.Elapsed);
    }
}
