using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Differential tests: each scenario runs on <c>Channel.CreateBounded</c> and on <see cref="LockFreeChannel"/> with the
/// same roles (the four SingleReader/SingleWriter combinations) and full mode, and records what a caller observes
/// (return values, task states, exception types and their inner exceptions, item order) as a transcript; the two
/// transcripts must be equal. Every wait is bounded; a wait that runs out is recorded, so a hang shows as a difference.
/// </summary>
public sealed partial class LockFreeChannelDifferentialTests
{
    private const int Capacity = 4; // a power of two: the BCL and the rounded ring fill at the same count

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static int StressScale => int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) && s > 0 ? s : 1;

    private static readonly TimeSpan LongTimeout = TimeSpan.FromSeconds(30); // the real-thread test: generous on a loaded machine

    /// <summary>The four role combinations: (SingleReader, SingleWriter).</summary>
    public static TheoryData<bool, bool> Roles => new() { { false, false }, { false, true }, { true, false }, { true, true } };

    /// <summary>The role combinations with each full mode that has a BCL twin.</summary>
    public static TheoryData<bool, bool, OverflowPolicy> RolesAndModes
    {
        get
        {
            var data = new TheoryData<bool, bool, OverflowPolicy>();
            foreach (OverflowPolicy mode in new[] { OverflowPolicy.Wait, OverflowPolicy.DropIncoming, OverflowPolicy.DropOldest })
            {
                foreach ((bool reader, bool writer) in new[] { (false, false), (false, true), (true, false), (true, true) })
                {
                    data.Add(reader, writer, mode);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Roles))]
    public Task WaitToWriteAsync_TwoWaitersOneRead_BothWake(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Fill(channel);
            Task<bool> first = channel.Writer.WaitToWriteAsync().AsTask();
            Task<bool> second = channel.Writer.WaitToWriteAsync().AsTask();
            log.Add($"read {channel.Reader.TryRead(out int item)} {item}");
            await log.Outcome("first", first);
            await log.Outcome("second", second);
            log.Add($"count {channel.Reader.Count}");
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task WaitToWriteAsyncThenWriteAsync_OneRead_TheWriteCompletes(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Fill(channel);
            Task<bool> probe = channel.Writer.WaitToWriteAsync().AsTask();
            Task write = channel.Writer.WriteAsync(4).AsTask();
            log.Add($"read {channel.Reader.TryRead(out int item)} {item}");
            await log.Outcome("write", write); // the probe's caller writes nothing: the room is the parked write's
            log.Add($"items {string.Join(",", Drain(channel))}");
            await log.Outcome("probe", probe); // room again now (the BCL woke it only now; ours at the first read, see docs)
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task WaitToReadAsync_CompletedWithCancellationWhileWaiting_SameState(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Task<bool> waitToRead = channel.Reader.WaitToReadAsync().AsTask();
            Task<int> read = channel.Reader.ReadAsync().AsTask();
            Fill(channel, 0);
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            channel.Writer.Complete(new OperationCanceledException(cts.Token));
            await log.Outcome("waitToRead", waitToRead);
            await log.Outcome("read", read);
            await log.Outcome("completion", channel.Reader.Completion);
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task Writers_CompletedWithCancellationWhileWaiting_SameFailures(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Fill(channel);
            Task<bool> waitToWrite = channel.Writer.WaitToWriteAsync().AsTask();
            Task write = channel.Writer.WriteAsync(9).AsTask();
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            channel.Writer.Complete(new OperationCanceledException(cts.Token));
            await log.Outcome("waitToWrite", waitToWrite);
            await log.Outcome("write", write);
            await log.Outcome("waitToWriteAfter", channel.Writer.WaitToWriteAsync().AsTask());
            await log.Outcome("writeAfter", channel.Writer.WriteAsync(1).AsTask());
            log.Add($"items {string.Join(",", Drain(channel))}");
            await log.Outcome("completion", channel.Reader.Completion);
            await log.Outcome("readAfter", channel.Reader.ReadAsync().AsTask());
            await log.Outcome("waitToReadAfter", channel.Reader.WaitToReadAsync().AsTask());
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task ReadAsync_DrainedAfterCancellationWithoutToken_SameCancellation(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Fill(channel, 1);
            channel.Writer.Complete(new OperationCanceledException("stopped")); // a cancellation whose token is not cancelled
            await log.Outcome("read", channel.Reader.ReadAsync().AsTask());
            await log.Outcome("readAfter", channel.Reader.ReadAsync().AsTask());
            await log.Outcome("completion", channel.Reader.Completion);
            await log.Outcome("writeAfter", channel.Writer.WriteAsync(1).AsTask());
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task Waiters_CompletedWithErrorWhileWaiting_SameFailures(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Task<bool> waitToRead = channel.Reader.WaitToReadAsync().AsTask();
            Task<int> read = channel.Reader.ReadAsync().AsTask();
            channel.Writer.Complete(new FormatException("boom"));
            await log.Outcome("waitToRead", waitToRead);
            await log.Outcome("read", read);
            await log.Outcome("completion", channel.Reader.Completion);
            await log.Outcome("readAfter", channel.Reader.ReadAsync().AsTask());
            await log.Outcome("waitToReadAfter", channel.Reader.WaitToReadAsync().AsTask());
            await log.Outcome("writeAfter", channel.Writer.WriteAsync(1).AsTask());
            await log.Outcome("waitToWriteAfter", channel.Writer.WaitToWriteAsync().AsTask());
            log.Add($"tryWrite {channel.Writer.TryWrite(1)} tryComplete {channel.Writer.TryComplete()}");
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task Writers_CompletedWithErrorWhileWaiting_SameFailures(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Fill(channel);
            Task<bool> waitToWrite = channel.Writer.WaitToWriteAsync().AsTask();
            Task write = channel.Writer.WriteAsync(9).AsTask();
            channel.Writer.Complete(new FormatException("boom"));
            await log.Outcome("waitToWrite", waitToWrite);
            await log.Outcome("write", write);
            log.Add($"completion done {channel.Reader.Completion.IsCompleted}");
            await log.Outcome("waitToRead", channel.Reader.WaitToReadAsync().AsTask());
            log.Add($"items {string.Join(",", Drain(channel))}");
            await log.Outcome("completion", channel.Reader.Completion);
            await log.Outcome("readAfter", channel.Reader.ReadAsync().AsTask());
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task Cancel_OneOfTwoWaitingReaders_TheOtherGetsTheItem(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            using var cts = new CancellationTokenSource();
            Task<int> canceled = channel.Reader.ReadAsync(cts.Token).AsTask();
            Task<int> other = channel.Reader.ReadAsync().AsTask();
            cts.Cancel();
            await log.Outcome("canceled", canceled);
            log.Add($"write {channel.Writer.TryWrite(7)}");
            await log.Outcome("other", other);
            log.Add($"count {channel.Reader.Count}");
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task Cancel_FirstOfTwoWaitingWriters_OneReadLetsTheSecondWrite(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Fill(channel);
            using var cts = new CancellationTokenSource();
            Task canceled = channel.Writer.WriteAsync(8, cts.Token).AsTask();
            Task other = channel.Writer.WriteAsync(9).AsTask();
            cts.Cancel();
            await log.Outcome("canceled", canceled);
            log.Add($"read {channel.Reader.TryRead(out int item)} {item}");
            await log.Outcome("other", other);
            log.Add($"items {string.Join(",", Drain(channel))}");
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task ReadAllAsync_CanceledWhileWaiting_SameException(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            using var cts = new CancellationTokenSource();
            Task<List<int>> all = ReadAll(channel, cts.Token);
            Fill(channel, 2);
            cts.Cancel();
            await log.Outcome("all", all);
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task ReadAllAsync_CompletedWithError_ThrowsTheErrorAfterTheItems(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            var seen = new List<int>();
            Fill(channel, 3);
            channel.Writer.Complete(new FormatException("boom"));
            try
            {
                await foreach (int item in channel.Reader.ReadAllAsync())
                {
                    seen.Add(item);
                }

                log.Add("ended");
            }
            catch (Exception e)
            {
                log.Add($"threw {e.GetType().Name}");
            }

            log.Add($"items {string.Join(",", seen)}");
        });

    [Theory]
    [MemberData(nameof(RolesAndModes))]
    public Task Complete_WithItemsBuffered_EveryMemberAgrees(bool singleReader, bool singleWriter, OverflowPolicy mode) =>
        AssertSameAsBcl(singleReader, singleWriter, mode, async (channel, log) =>
        {
            Fill(channel);
            log.Add($"overflow write {channel.Writer.TryWrite(10)}");
            log.Add($"tryComplete {channel.Writer.TryComplete()}");
            log.Add($"tryWrite {channel.Writer.TryWrite(11)} count {channel.Reader.Count}");
            await log.Outcome("waitToWrite", channel.Writer.WaitToWriteAsync().AsTask());
            await log.Outcome("write", channel.Writer.WriteAsync(12).AsTask());
            log.Add($"completion {channel.Reader.Completion.Status}");
            await log.Outcome("waitToRead", channel.Reader.WaitToReadAsync().AsTask());
            await log.Outcome("read", channel.Reader.ReadAsync().AsTask());
            log.Add($"items {string.Join(",", Drain(channel))}");
            await log.Outcome("completion", channel.Reader.Completion);
            await log.Outcome("waitToReadAfter", channel.Reader.WaitToReadAsync().AsTask());
            await log.Outcome("readAfter", channel.Reader.ReadAsync().AsTask());
            log.Add($"tryRead {channel.Reader.TryRead(out _)} count {channel.Reader.Count}");
        });

    [Theory]
    [MemberData(nameof(RolesAndModes))]
    public Task Overflow_WithWaitingReader_SameItemsAndResults(bool singleReader, bool singleWriter, OverflowPolicy mode) =>
        AssertSameAsBcl(singleReader, singleWriter, mode, async (channel, log) =>
        {
            Task<int> read = channel.Reader.ReadAsync().AsTask();
            log.Add($"write {channel.Writer.TryWrite(100)}");
            await log.Outcome("read", read);
            for (int i = 0; i < Capacity + 3; i++)
            {
                log.Add($"tryWrite {i} {channel.Writer.TryWrite(i)}");
            }

            Task write = channel.Writer.WriteAsync(50).AsTask();
            log.Add($"count {channel.Reader.Count}");
            log.Add($"read1 {channel.Reader.TryRead(out int item)} {item}");
            await log.Outcome("write", write);
            log.Add($"items {string.Join(",", Drain(channel))}");
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task WaitToReadAsync_ThreeWaitersOneWrite_AllWake(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Task<bool>[] waits = Enumerable.Range(0, 3).Select(_ => channel.Reader.WaitToReadAsync().AsTask()).ToArray();
            log.Add($"write {channel.Writer.TryWrite(1)}");
            for (int i = 0; i < waits.Length; i++)
            {
                await log.Outcome($"wait {i}", waits[i]);
            }

            log.Add($"items {string.Join(",", Drain(channel))}");
        });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WaitToWriteAsync_ProbesThatGiveUpBesideParkedWrites_EveryWriteLands(bool singleReader)
    {
        // A writer that waits with WaitToWriteAsync and then does not write (a probe that gives up) beside one
        // that parks in WriteAsync, and a reader draining one item at a time: no read's wake-up may be spent on the
        // probe alone, so every WriteAsync lands. Run on both implementations; each must move every item.
        int items = 2_000 * StressScale; // LOCKFREE_STRESS_SCALE=N for a deeper run
        foreach (bool bcl in new[] { true, false })
        {
            Channel<int> channel = bcl
                ? Channel.CreateBounded<int>(new BoundedChannelOptions(1) { SingleReader = singleReader })
                : LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, SingleReader = singleReader });
            using var stop = new CancellationTokenSource();
            Task prober = Task.Run(async () =>
            {
                try
                {
                    while (await channel.Writer.WaitToWriteAsync(stop.Token).ConfigureAwait(false))
                    {
                        await Task.Yield(); // gives up: writes nothing
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
            Task writer = Task.Run(async () =>
            {
                for (int i = 0; i < items; i++)
                {
                    await channel.Writer.WriteAsync(i).ConfigureAwait(false);
                }
            });
            var seen = new List<int>();
            while (seen.Count < items)
            {
                Task<int> read = channel.Reader.ReadAsync().AsTask();
                Assert.True(
                    await Task.WhenAny(read, Task.Delay(LongTimeout)) == read,
                    $"{(bcl ? "bcl" : "ours")} (single reader {singleReader}): read {seen.Count} still waiting; writer {writer.Status}, prober {prober.Status}, count {channel.Reader.Count}");
                seen.Add(await read);
            }

            await writer.WaitAsync(LongTimeout);
            stop.Cancel();
            await prober.WaitAsync(LongTimeout);
            Assert.Equal(Enumerable.Range(0, items), seen);
        }
    }

    [Theory]
    [MemberData(nameof(RolesAndModes))]
    public Task ParkedReaders_WriteThenComplete_TheItemIsReadThenClosed(bool singleReader, bool singleWriter, OverflowPolicy mode) =>
        AssertSameAsBcl(singleReader, singleWriter, mode, async (channel, log) =>
        {
            Task<int> read = channel.Reader.ReadAsync().AsTask();
            log.Add($"write {channel.Writer.TryWrite(5)} complete {channel.Writer.TryComplete()}");
            await log.Outcome("read", read);
            await log.Outcome("readAfter", channel.Reader.ReadAsync().AsTask());
            await log.Outcome("completion", channel.Reader.Completion);
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task ParkedReaders_TwoReadAsyncThenComplete_BothClosed(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            Task<int> first = channel.Reader.ReadAsync().AsTask();
            Task<int> second = channel.Reader.ReadAsync().AsTask();
            Task<bool> wait = channel.Reader.WaitToReadAsync().AsTask();
            channel.Writer.Complete();
            await log.Outcome("first", first);
            await log.Outcome("second", second);
            await log.Outcome("wait", wait);
            await log.Outcome("completion", channel.Reader.Completion);
            log.Add($"count {channel.Reader.Count} canCount {channel.Reader.CanCount}");
        });

    [Theory]
    [MemberData(nameof(RolesAndModes))]
    public Task CapacityOne_WritesReadsAndWaits_SameResults(bool singleReader, bool singleWriter, OverflowPolicy mode) =>
        AssertSameAsBcl(
            singleReader,
            singleWriter,
            mode,
            async (channel, log) =>
            {
                log.Add($"w1 {channel.Writer.TryWrite(1)} w2 {channel.Writer.TryWrite(2)} count {channel.Reader.Count}");
                Task<bool> waitToWrite = channel.Writer.WaitToWriteAsync().AsTask();
                log.Add($"read {channel.Reader.TryRead(out int item)} {item}");
                await log.Outcome("waitToWrite", waitToWrite);
                await log.Outcome("write", channel.Writer.WriteAsync(3).AsTask());
                await log.Outcome("waitToRead", channel.Reader.WaitToReadAsync().AsTask());
                await log.Outcome("read", channel.Reader.ReadAsync().AsTask());
                Task<int> parked = channel.Reader.ReadAsync().AsTask();
                log.Add($"w4 {channel.Writer.TryWrite(4)}");
                await log.Outcome("parked", parked); // not written to at once: the BCL hands 4 over, ours wakes the reader (see docs)
                log.Add($"w5 {channel.Writer.TryWrite(5)} w6 {channel.Writer.TryWrite(6)} items {string.Join(",", Drain(channel))}");
            },
            capacity: 1);

    [Theory]
    [MemberData(nameof(Roles))]
    public Task Cancel_EveryParkedCall_SameExceptionTypeAndToken(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            using var readCts = new CancellationTokenSource();
            Task<int> read = channel.Reader.ReadAsync(readCts.Token).AsTask();
            Task<bool> waitToRead = channel.Reader.WaitToReadAsync(readCts.Token).AsTask();
            readCts.Cancel();
            await LogCanceled(log, "read", read, readCts.Token);
            await LogCanceled(log, "waitToRead", waitToRead, readCts.Token);

            Fill(channel);
            using var writeCts = new CancellationTokenSource();
            Task write = channel.Writer.WriteAsync(9, writeCts.Token).AsTask();
            Task<bool> waitToWrite = channel.Writer.WaitToWriteAsync(writeCts.Token).AsTask();
            writeCts.Cancel();
            await LogCanceled(log, "write", write, writeCts.Token);
            await LogCanceled(log, "waitToWrite", waitToWrite, writeCts.Token);

            using var directCts = new CancellationTokenSource(); // awaited as ValueTasks, not through AsTask
            ValueTask<bool> directWaitToWrite = channel.Writer.WaitToWriteAsync(directCts.Token);
            ValueTask directWrite = channel.Writer.WriteAsync(10, directCts.Token);
            directCts.Cancel();
            log.Add("directWaitToWrite: " + await CanceledDirectly(directWaitToWrite, directCts.Token).WaitAsync(Timeout));
            log.Add("directWrite: " + await CanceledDirectly(directWrite, directCts.Token).WaitAsync(Timeout));

            using var preCts = new CancellationTokenSource();
            preCts.Cancel();
            await LogCanceled(log, "preWrite", channel.Writer.WriteAsync(9, preCts.Token).AsTask(), preCts.Token);
            await LogCanceled(log, "preRead", channel.Reader.ReadAsync(preCts.Token).AsTask(), preCts.Token);
            log.Add($"items {string.Join(",", Drain(channel))}");
        });

    private static async Task<string> CanceledDirectly(ValueTask<bool> wait, CancellationToken token)
    {
        try
        {
            return $"completed {await wait}";
        }
        catch (OperationCanceledException e)
        {
            return $"{e.GetType().Name} own token {e.CancellationToken == token}";
        }
    }

    private static async Task<string> CanceledDirectly(ValueTask write, CancellationToken token)
    {
        try
        {
            await write;
            return "completed";
        }
        catch (OperationCanceledException e)
        {
            return $"{e.GetType().Name} own token {e.CancellationToken == token}";
        }
    }

    private static async Task LogCanceled(Transcript log, string name, Task task, CancellationToken token)
    {
        try
        {
            await task.WaitAsync(Timeout);
            log.Add($"{name}: {task.Status}");
        }
        catch (OperationCanceledException e)
        {
            log.Add($"{name}: {task.Status} {e.GetType().Name} own token {e.CancellationToken == token}");
        }
    }
}
