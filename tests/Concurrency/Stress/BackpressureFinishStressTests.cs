using System.Diagnostics;
using LockFree.Backpressure;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Many short rounds that end in the buffer's finish (completed and drained) with readers parked: the wake-up of the
/// finish is what is under test. Each round: writers (<c>WriteAsync</c>) and four readers of three kinds
/// (<c>ReadAllAsync</c>, a raw <c>WaitToReadAsync</c> + <c>TryRead</c> loop, a blocking <c>TryRead(out, infinite)</c> on
/// its own thread), a small capacity, and completion from another thread, either after the last write or in the
/// middle of the run (writers then stop at <c>Completed</c>; with one writer it completes itself mid-run: completion
/// from a third thread on a SingleWriter buffer, allowed since session 9, is <c>ForeignCompletionStressTests</c>). Every accepted item must be read exactly once, in each
/// writer's order at every reader, and every reader must end. A round that does not end within its bound fails with
/// every task's role, kind, state and progress, the buffer's accounting and both waiter lists (which waiters are
/// linked, their status, the gate's count): the next hang names its reader. On the code before the fix of
/// <see cref="WaiterList.FinishAll"/> (bounded by the gate's count, which a reader between its link and its
/// registration made wrong) this harness hung in 2 of 96,000 rounds (two copies at LOCKFREE_STRESS_SCALE=20 side by
/// side on a loaded 2-vCPU VM), each time with one reader linked and Pending beside a finished buffer; at scale 1 it
/// catches that only rarely (a preemption in a window of a few instructions), so the deterministic reproduction is
/// <c>BackpressureFinishWakeTests</c> in the unit tests. Rounds scale with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class BackpressureFinishStressTests
{
    /// <summary>Rounds per case at scale 1 (each round moves a few hundred items: milliseconds).</summary>
    private const int RoundsAtScaleOne = 300;

    /// <summary>Items each writer offers per round.</summary>
    private const int ItemsPerWriter = 64;

    /// <summary>One round's bound: generous (a round takes milliseconds), so only a hang trips it.</summary>
    private static readonly TimeSpan RoundTimeout = TimeSpan.FromSeconds(20);

    private readonly ITestOutputHelper _output;

    public BackpressureFinishStressTests(ITestOutputHelper output) => _output = output;

    public enum Completion
    {
        /// <summary>After every writer finished (a continuation on the pool), as the original stress run.</summary>
        AtEnd,

        /// <summary>From a thread of its own after a random share of the items was read; writers stop at Completed.</summary>
        MidRun,
    }

    private enum ReaderKind
    {
        ReadAllAsync,
        WaitToReadLoop,
        BlockingTryRead,
    }

    private static readonly ReaderKind[] Readers = [ReaderKind.ReadAllAsync, ReaderKind.ReadAllAsync, ReaderKind.WaitToReadLoop, ReaderKind.BlockingTryRead];

    [Theory]
    [InlineData(3, 1, Completion.AtEnd)]
    [InlineData(3, 2, Completion.AtEnd)]
    [InlineData(4, 16, Completion.AtEnd)]
    [InlineData(3, 1, Completion.MidRun)]
    [InlineData(4, 16, Completion.MidRun)]
    [InlineData(1, 1, Completion.AtEnd)]
    [InlineData(1, 16, Completion.AtEnd)]
    [InlineData(1, 2, Completion.MidRun)]
    public async Task Finish_ManyShortRoundsWithParkedReaders_EveryReaderEndsAndEveryItemReadOnce(int writers, int capacity, Completion completion)
    {
        // One writer: the SPMC engine (SingleWriter); more: MPMC. Many readers either way.
        int rounds = RoundsAtScaleOne * StressScale.Factor;
        var random = new Random(writers * 1000 + capacity * 10 + (int)completion);
        var stopwatch = Stopwatch.StartNew();
        long items = 0;
        for (int round = 0; round < rounds; round++)
        {
            items += await RunRound(round, writers, capacity, completion, random.Next(writers * ItemsPerWriter));
        }

        _output.WriteLine($"scale {StressScale.Factor}: {rounds} rounds, {items} items read, {stopwatch.ElapsedMilliseconds} ms");
    }

    private static async Task<long> RunRound(int round, int writers, int capacity, Completion completion, int completeAfterReads)
    {
        var buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = capacity,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = writers == 1,
            SingleReader = false,
        });
        var accepted = new long[writers];

        // With one writer (SingleWriter: the SPMC engine) the writer completes between its writes mid-run. A third
        // thread completing while it writes was tried first and left an accepted item behind in a finished buffer (the
        // hole closed in session 9 by the in-write mark; that case is ForeignCompletionStressTests).
        bool writerCompletes = completion == Completion.MidRun && writers == 1;
        var logs = new List<long>[Readers.Length];
        var phases = new int[Readers.Length]; // 0 starting, 1 waiting, 2 reading, 3 done
        long readTotal = 0;
        for (int r = 0; r < logs.Length; r++)
        {
            logs[r] = [];
        }

        void Took(int reader, long item)
        {
            logs[reader].Add(item);
            Interlocked.Increment(ref readTotal);
        }

        async Task Write(int w)
        {
            for (long seq = 0; seq < ItemsPerWriter; seq++)
            {
                if (writerCompletes && Volatile.Read(ref readTotal) >= completeAfterReads)
                {
                    buffer.TryComplete(); // the one writer completes: the next write answers Completed
                }

                WriteResult result = await buffer.WriteAsync(ExactlyOnceChecker.Encode(w, seq)).ConfigureAwait(false);
                if (result.Outcome == WriteOutcome.Completed)
                {
                    return;
                }

                Assert.Equal(WriteResult.Accepted, result);
                Volatile.Write(ref accepted[w], seq + 1);
                if ((seq & 15) == 0)
                {
                    await Task.Yield(); // let the readers park and wake now and then
                }
            }

            if (writerCompletes)
            {
                buffer.TryComplete(); // the readers had not reached the mark before the last write
            }
        }

        async Task ReadAll(int r)
        {
            await using IAsyncEnumerator<long> items = buffer.ReadAllAsync().GetAsyncEnumerator();
            while (true)
            {
                Volatile.Write(ref phases[r], 1);
                if (!await items.MoveNextAsync().ConfigureAwait(false))
                {
                    break;
                }

                Volatile.Write(ref phases[r], 2);
                Took(r, items.Current);
            }

            Volatile.Write(ref phases[r], 3);
        }

        async Task WaitToReadLoop(int r)
        {
            while (true)
            {
                Volatile.Write(ref phases[r], 1);
                if (!await buffer.WaitToReadAsync().ConfigureAwait(false))
                {
                    break;
                }

                Volatile.Write(ref phases[r], 2);
                while (buffer.TryRead(out long item))
                {
                    Took(r, item);
                }
            }

            Volatile.Write(ref phases[r], 3);
        }

        void BlockingRead(int r)
        {
            while (true)
            {
                Volatile.Write(ref phases[r], 1);
                if (!buffer.TryRead(out long item, Timeout.InfiniteTimeSpan))
                {
                    break; // only a finished buffer answers false without a deadline
                }

                Volatile.Write(ref phases[r], 2);
                Took(r, item);
            }

            Volatile.Write(ref phases[r], 3);
        }

        Task[] readerTasks = Readers.Select((kind, r) => kind switch
        {
            ReaderKind.ReadAllAsync => Task.Run(() => ReadAll(r)),
            ReaderKind.WaitToReadLoop => Task.Run(() => WaitToReadLoop(r)),
            _ => Task.Factory.StartNew(() => BlockingRead(r), TaskCreationOptions.LongRunning),
        }).ToArray();
        Task[] writerTasks = Enumerable.Range(0, writers).Select(w => Task.Run(() => Write(w))).ToArray();
        Task completer = writerCompletes ? Task.CompletedTask
            : completion == Completion.AtEnd ? Task.WhenAll(writerTasks).ContinueWith(_ => buffer.TryComplete(), TaskScheduler.Default)
            : Task.Factory.StartNew(
                () =>
                {
                    var spinner = default(SpinWait);
                    var waited = Stopwatch.StartNew();
                    while (Volatile.Read(ref readTotal) < completeAfterReads && !writerTasks.All(t => t.IsCompleted) && waited.Elapsed < RoundTimeout)
                    {
                        spinner.SpinOnce();
                    }

                    buffer.TryComplete();
                },
                TaskCreationOptions.LongRunning);

        Task all = Task.WhenAll([.. writerTasks, .. readerTasks, completer, buffer.Completion]);
        if (await Task.WhenAny(all, Task.Delay(RoundTimeout)).ConfigureAwait(false) != all)
        {
            string state = Describe(round, completion, capacity, buffer, writerTasks, readerTasks, phases, logs, accepted, completer);
            buffer.Dispose(); // wakes every parked writer and reader: nothing outlives the test
            Assert.Fail($"round did not finish within {RoundTimeout}: {state}");
        }

        Assert.All((Task[])[.. writerTasks, .. readerTasks, completer], t => Assert.True(t.IsCompletedSuccessfully, t.Exception?.ToString()));
        long read = 0;
        for (int w = 0; w < writers; w++)
        {
            long[] mine = logs.SelectMany(log => log).Where(item => ExactlyOnceChecker.ProducerOf(item) == w)
                .Select(ExactlyOnceChecker.SequenceOf).Order().ToArray();
            Assert.True(
                mine.SequenceEqual(Enumerable.Range(0, (int)accepted[w]).Select(i => (long)i)),
                $"round {round}: writer {w} had 0..{accepted[w] - 1} accepted, {mine.Length} read (a gap or a duplicate)");
            if (completion == Completion.AtEnd)
            {
                Assert.Equal(ItemsPerWriter, accepted[w]);
            }

            read += mine.Length;
        }

        foreach (List<long> log in logs)
        {
            for (int w = 0; w < writers; w++)
            {
                long[] seen = log.Where(item => ExactlyOnceChecker.ProducerOf(item) == w).Select(ExactlyOnceChecker.SequenceOf).ToArray();
                Assert.True(seen.SequenceEqual(seen.Order()), $"round {round}: writer {w}'s items out of order at a reader");
            }
        }

        Assert.Equal(new BackpressureStatistics(read, read, 0, 0, 0, 0), buffer.GetStatistics());
        buffer.Dispose();
        return read;
    }

    /// <summary>Everything a hang needs explained: each task's role, kind, state and progress, and the buffer's waiters.</summary>
    private static string Describe(
        int round, Completion completion, int capacity, BackpressureBuffer<long> buffer, Task[] writerTasks, Task[] readerTasks,
        int[] phases, List<long>[] logs, long[] accepted, Task completer)
    {
        string[] phaseNames = ["starting", "waiting (WaitToReadAsync / MoveNextAsync / blocking TryRead)", "reading", "done"];
        IEnumerable<string> writers = writerTasks.Select((t, w) => $"writer {w}: {t.Status}, accepted {Volatile.Read(ref accepted[w])}");
        IEnumerable<string> readers = readerTasks.Select((t, r) =>
            $"reader {r} ({Readers[r]}): {t.Status}, {phaseNames[Volatile.Read(ref phases[r])]}, read {logs[r].Count}");
        return $"round {round}, capacity {capacity}, completion {completion} ({completer.Status}); " +
            string.Join("; ", writers.Concat(readers)) + $"; stats {buffer.GetStatistics()}; {buffer.DescribeWaitState()}; " +
            string.Join("; ", ((Task[])[.. writerTasks, .. readerTasks, completer]).Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException));
    }
}
