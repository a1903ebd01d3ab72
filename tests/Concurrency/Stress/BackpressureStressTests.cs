using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real-thread stress of <see cref="BackpressureBuffer{T}"/> under each overflow policy: async writers and
/// readers (tasks) and sync ones (dedicated threads), small capacities so the buffer is full or empty most
/// of the time. Every item is accounted for exactly once: read by a reader, or dropped/evicted (from the
/// drop callback), or rejected (from the write's result); readers see each writer's items in order. The
/// statistics must agree. Each run is bounded: on timeout the buffer is disposed, which wakes every parked
/// writer and reader, and the test fails with the progress so far. Sizes scale with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class BackpressureStressTests
{
    /// <summary>Items per test at scale 1 under Wait (every item parks and wakes often at capacity 1).</summary>
    private const long WaitItemsPerTest = 20_000;

    /// <summary>
    /// Items per test at scale 1 under Wait with threads: nearly every item is a park and an OS wake-up, which on
    /// two cores shared with other busy work costs about a millisecond (measured: ~1.5k items/s).
    /// </summary>
    private const long SyncWaitItemsPerTest = 4_000;

    /// <summary>Items per test at scale 1 under the non-waiting policies (most writes overflow quickly).</summary>
    private const long DropItemsPerTest = 60_000;

    private static readonly TimeSpan TimeoutAtScaleOne = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper _output;

    /// <summary>Sync reads that waited a whole second without an item or completion (a stall worth reporting).</summary>
    private int _readTimeouts;

    public BackpressureStressTests(ITestOutputHelper output) => _output = output;

    public enum Mode
    {
        /// <summary>WriteAsync and ReadAllAsync on tasks.</summary>
        Async,

        /// <summary>Write(timeout) and TryRead(out, timeout) on dedicated threads.</summary>
        Sync,
    }

    [Theory]
    [InlineData(Mode.Async, 1, 1, 1, false, false)]
    [InlineData(Mode.Async, 3, 2, 1, false, false)]
    [InlineData(Mode.Async, 2, 2, 2, false, false)]
    [InlineData(Mode.Async, 4, 4, 16, false, false)]
    [InlineData(Mode.Async, 1, 1, 16, true, true)]
    [InlineData(Mode.Async, 1, 3, 2, true, false)]
    [InlineData(Mode.Async, 3, 1, 2, false, true)]
    [InlineData(Mode.Sync, 2, 2, 1, false, false)]
    [InlineData(Mode.Sync, 3, 1, 16, false, true)]
    [InlineData(Mode.Sync, 1, 1, 2, true, true)]
    public async Task Wait_WritersAndReaders_EveryItemDeliveredOnceInWriterOrder(Mode mode, int writers, int readers, int capacity, bool singleWriter, bool singleReader)
    {
        StressOutcome outcome = await Run(
            OverflowPolicy.Wait, mode, writers, readers, capacity, singleWriter, singleReader, mode == Mode.Sync ? SyncWaitItemsPerTest : WaitItemsPerTest);

        Assert.Equal(0, outcome.Dropped.Count + outcome.Rejected.Count);
        Assert.Equal(outcome.Expected, outcome.Delivered);
    }

    [Theory]
    [InlineData(Mode.Async, 2, 2, 1, false)]
    [InlineData(Mode.Async, 3, 2, 16, false)]
    [InlineData(Mode.Async, 1, 1, 2, true)]
    [InlineData(Mode.Sync, 2, 1, 2, false)]
    public async Task DropIncoming_WritersAndReaders_DeliveredPlusDroppedAccountForEveryItem(Mode mode, int writers, int readers, int capacity, bool singleReader)
    {
        StressOutcome outcome = await Run(OverflowPolicy.DropIncoming, mode, writers, readers, capacity, singleWriter: writers == 1, singleReader, DropItemsPerTest);

        Assert.All(outcome.Dropped, d => Assert.Equal(DropReason.Incoming, d.Reason));
        Assert.Empty(outcome.Rejected);
    }

    [Fact]
    public Task DropOldest_TwoAsyncWritersTwoAsyncReadersCapacityOne_DeliveredPlusEvictedAccountForEveryItem() =>
        // This run twice ended with one item left and both readers gone ("written 30000/30000 ... Remaining = 1"),
        // on a build where WaitToReadAsync, after its handshake, could answer "finished" on a live buffer when the
        // item it had just seen was taken (by another reader, or by an evicting writer) before its second look; the
        // benchmark run found the same bug with four readers on one slot, and it is fixed (false only when finished
        // and empty). Not reproduced since the fix (over 30 runs, some under load); FinishOrFail prints each task's
        // status should it happen again.
        DropOldest_WritersAndReaders_DeliveredPlusEvictedAccountForEveryItem(Mode.Async, 2, 2, 1, singleReader: false);

    [Theory]
    [InlineData(Mode.Async, 3, 2, 2, false)]
    [InlineData(Mode.Async, 1, 1, 16, true)]
    [InlineData(Mode.Sync, 2, 2, 1, true)]
    [InlineData(Mode.Sync, 3, 1, 16, false)]
    public async Task DropOldest_WritersAndReaders_DeliveredPlusEvictedAccountForEveryItem(Mode mode, int writers, int readers, int capacity, bool singleReader)
    {
        StressOutcome outcome = await Run(OverflowPolicy.DropOldest, mode, writers, readers, capacity, singleWriter: writers == 1, singleReader, DropItemsPerTest);

        Assert.All(outcome.Dropped, d => Assert.Equal(DropReason.Oldest, d.Reason));
        Assert.Empty(outcome.Rejected);
        Assert.Equal(outcome.Dropped.Count, outcome.EvictedAnswers); // one item per EvictedOldest answer (session 16: one step)
    }

    [Theory]
    [InlineData(Mode.Async, 2, 2, 2)]
    [InlineData(Mode.Async, 3, 1, 16)]
    [InlineData(Mode.Sync, 2, 2, 1)]
    public async Task Reject_WritersAndReaders_DeliveredPlusRejectedAccountForEveryItem(Mode mode, int writers, int readers, int capacity)
    {
        StressOutcome outcome = await Run(OverflowPolicy.Reject, mode, writers, readers, capacity, singleWriter: false, singleReader: false, DropItemsPerTest);

        Assert.Empty(outcome.Dropped);
        Assert.All(outcome.Rejected, r => Assert.Equal(RejectReason.Full, r.Reason));
    }

    [Theory]
    [InlineData(Mode.Async, 1)]
    [InlineData(Mode.Async, 2)]
    [InlineData(Mode.Sync, 2)]
    public async Task Wait_TimedWritersRetryingBesideUntimedOnes_EveryItemOnceAndTimeoutsCounted(Mode mode, int capacity)
    {
        // Writers 0 and 1 wait at most a millisecond and retry the same item on TimedOut; writers 2 and 3 wait
        // without a deadline. Timed-out attempts leave no trace but the Rejected count, and no untimed writer may
        // be left asleep beside free room at the end. (This run rarely hits the signal-at-deadline race; the
        // deterministic repro of that lost wake-up is the unit test
        // WriteAsync_SignalledAfterItsDeadline_PassesTheRoomToTheNextWriter.)
        const int Writers = 4;
        long perWriter = StressScale.Items(mode == Mode.Sync ? SyncWaitItemsPerTest : WaitItemsPerTest) / Writers;
        TimeSpan timeout = StressScale.Timeout(TimeoutAtScaleOne);
        var buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long> { Capacity = capacity });
        var readerLogs = new[] { new List<long>(), new List<long>() };
        long timedOut = 0;
        var written = new long[Writers];

        async Task WriteAsyncRetrying(int w)
        {
            TimeSpan limit = w < 2 ? TimeSpan.FromMilliseconds(1) : Timeout.InfiniteTimeSpan;
            for (long seq = 0; seq < perWriter; seq++)
            {
                long item = ExactlyOnceChecker.Encode(w, seq);
                WriteResult result;
                while ((result = await buffer.WriteAsync(item, OverflowPolicy.Wait, limit).ConfigureAwait(false)).Outcome == WriteOutcome.Rejected)
                {
                    Assert.Equal(RejectReason.TimedOut, result.Reason);
                    Interlocked.Increment(ref timedOut);
                }

                Assert.Equal(WriteResult.Accepted, result);
                Volatile.Write(ref written[w], seq + 1);
            }
        }

        void WriteSyncRetrying(int w)
        {
            TimeSpan limit = w < 2 ? TimeSpan.FromMilliseconds(1) : Timeout.InfiniteTimeSpan;
            for (long seq = 0; seq < perWriter; seq++)
            {
                long item = ExactlyOnceChecker.Encode(w, seq);
                WriteResult result;
                while ((result = buffer.Write(item, limit)).Outcome == WriteOutcome.Rejected)
                {
                    Assert.Equal(RejectReason.TimedOut, result.Reason);
                    Interlocked.Increment(ref timedOut);
                }

                Assert.Equal(WriteResult.Accepted, result);
                Volatile.Write(ref written[w], seq + 1);
            }
        }

        Task[] writerTasks = Start(mode, Writers, WriteAsyncRetrying, WriteSyncRetrying);
        Task[] readerTasks = StartReaders(mode, buffer, readerLogs);
        Task writersDone = Task.WhenAll(writerTasks).ContinueWith(t => { buffer.TryComplete(); return t; }, TaskScheduler.Default).Unwrap();
        await FinishOrFail(
            buffer,
            Task.WhenAll(writersDone, Task.WhenAll(readerTasks), buffer.Completion),
            [.. writerTasks, .. readerTasks],
            timeout,
            () => $"written {string.Join("/", Enumerable.Range(0, Writers).Select(w => Volatile.Read(ref written[w])))} of {perWriter} each",
            Writers,
            readerTasks.Length);

        ExactlyOnceReport report = new ExactlyOnceChecker(Writers, perWriter).Check(readerLogs);
        _output.WriteLine($"scale {StressScale.Factor}, {mode}: {report.Expected} items, {timedOut} timed-out attempts retried");
        Assert.True(report.IsExact, report.ToString());
        Assert.Equal(new BackpressureStatistics(report.Expected, report.Expected, 0, 0, Interlocked.Read(ref timedOut), 0), buffer.GetStatistics());
    }

    [Theory]
    [InlineData(Mode.Async, 1)]
    [InlineData(Mode.Async, 16)]
    [InlineData(Mode.Sync, 2)]
    public async Task Complete_WhileWritersWrite_EveryAcceptedItemReadOnceAndNoneAfterCompletion(Mode mode, int capacity)
    {
        // Writers write until a write answers Completed; completion comes from another thread mid-run. Under
        // Wait a write is Accepted or Completed, so writer w's accepted items are exactly its sequence numbers
        // 0..k(w)-1, and the readers must see exactly those, in writer order, before Completion completes.
        const int Writers = 3;
        long completeAfter = StressScale.Items(mode == Mode.Sync ? SyncWaitItemsPerTest : WaitItemsPerTest) / 2;
        TimeSpan timeout = StressScale.Timeout(TimeoutAtScaleOne);
        var buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long> { Capacity = capacity });
        var readerLogs = new[] { new List<long>(), new List<long>() };
        var accepted = new long[Writers];

        void Record(int w, long seq, WriteResult result, ref bool done)
        {
            if (result.Outcome == WriteOutcome.Completed)
            {
                done = true;
                return;
            }

            Assert.Equal(WriteResult.Accepted, result);
            Volatile.Write(ref accepted[w], seq + 1);
        }

        async Task WriteUntilCompleted(int w)
        {
            bool done = false;
            for (long seq = 0; !done; seq++)
            {
                WriteResult result = await buffer.WriteAsync(ExactlyOnceChecker.Encode(w, seq)).ConfigureAwait(false);
                Record(w, seq, result, ref done);
            }
        }

        void WriteUntilCompletedSync(int w)
        {
            bool done = false;
            for (long seq = 0; !done; seq++)
            {
                Record(w, seq, buffer.Write(ExactlyOnceChecker.Encode(w, seq), Timeout.InfiniteTimeSpan), ref done);
            }
        }

        Task[] writerTasks = Start(mode, Writers, WriteUntilCompleted, WriteUntilCompletedSync);
        Task[] readerTasks = StartReaders(mode, buffer, readerLogs);
        Task completer = Task.Factory.StartNew(
            () =>
            {
                var deadline = Stopwatch.StartNew();
                while (buffer.GetStatistics().Dequeued < completeAfter && deadline.Elapsed < timeout)
                {
                    Thread.Sleep(1);
                }

                Assert.True(buffer.TryComplete());
            },
            TaskCreationOptions.LongRunning);

        await FinishOrFail(
            buffer,
            Task.WhenAll(Task.WhenAll(writerTasks), Task.WhenAll(readerTasks), completer, buffer.Completion),
            [.. writerTasks, .. readerTasks, completer],
            timeout,
            () => $"accepted {string.Join("/", Enumerable.Range(0, Writers).Select(w => Volatile.Read(ref accepted[w])))}, completed {buffer.IsCompleted}",
            Writers,
            readerTasks.Length);

        long total = accepted.Sum();
        foreach (List<long> log in readerLogs)
        {
            for (int w = 0; w < Writers; w++)
            {
                long[] mine = log.Where(item => ExactlyOnceChecker.ProducerOf(item) == w).Select(ExactlyOnceChecker.SequenceOf).ToArray();
                Assert.True(mine.SequenceEqual(mine.Order()), $"writer {w}'s items out of order at a reader");
            }
        }

        for (int w = 0; w < Writers; w++)
        {
            long[] read = readerLogs.SelectMany(l => l).Where(item => ExactlyOnceChecker.ProducerOf(item) == w)
                .Select(ExactlyOnceChecker.SequenceOf).Order().ToArray();
            Assert.True(read.SequenceEqual(Enumerable.Range(0, (int)accepted[w]).Select(i => (long)i)),
                $"writer {w}: accepted 0..{accepted[w] - 1}, read {read.Length} items (first gap/extra breaks exactly-once)");
        }

        _output.WriteLine($"scale {StressScale.Factor}, {mode}: {total} items accepted before completion");
        Assert.Equal(new BackpressureStatistics(total, total, 0, 0, 0, 0), buffer.GetStatistics());
    }

    /// <summary>One writer per index: tasks running <paramref name="async"/>, or dedicated threads running <paramref name="sync"/>.</summary>
    private static Task[] Start(Mode mode, int count, Func<int, Task> async, Action<int> sync) =>
        Enumerable.Range(0, count)
            .Select(i => mode == Mode.Async ? Task.Run(() => async(i)) : Task.Factory.StartNew(() => sync(i), TaskCreationOptions.LongRunning))
            .ToArray();

    private Task[] StartReaders(Mode mode, BackpressureBuffer<long> buffer, List<long>[] logs) =>
        Start(mode, logs.Length, r => ReadAsync(buffer, logs[r]), r => ReadSync(buffer, logs[r]));

    /// <summary>
    /// Waits for <paramref name="all"/>; past <paramref name="timeout"/> disposes the buffer (which wakes every parked
    /// writer and reader, so nothing outlives the test) and fails with the progress. Then checks every task succeeded.
    /// </summary>
    /// <remarks>
    /// The message names each task (writers first, then readers, then a completer), says whether the buffer was
    /// finished (completed and drained) and what its Completion task did, and lists both waiter lists (the gate's
    /// count, each linked waiter's status, sync or async): a reader stuck in WaitToReadAsync shows as a linked async
    /// waiter still Pending. Before, it gave only the statuses in a row and "completed", which could not tell a lost
    /// finish wake-up from a slow run (a hang of this test was one: a reader parked behind a reader that had linked but
    /// not yet registered was left out of the finish's FinishAll, see BackpressureFinishWakeTests).
    /// </remarks>
    private async Task FinishOrFail(BackpressureBuffer<long> buffer, Task all, Task[] tasks, TimeSpan timeout, Func<string> progress, int writers, int readers)
    {
        var elapsed = Stopwatch.StartNew();
        bool finished = await Task.WhenAny(all, Task.Delay(timeout)).ConfigureAwait(false) == all;
        string Role(int i) => i < writers ? $"writer {i}" : i < writers + readers ? $"reader {i - writers}" : "completer";
        string state = $"{progress()}; stats {buffer.GetStatistics()}; {buffer.DescribeWaitState()}; " +
            $"1 s read stalls {Volatile.Read(ref _readTimeouts)}; after {elapsed.ElapsedMilliseconds} ms; tasks " +
            string.Join(", ", tasks.Select((t, i) => $"{Role(i)} {t.Status}")) + "; " +
            string.Join("; ", tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException));
        buffer.Dispose();
        Assert.True(finished, $"run did not finish within {timeout}: {state}");
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully, t.Exception?.ToString()));
    }

    private sealed record StressOutcome(
        long Expected, long Delivered, IReadOnlyList<(long Item, DropReason Reason)> Dropped, IReadOnlyList<(long Item, RejectReason Reason)> Rejected, long EvictedAnswers);

    private async Task<StressOutcome> Run(
        OverflowPolicy policy, Mode mode, int writers, int readers, int capacity, bool singleWriter, bool singleReader, long itemsAtScaleOne)
    {
        long perWriter = StressScale.Items(itemsAtScaleOne) / writers;
        TimeSpan timeout = StressScale.Timeout(TimeoutAtScaleOne);
        var dropped = new ConcurrentQueue<(long Item, DropReason Reason)>();
        var buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = capacity,
            FullMode = policy,
            SingleWriter = singleWriter,
            SingleReader = singleReader,
            ItemDropped = (item, reason) => dropped.Enqueue((item, reason)),
        });
        var readerLogs = new List<long>[readers];
        var rejectedLogs = new List<(long Item, RejectReason Reason)>[writers];
        var written = new long[writers];
        var evictedAnswers = new long[1]; // EvictedOldest answers, over all writers
        for (int i = 0; i < readers; i++)
        {
            readerLogs[i] = new List<long>();
        }

        for (int i = 0; i < writers; i++)
        {
            rejectedLogs[i] = new List<(long, RejectReason)>();
        }

        var stopwatch = Stopwatch.StartNew();
        Task[] writerTasks = Start(
            mode, writers, w => WriteAsync(buffer, w, perWriter, rejectedLogs[w], written, evictedAnswers), w => WriteSync(buffer, w, perWriter, rejectedLogs[w], written, evictedAnswers));
        Task[] readerTasks = StartReaders(mode, buffer, readerLogs);
        Task writersDone = Task.WhenAll(writerTasks).ContinueWith(
            t =>
            {
                buffer.TryComplete(); // after the last write: readers drain and stop
                return t;
            },
            TaskScheduler.Default).Unwrap();
        await FinishOrFail(
            buffer,
            Task.WhenAll(writersDone, Task.WhenAll(readerTasks), buffer.Completion),
            [.. writerTasks, .. readerTasks],
            timeout,
            () => $"{policy}/{mode}: written {string.Join("/", Enumerable.Range(0, writers).Select(w => Volatile.Read(ref written[w])))} of {perWriter} each",
            writers,
            readers);
        stopwatch.Stop();

        // Every item once: reader logs in arrival order (per-writer FIFO), dropped and rejected items sorted
        // (their callbacks and results race across writers, so their order proves nothing).
        var logs = new List<IReadOnlyList<long>>(readerLogs);
        List<(long Item, DropReason Reason)> droppedList = [.. dropped];
        List<(long Item, RejectReason Reason)> rejectedList = [.. rejectedLogs.SelectMany(l => l)];
        logs.Add(droppedList.Select(d => d.Item).Order().ToList());
        logs.Add(rejectedList.Select(r => r.Item).Order().ToList());
        ExactlyOnceReport report = new ExactlyOnceChecker(writers, perWriter).Check(logs);
        long delivered = readerLogs.Sum(l => l.Count);
        _output.WriteLine($"scale {StressScale.Factor}, {policy}/{mode}: {report.Expected} items in {stopwatch.ElapsedMilliseconds} ms; " +
            $"delivered {delivered}, dropped/evicted {droppedList.Count}, rejected {rejectedList.Count}, 1 s read timeouts {_readTimeouts}; {buffer.GetStatistics()}");
        Assert.True(report.IsExact, report.ToString());

        BackpressureStatistics stats = buffer.GetStatistics();
        long evicted = droppedList.Count(d => d.Reason == DropReason.Oldest);
        long droppedIncoming = droppedList.Count(d => d.Reason == DropReason.Incoming);
        Assert.Equal(new BackpressureStatistics(delivered + evicted, delivered, droppedIncoming, evicted, rejectedList.Count, 0), stats);
        return new StressOutcome(report.Expected, delivered, droppedList, rejectedList, Volatile.Read(ref evictedAnswers[0]));
    }

    private static async Task WriteAsync(BackpressureBuffer<long> buffer, int writer, long count, List<(long, RejectReason)> rejected, long[] written, long[] evictedAnswers)
    {
        for (long seq = 0; seq < count; seq++)
        {
            long item = ExactlyOnceChecker.Encode(writer, seq);
            WriteResult result = await buffer.WriteAsync(item).ConfigureAwait(false);
            Record(result, item, rejected, evictedAnswers);
            Volatile.Write(ref written[writer], seq + 1);
            if ((seq & 255) == 0)
            {
                await Task.Yield(); // let readers in now and then when the writes complete synchronously
            }
        }
    }

    private static void WriteSync(BackpressureBuffer<long> buffer, int writer, long count, List<(long, RejectReason)> rejected, long[] written, long[] evictedAnswers)
    {
        for (long seq = 0; seq < count; seq++)
        {
            long item = ExactlyOnceChecker.Encode(writer, seq);
            Record(buffer.Write(item, Timeout.InfiniteTimeSpan), item, rejected, evictedAnswers);
            Volatile.Write(ref written[writer], seq + 1);
        }
    }

    private static void Record(WriteResult result, long item, List<(long, RejectReason)> rejected, long[] evictedAnswers)
    {
        switch (result.Outcome)
        {
            case WriteOutcome.EvictedOldest:
                Interlocked.Increment(ref evictedAnswers[0]);
                break; // in the buffer; the evicted item handed to the drop callback
            case WriteOutcome.Accepted or WriteOutcome.DroppedIncoming:
                break; // in the buffer, or handed to the drop callback
            case WriteOutcome.Rejected:
                rejected.Add((item, result.Reason));
                break;
            default:
                throw new InvalidOperationException($"unexpected {result} for item {item:X} before completion");
        }
    }

    private static async Task ReadAsync(BackpressureBuffer<long> buffer, List<long> log)
    {
        await foreach (long item in buffer.ReadAllAsync().ConfigureAwait(false))
        {
            log.Add(item);
        }
    }

    private void ReadSync(BackpressureBuffer<long> buffer, List<long> log)
    {
        while (true)
        {
            if (buffer.TryRead(out long item, TimeSpan.FromSeconds(1)))
            {
                log.Add(item);
            }
            else if (buffer.Completion.IsCompleted)
            {
                return; // completed and drained (or disposed on timeout)
            }
            else
            {
                Interlocked.Increment(ref _readTimeouts);
            }
        }
    }

    [Theory]
    [InlineData(1, 20_000)]
    [InlineData(64, 100_000)]
    public void TryPath_SpscSpinningWriterAndReaderThenWriterCompletes_EveryItemOnceInOrderAndCompletionCompletes(int capacity, long itemsAtScaleOne)
    {
        // The SPSC engine's TryWrite/TryRead run the ring inlined in the caller; here a writer thread and a reader thread
        // spin on them (no waiting API at all), the writer completes the buffer after its last item, and the reader
        // drains until the buffer is finished: every item exactly once, in order, and the accounting exact.
        long items = StressScale.Items(itemsAtScaleOne);
        TimeSpan timeout = StressScale.Timeout(TimeoutAtScaleOne);
        var buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = capacity,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = true,
            SingleReader = true,
        });
        var deadline = Stopwatch.StartNew();
        long rejected = 0, read = 0, outOfOrder = 0, unexpected = 0;
        var writer = new Thread(() =>
        {
            for (long next = 1; next <= items && deadline.Elapsed < timeout;)
            {
                WriteResult result = buffer.TryWrite(next);
                if (result.Outcome == WriteOutcome.Accepted)
                {
                    next++;
                }
                else
                {
                    unexpected += result.Outcome == WriteOutcome.Rejected ? 0 : 1;
                    rejected++;
                    Thread.SpinWait(4);
                }
            }

            buffer.Complete();
        });
        var reader = new Thread(() =>
        {
            long expected = 1;
            while (!buffer.Completion.IsCompleted && deadline.Elapsed < timeout)
            {
                if (buffer.TryRead(out long item))
                {
                    if (item != expected)
                    {
                        outOfOrder++;
                    }

                    expected = item + 1;
                    read++;
                }
                else
                {
                    Thread.SpinWait(4);
                }
            }
        });
        writer.Start();
        reader.Start();
        Assert.True(writer.Join(timeout + TimeSpan.FromSeconds(10)), "writer hung");
        Assert.True(reader.Join(timeout + TimeSpan.FromSeconds(10)), "reader hung");

        _output.WriteLine($"scale {StressScale.Factor}, capacity {capacity}: {items} items, {rejected} full answers, {deadline.ElapsedMilliseconds} ms");
        Assert.True(buffer.Completion.IsCompletedSuccessfully, $"not finished within {timeout}: read {read} of {items}");
        Assert.Equal(0, unexpected);
        Assert.Equal(0, outOfOrder);
        Assert.Equal(items, read);
        Assert.Equal(new BackpressureStatistics(items, items, 0, 0, rejected, 0), buffer.GetStatistics());
        Assert.Equal(WriteResult.Completed, buffer.TryWrite(0));
    }
}
