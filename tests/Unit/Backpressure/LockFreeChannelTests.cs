using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The channel contract, pinned by running the same body against the BCL's bounded channel and against
/// <see cref="LockFreeChannel"/> over each of its engines: where both run, they must agree observably.
/// Tests that name no BCL kind cover what the BCL has no twin for (Reject, capacity rounding, drop reasons).
/// </summary>
public sealed class LockFreeChannelTests
{
    private const int Capacity = 4; // a power of two: the BCL and the rounded ring fill at the same count

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static int StressScale => int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) && s > 0 ? s : 1;

    /// <summary>Every implementation: the BCL's (multi and single roles) and ours over each engine.</summary>
    public static TheoryData<string> Kinds => new() { "bcl", "bcl-single", "lf-mpmc", "lf-spsc", "lf-mpsc", "lf-spmc" };

    /// <summary>Our engines only.</summary>
    public static TheoryData<string> LockFreeKinds => new() { "lf-mpmc", "lf-spsc", "lf-mpsc", "lf-spmc" };

    /// <summary>Implementations that can peek: the BCL's bounded channel always, ours with a single reader.</summary>
    public static TheoryData<string> PeekKinds => new() { "bcl", "bcl-single", "lf-spsc", "lf-mpsc" };

    /// <summary>Implementations that allow many writers and many readers.</summary>
    public static TheoryData<string> ConcurrentKinds => new() { "bcl", "lf-mpmc" };

    /// <summary>
    /// The SPSC engine (one writer, one reader, no DropOldest) gets the reader and writer whose Try methods are the ring's
    /// fast paths alone (session 12); every other engine keeps the general ones. The contract tests run the SPSC pair
    /// through every state as "lf-spsc".
    /// </summary>
    [Theory]
    [InlineData(true, true, OverflowPolicy.Wait, true)]
    [InlineData(true, true, OverflowPolicy.Reject, true)]
    [InlineData(true, true, OverflowPolicy.DropIncoming, true)]
    [InlineData(true, true, OverflowPolicy.DropOldest, false)] // DropOldest evicts from the writer: the SPMC engine
    [InlineData(true, false, OverflowPolicy.Wait, false)]
    [InlineData(false, true, OverflowPolicy.Wait, false)]
    [InlineData(false, false, OverflowPolicy.Wait, false)]
    public void CreateBounded_Roles_OnlyTheSpscEngineGetsTheSpscReaderAndWriter(bool singleWriter, bool singleReader, OverflowPolicy mode, bool spsc)
    {
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(
            new LockFreeChannelOptions { Capacity = Capacity, SingleWriter = singleWriter, SingleReader = singleReader, FullMode = mode });

        Assert.Equal(spsc, channel.Writer is LockFree.Backpressure.SpscLockFreeChannelWriter<int>);
        Assert.Equal(spsc, channel.Reader is LockFree.Backpressure.SpscLockFreeChannelReader<int>);
        for (int i = 0; i < Capacity; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.Equal(mode != OverflowPolicy.Wait && mode != OverflowPolicy.Reject, channel.Writer.TryWrite(Capacity)); // full: the drop modes succeed
        Assert.True(channel.Reader.TryRead(out int first));
        Assert.Equal(mode == OverflowPolicy.DropOldest ? 1 : 0, first);
        Assert.True(channel.Writer.TryComplete());
        Assert.False(channel.Writer.TryWrite(-1)); // completed: takes nothing
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TryRead_Empty_ReturnsFalse(string kind)
    {
        Channel<int> channel = Create(kind);

        Assert.False(channel.Reader.TryRead(out _));
        Assert.Equal(0, channel.Reader.Count);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TryWrite_UntilFull_AcceptsCapacityThenReturnsFalse(string kind)
    {
        Channel<int> channel = Create(kind);

        for (int i = 0; i < Capacity; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.False(channel.Writer.TryWrite(99));
        Assert.True(channel.Reader.CanCount);
        Assert.Equal(Capacity, channel.Reader.Count);
        Assert.Equal([0, 1, 2, 3], Drain(channel));
        Assert.Equal(0, channel.Reader.Count);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task WriteAsync_FullUnderWait_WaitsForARead(string kind)
    {
        Channel<int> channel = CreateFull(kind, OverflowPolicy.Wait);

        Task write = channel.Writer.WriteAsync(4).AsTask();
        Assert.False(write.IsCompleted);
        Assert.True(channel.Reader.TryRead(out int first));
        await write.WaitAsync(Timeout);

        Assert.Equal(0, first);
        Assert.Equal([1, 2, 3, 4], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task WaitToWriteAsync_FullUnderWait_WaitsForARead(string kind)
    {
        Channel<int> channel = CreateFull(kind, OverflowPolicy.Wait);

        Task<bool> wait = channel.Writer.WaitToWriteAsync().AsTask();
        Assert.False(wait.IsCompleted);
        Assert.True(channel.Reader.TryRead(out _));

        Assert.True(await wait.WaitAsync(Timeout));
        Assert.True(channel.Writer.TryWrite(4));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task DropIncoming_Full_SucceedsAndDropsTheIncomingItem(string kind)
    {
        var dropped = new List<int>();
        Channel<int> channel = CreateFull(kind, OverflowPolicy.DropIncoming, dropped);

        Assert.True(channel.Writer.TryWrite(10));
        Assert.True(await channel.Writer.WaitToWriteAsync().AsTask().WaitAsync(Timeout));
        ValueTask write = channel.Writer.WriteAsync(11);
        Assert.True(write.IsCompletedSuccessfully);

        Assert.Equal([10, 11], dropped);
        Assert.Equal([0, 1, 2, 3], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task DropOldest_Full_SucceedsAndEvictsTheOldestItem(string kind)
    {
        var dropped = new List<int>();
        Channel<int> channel = CreateFull(kind, OverflowPolicy.DropOldest, dropped);

        Assert.True(channel.Writer.TryWrite(10));
        ValueTask write = channel.Writer.WriteAsync(11);
        Assert.True(write.IsCompletedSuccessfully);
        await write;

        Assert.Equal([0, 1], dropped);
        Assert.Equal(Capacity, channel.Reader.Count);
        Assert.Equal([2, 3, 10, 11], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(LockFreeKinds))]
    public void DropCallback_ReportsTheReason(string kind)
    {
        var reasons = new List<(int Item, DropReason Reason)>();
        foreach (OverflowPolicy mode in new[] { OverflowPolicy.DropIncoming, OverflowPolicy.DropOldest })
        {
            Channel<int> channel = LockFreeChannel.CreateBounded<int>(Options(kind, 1, mode), (item, reason) => reasons.Add((item, reason)));
            Assert.True(channel.Writer.TryWrite(1));
            Assert.True(channel.Writer.TryWrite(2));
        }

        Assert.Equal([(2, DropReason.Incoming), (1, DropReason.Oldest)], reasons);
    }

    [Theory]
    [MemberData(nameof(LockFreeKinds))]
    public async Task Reject_Full_TryWriteFalseAndWriteAsyncThrowsWithoutWriting(string kind)
    {
        Channel<int> channel = CreateFull(kind, OverflowPolicy.Reject);

        Assert.False(channel.Writer.TryWrite(4));
        ValueTask write = channel.Writer.WriteAsync(5);
        Assert.True(write.IsFaulted);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await write);

        Assert.Equal([0, 1, 2, 3], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(LockFreeKinds))]
    public async Task Reject_WaitToWriteAsyncOnFull_WaitsForRoom(string kind)
    {
        Channel<int> channel = CreateFull(kind, OverflowPolicy.Reject);

        Task<bool> wait = channel.Writer.WaitToWriteAsync().AsTask();
        Assert.False(wait.IsCompleted);
        Assert.True(channel.Reader.TryRead(out _));

        Assert.True(await wait.WaitAsync(Timeout));
        Assert.True(channel.Writer.TryWrite(4));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await channel.Writer.WriteAsync(0)); // full again
        Assert.Equal([1, 2, 3, 4], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(LockFreeKinds))]
    public void Capacity_IsRoundedUpToAPowerOfTwo(string kind)
    {
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(Options(kind, 3, OverflowPolicy.Wait));

        for (int i = 0; i < 4; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.False(channel.Writer.TryWrite(4));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task WriteAsyncAndReadAsync_WhenPossible_CompleteSynchronously(string kind)
    {
        Channel<int> channel = Create(kind);

        ValueTask write = channel.Writer.WriteAsync(1);
        Assert.True(write.IsCompletedSuccessfully);
        await write;
        Assert.True(channel.Writer.WaitToWriteAsync().IsCompletedSuccessfully);
        Assert.True(channel.Reader.WaitToReadAsync().IsCompletedSuccessfully);
        ValueTask<int> read = channel.Reader.ReadAsync();
        Assert.True(read.IsCompletedSuccessfully);
        Assert.Equal(1, await read);
    }

    [Theory]
    [MemberData(nameof(PeekKinds))]
    public void TryPeek_SingleReader_ReturnsTheHeadWithoutRemovingIt(string kind)
    {
        Channel<int> channel = Create(kind);
        Assert.True(channel.Reader.CanPeek);
        Assert.False(channel.Reader.TryPeek(out _));

        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Writer.TryWrite(2));

        Assert.True(channel.Reader.TryPeek(out int head));
        Assert.Equal(1, head);
        Assert.True(channel.Reader.TryPeek(out head));
        Assert.Equal(1, head);
        Assert.Equal(2, channel.Reader.Count);
        Assert.Equal([1, 2], Drain(channel));
        Assert.False(channel.Reader.TryPeek(out _));
    }

    [Theory]
    [InlineData("lf-mpmc", OverflowPolicy.Wait)]
    [InlineData("lf-spmc", OverflowPolicy.Wait)]
    [InlineData("lf-spsc", OverflowPolicy.DropOldest)]
    [InlineData("lf-mpsc", OverflowPolicy.DropOldest)]
    public void TryPeek_MultiConsumerEngine_CannotPeek(string kind, OverflowPolicy mode)
    {
        Channel<int> channel = Create(kind, Capacity, mode);
        Assert.True(channel.Writer.TryWrite(1));

        Assert.False(channel.Reader.CanPeek);
        Assert.False(channel.Reader.TryPeek(out _));
        Assert.Equal([1], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task WaitToReadAsync_Empty_WakesOnWrite(string kind)
    {
        Channel<int> channel = Create(kind);

        Task<bool> wait = channel.Reader.WaitToReadAsync().AsTask();
        Assert.False(wait.IsCompleted);
        Assert.True(channel.Writer.TryWrite(7));

        Assert.True(await wait.WaitAsync(Timeout));
        Assert.True(channel.Reader.TryRead(out int item));
        Assert.Equal(7, item);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ReadAsync_Empty_WakesOnWrite(string kind)
    {
        Channel<int> channel = Create(kind);

        Task<int> read = channel.Reader.ReadAsync().AsTask();
        Assert.False(read.IsCompleted);
        await channel.Writer.WriteAsync(7);

        Assert.Equal(7, await read.WaitAsync(Timeout));
        Assert.Equal(0, channel.Reader.Count);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Complete_WithItems_RejectsWritesDrainsReadsThenCloses(string kind)
    {
        Channel<int> channel = Create(kind);
        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Writer.TryWrite(2));

        channel.Writer.Complete();

        Assert.False(channel.Writer.TryWrite(3));
        ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await channel.Writer.WriteAsync(3));
        Assert.Null(closed.InnerException);
        Assert.False(await channel.Writer.WaitToWriteAsync());
        Assert.False(channel.Reader.Completion.IsCompleted); // not drained yet

        Assert.True(await channel.Reader.WaitToReadAsync());
        Assert.Equal(1, await channel.Reader.ReadAsync());
        Assert.True(channel.Reader.TryRead(out int second));
        Assert.Equal(2, second);

        Assert.False(await channel.Reader.WaitToReadAsync());
        closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await channel.Reader.ReadAsync());
        Assert.Null(closed.InnerException);
        Assert.False(channel.Reader.TryRead(out _));
        await channel.Reader.Completion.WaitAsync(Timeout);
        Assert.True(channel.Reader.Completion.IsCompletedSuccessfully);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Complete_WithError_SurfacesTheErrorEverywhere(string kind)
    {
        Channel<int> channel = Create(kind);
        Assert.True(channel.Writer.TryWrite(1));
        var error = new FormatException("boom");

        channel.Writer.Complete(error);

        ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await channel.Writer.WriteAsync(2));
        Assert.Same(error, closed.InnerException);
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await channel.Writer.WaitToWriteAsync()));
        Assert.Equal(1, await channel.Reader.ReadAsync()); // what was written is still read

        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await channel.Reader.WaitToReadAsync()));
        closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await channel.Reader.ReadAsync());
        Assert.Same(error, closed.InnerException);
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(() => channel.Reader.Completion.WaitAsync(Timeout)));
        Assert.True(channel.Reader.Completion.IsFaulted);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Complete_WithCancellation_CompletionAndReadsAreCanceled(string kind)
    {
        Channel<int> channel = Create(kind);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var canceled = new OperationCanceledException(cts.Token);

        channel.Writer.Complete(canceled);

        ValueTask write = channel.Writer.WriteAsync(1);
        Assert.True(write.IsFaulted); // the BCL faults writes with the cancellation itself, not a ChannelClosedException
        Assert.Same(canceled, await Assert.ThrowsAsync<OperationCanceledException>(async () => await write));
        Assert.True(channel.Reader.ReadAsync().IsCanceled);
        Assert.Same(canceled, await Assert.ThrowsAsync<OperationCanceledException>(async () => await channel.Reader.WaitToReadAsync()));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => channel.Reader.Completion.WaitAsync(Timeout));
        Assert.True(channel.Reader.Completion.IsCanceled);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Complete_WakesWaitingReadersAndWriters(string kind)
    {
        Channel<int> empty = Create(kind);
        Task<bool> waitToRead = empty.Reader.WaitToReadAsync().AsTask();
        Task<int> read = empty.Reader.ReadAsync().AsTask();
        Channel<int> full = CreateFull(kind, OverflowPolicy.Wait);
        Task<bool> waitToWrite = full.Writer.WaitToWriteAsync().AsTask();
        Task write = full.Writer.WriteAsync(4).AsTask();
        Assert.False(waitToRead.IsCompleted || read.IsCompleted || waitToWrite.IsCompleted || write.IsCompleted);

        empty.Writer.Complete();
        full.Writer.Complete();

        Assert.False(await waitToRead.WaitAsync(Timeout));
        await Assert.ThrowsAsync<ChannelClosedException>(() => read.WaitAsync(Timeout));
        Assert.False(await waitToWrite.WaitAsync(Timeout));
        await Assert.ThrowsAsync<ChannelClosedException>(() => write.WaitAsync(Timeout));
        Assert.Equal([0, 1, 2, 3], Drain(full)); // the waiting write left nothing
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task TryComplete_Twice_SecondReturnsFalseAndKeepsTheFirstError(string kind)
    {
        Channel<int> channel = Create(kind);
        var first = new FormatException("first");

        Assert.True(channel.Writer.TryComplete(first));
        Assert.False(channel.Writer.TryComplete(new TimeoutException("second")));
        Assert.False(channel.Writer.TryComplete());
        Assert.Throws<ChannelClosedException>(() => channel.Writer.Complete());

        Assert.Same(first, await Assert.ThrowsAsync<FormatException>(() => channel.Reader.Completion.WaitAsync(Timeout)));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void PreCancelledToken_EveryAsyncCallIsCanceled(string kind)
    {
        Channel<int> channel = Create(kind);
        Assert.True(channel.Writer.TryWrite(1)); // each call could succeed at once: cancellation still wins
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        Assert.True(channel.Writer.WriteAsync(2, cts.Token).IsCanceled);
        Assert.True(channel.Writer.WaitToWriteAsync(cts.Token).IsCanceled);
        Assert.True(channel.Reader.ReadAsync(cts.Token).IsCanceled);
        Assert.True(channel.Reader.WaitToReadAsync(cts.Token).IsCanceled);

        Assert.Equal([1], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Cancel_WaitingReads_CanceledAndLeaveNoTrace(string kind)
    {
        Channel<int> channel = Create(kind);
        using var cts = new CancellationTokenSource();
        Task<int> read = channel.Reader.ReadAsync(cts.Token).AsTask();
        Task<bool> waitToRead = channel.Reader.WaitToReadAsync(cts.Token).AsTask();
        Assert.False(read.IsCompleted || waitToRead.IsCompleted);

        cts.Cancel();

        await AssertCanceled(read, cts.Token);
        await AssertCanceled(waitToRead, cts.Token);
        Assert.True(channel.Writer.TryWrite(5)); // the cancelled read took nothing
        Assert.Equal(5, await channel.Reader.ReadAsync().AsTask().WaitAsync(Timeout));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Cancel_WaitingWrites_CanceledAndLeaveNoTrace(string kind)
    {
        Channel<int> channel = CreateFull(kind, OverflowPolicy.Wait);
        using var cts = new CancellationTokenSource();
        Task write = channel.Writer.WriteAsync(4, cts.Token).AsTask();
        Task<bool> waitToWrite = channel.Writer.WaitToWriteAsync(cts.Token).AsTask();
        Assert.False(write.IsCompleted || waitToWrite.IsCompleted);

        cts.Cancel();

        await AssertCanceled(write, cts.Token);
        await AssertCanceled(waitToWrite, cts.Token);
        Assert.Equal(Capacity, channel.Reader.Count);
        Assert.Equal([0, 1, 2, 3], Drain(channel)); // the cancelled write wrote nothing
        Assert.True(channel.Writer.TryWrite(6)); // and holds no room
        Assert.Equal([6], Drain(channel));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ReadAllAsync_DrainsEverythingInOrder(string kind)
    {
        Channel<int> channel = Create(kind);
        Task producer = Task.Run(async () =>
        {
            for (int i = 0; i < 100; i++)
            {
                await channel.Writer.WriteAsync(i);
            }

            channel.Writer.Complete();
        });

        var items = new List<int>();
        await foreach (int item in channel.Reader.ReadAllAsync())
        {
            items.Add(item);
        }

        await producer.WaitAsync(Timeout);
        Assert.Equal(Enumerable.Range(0, 100), items);
        await channel.Reader.Completion.WaitAsync(Timeout);
    }

    [Theory]
    [MemberData(nameof(ConcurrentKinds))]
    public async Task TwoWritersTwoReaders_EveryItemExactlyOnce(string kind)
    {
        int perWriter = 20_000 * StressScale; // LOCKFREE_STRESS_SCALE=N for a deeper run
        Channel<int> channel = Create(kind);
        Task[] writers = Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            for (int i = 0; i < perWriter; i++)
            {
                await channel.Writer.WriteAsync((w * perWriter) + i);
            }
        })).ToArray();
        Task<List<int>>[] readers = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            var seen = new List<int>();
            await foreach (int item in channel.Reader.ReadAllAsync())
            {
                seen.Add(item);
            }

            return seen;
        })).ToArray();

        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30 * StressScale));
        channel.Writer.Complete();
        List<int>[] seen = await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(30 * StressScale));

        int[] all = seen.SelectMany(s => s).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 2 * perWriter), all);
        foreach (List<int> reader in seen) // each writer's items reach each reader in the order written
        {
            Assert.True(reader.Where(x => x < perWriter).SequenceEqual(reader.Where(x => x < perWriter).Order()));
            Assert.True(reader.Where(x => x >= perWriter).SequenceEqual(reader.Where(x => x >= perWriter).Order()));
        }

        await channel.Reader.Completion.WaitAsync(Timeout);
    }

    [Fact]
    public void CreateBounded_NullOptions_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => LockFreeChannel.CreateBounded<int>(null!));
        Assert.Throws<ArgumentNullException>(() => LockFreeChannel.CreateBounded<int>(null!, (_, _) => { }));
        Assert.Throws<ArgumentNullException>(() => LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, TimeProvider = null! }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData((1 << 30) + 1)]
    [InlineData(int.MaxValue)]
    public void CreateBounded_CapacityOutOfRange_Throws(int capacity)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = capacity }));
    }

    [Fact]
    public void CreateBounded_UndefinedFullMode_ThrowsOutOfRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 4, FullMode = (OverflowPolicy)42 }));
    }

    private static async Task AssertCanceled(Task task, CancellationToken token)
    {
        OperationCanceledException canceled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(Timeout));
        Assert.Equal(token, canceled.CancellationToken);
        Assert.True(task.IsCanceled);
    }

    private static List<int> Drain(Channel<int> channel)
    {
        var items = new List<int>();
        while (channel.Reader.TryRead(out int item))
        {
            items.Add(item);
        }

        return items;
    }

    private static Channel<int> CreateFull(string kind, OverflowPolicy mode, List<int>? dropped = null)
    {
        Channel<int> channel = Create(kind, Capacity, mode, dropped);
        for (int i = 0; i < Capacity; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        return channel;
    }

    private static Channel<int> Create(string kind, int capacity = Capacity, OverflowPolicy mode = OverflowPolicy.Wait, List<int>? dropped = null)
    {
        Action<int>? record = dropped is null ? null : item =>
        {
            lock (dropped)
            {
                dropped.Add(item);
            }
        };

        if (!kind.StartsWith("bcl", StringComparison.Ordinal))
        {
            return LockFreeChannel.CreateBounded<int>(Options(kind, capacity, mode), record is null ? null : (item, _) => record(item));
        }

        bool single = kind == "bcl-single";
        var options = new BoundedChannelOptions(capacity)
        {
            SingleReader = single,
            SingleWriter = single,
            FullMode = mode switch
            {
                OverflowPolicy.Wait => BoundedChannelFullMode.Wait,
                OverflowPolicy.DropIncoming => BoundedChannelFullMode.DropWrite,
                OverflowPolicy.DropOldest => BoundedChannelFullMode.DropOldest,
                _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "No BCL twin."),
            },
        };
        return Channel.CreateBounded(options, record);
    }

    private static LockFreeChannelOptions Options(string kind, int capacity, OverflowPolicy mode) => new()
    {
        Capacity = capacity,
        FullMode = mode,
        SingleWriter = kind is "lf-spsc" or "lf-spmc",
        SingleReader = kind is "lf-spsc" or "lf-mpsc",
    };
}
