using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A throwing <c>ItemDropped</c> or <c>PressureChanged</c> handler never turns a write (or a read) into an exception:
/// the call answers its true outcome, the handler's exception is counted (<c>CallbackFailures</c>) and handed to
/// <c>CallbackFailed</c>. Before, the write threw after its item was accepted or its drop counted, so a caller that
/// retried on the exception wrote twice. Every path: TryWrite, Write, WriteAsync (at once and after parking), TryRead,
/// ReadAsync, and the channel adapter's TryWrite and WriteAsync.
/// </summary>
public sealed class BackpressureCallbackFailureTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static BackpressureBuffer<int> Create(OverflowPolicy mode, List<int> dropped, int capacity = 2, int high = 0, int low = 0) =>
        new(new BackpressureBufferOptions<int>
        {
            Capacity = capacity,
            FullMode = mode,
            HighWatermark = high,
            LowWatermark = low,
            ItemDropped = (item, _) =>
            {
                lock (dropped)
                {
                    dropped.Add(item);
                }

                throw new FormatException($"dropped {item}");
            },
        });

    private static List<int> Drain(BackpressureBuffer<int> buffer)
    {
        var items = new List<int>();
        while (buffer.TryRead(out int item))
        {
            items.Add(item);
        }

        return items;
    }

    public static TheoryData<string> WritePaths => new() { "TryWrite", "Write", "WriteAsync" };

    private static async Task<WriteResult> WriteBy(string path, BackpressureBuffer<int> buffer, int item) => path switch
    {
        "TryWrite" => buffer.TryWrite(item),
        "Write" => buffer.Write(item, Generous),
        _ => await buffer.WriteAsync(item).AsTask().WaitAsync(Generous),
    };

    [Theory]
    [MemberData(nameof(WritePaths))]
    public async Task Write_DropIncomingHandlerThrows_AnswersDroppedIncomingOnce(string path)
    {
        var dropped = new List<int>();
        using BackpressureBuffer<int> buffer = Create(OverflowPolicy.DropIncoming, dropped);
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(2));
        var failures = new List<Exception>();
        buffer.CallbackFailed += (_, e) => failures.Add(e);

        WriteResult result = await WriteBy(path, buffer, 3); // before the fix: FormatException, the drop already counted

        Assert.Equal(WriteResult.DroppedIncoming, result);
        Assert.Equal([3], dropped);
        Assert.Equal(1, buffer.GetStatistics().DroppedIncoming);
        Assert.Equal(1, buffer.CallbackFailures);
        Assert.IsType<FormatException>(Assert.Single(failures));
        Assert.Equal([1, 2], Drain(buffer));
    }

    [Theory]
    [MemberData(nameof(WritePaths))]
    public async Task Write_DropOldestHandlerThrows_AnswersEvictedOldestAndTheItemIsQueued(string path)
    {
        var dropped = new List<int>();
        using BackpressureBuffer<int> buffer = Create(OverflowPolicy.DropOldest, dropped);
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(2));

        WriteResult result = await WriteBy(path, buffer, 3); // before the fix: FormatException after 3 was queued

        Assert.Equal(WriteResult.EvictedOldest, result);
        Assert.Equal([1], dropped);
        Assert.Equal(1, buffer.GetStatistics().Evicted);
        Assert.Equal(1, buffer.CallbackFailures);
        Assert.Equal([2, 3], Drain(buffer));
    }

    [Theory]
    [MemberData(nameof(WritePaths))]
    public async Task Write_PressureChangedThrows_AnswersAcceptedAndTheEventStillReports(string path)
    {
        using BackpressureBuffer<int> buffer = Create(OverflowPolicy.Wait, [], capacity: 4, high: 2, low: 0);
        var reported = new List<bool>();
        buffer.PressureChanged += (_, paused) =>
        {
            reported.Add(paused);
            throw new FormatException("pressure");
        };
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));

        WriteResult result = await WriteBy(path, buffer, 2); // crosses the high watermark; before the fix: FormatException after 2 was queued

        Assert.Equal(WriteResult.Accepted, result);
        Assert.Equal([true], reported);
        Assert.True(buffer.IsPaused);
        Assert.Equal(1, buffer.CallbackFailures);

        Assert.True(buffer.TryRead(out int first)); // a read that crosses the low watermark: before, it threw with the item taken (lost)
        Assert.Equal(1, first);
        Assert.Equal(2, await buffer.ReadAsync().AsTask().WaitAsync(Generous));
        Assert.Equal([true, false], reported);
        Assert.False(buffer.IsPaused);
        Assert.Equal(2, buffer.CallbackFailures);
    }

    [Fact]
    public async Task WriteAsync_ParkedThenCrossesTheWatermarkWithAThrowingHandler_CompletesAccepted()
    {
        using BackpressureBuffer<int> buffer = Create(OverflowPolicy.Wait, [], capacity: 2, high: 2, low: 1);
        bool armed = false;
        buffer.PressureChanged += (_, _) =>
        {
            if (Volatile.Read(ref armed))
            {
                throw new FormatException("pressure");
            }
        };
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(2)); // paused
        ValueTask<WriteResult> parked = buffer.WriteAsync(3);
        Assert.False(parked.IsCompleted);
        Volatile.Write(ref armed, true);

        Assert.True(buffer.TryRead(out int item)); // depth 1: resumed (throws in the handler); wakes the parked write, which pauses again
        Assert.Equal(1, item);
        Assert.Equal(WriteResult.Accepted, await parked.AsTask().WaitAsync(Generous));
        Assert.Equal([2, 3], Drain(buffer));
        Assert.True(buffer.CallbackFailures >= 1);
    }

    [Fact]
    public void CallbackFailed_HandlerThrowsToo_WriteStillAnswersItsOutcome()
    {
        var dropped = new List<int>();
        using BackpressureBuffer<int> buffer = Create(OverflowPolicy.DropIncoming, dropped);
        buffer.CallbackFailed += (_, _) => throw new InvalidOperationException("observer");
        buffer.TryWrite(1);
        buffer.TryWrite(2);
        Assert.Equal(WriteResult.DroppedIncoming, buffer.TryWrite(3));
        Assert.Equal(1, buffer.CallbackFailures);
    }

    [Theory]
    [InlineData(OverflowPolicy.DropIncoming)]
    [InlineData(OverflowPolicy.DropOldest)]
    public async Task Channel_ItemDroppedThrows_WritesSucceedOnce(OverflowPolicy mode)
    {
        var dropped = new List<int>();
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, FullMode = mode }, (item, _) =>
        {
            dropped.Add(item);
            throw new FormatException($"dropped {item}");
        });
        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Writer.TryWrite(2)); // before the fix: FormatException from TryWrite
        await channel.Writer.WriteAsync(3).AsTask().WaitAsync(Generous); // before the fix: a faulted write whose drop had happened
        Assert.Equal(mode == OverflowPolicy.DropIncoming ? [2, 3] : [1, 2], dropped);
        Assert.True(channel.Reader.TryRead(out int left));
        Assert.Equal(mode == OverflowPolicy.DropIncoming ? 1 : 3, left);
        Assert.False(channel.Reader.TryRead(out _));
    }
}
