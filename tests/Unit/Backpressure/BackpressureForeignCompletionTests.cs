using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Completion from a thread other than the single writer of a <c>SingleWriter</c> buffer, while that writer is inside
/// its write: between its completed-check and its publish. The window is held open deterministically by the item-age
/// option: the write reads the buffer's clock inside it (the stamp is taken on the way into the engine), and the clock
/// here blocks that reading until the foreign completer has done its part. Before the in-write mark the completer found
/// the buffer empty and finished it; the write then published its item and answered Accepted into a finished buffer, so
/// <c>ReadAllAsync</c> had already ended and the item was never seen. Now every accepted item reaches the reader, and the
/// buffer finishes after it.
/// </summary>
public sealed class BackpressureForeignCompletionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    public enum Completer
    {
        TryComplete,
        Dispose,
    }

    [Theory]
    [InlineData(true, Completer.TryComplete)] // SPSC under the stamping adapter
    [InlineData(false, Completer.TryComplete)] // SPMC (one writer, many readers) under the stamping adapter
    [InlineData(true, Completer.Dispose)]
    public async Task TryWrite_ForeignCompletionInsideTheWrite_AcceptedItemIsReadBeforeTheFinish(bool singleReader, Completer completer)
    {
        var clock = new BlockingReadingClock();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 4,
            SingleWriter = true,
            SingleReader = singleReader,
            TrackItemAge = true,
            TimeProvider = clock,
        });

        clock.BlockReading(1); // the next reading: the stamp of the write below
        Task<WriteResult> write = Task.Factory.StartNew(() => buffer.TryWrite(7), TaskCreationOptions.LongRunning);
        Assert.True(clock.Entered.Wait(Bound), "the write never read the clock");

        Complete(buffer, completer); // from this thread while the writer is inside its write
        Assert.False(buffer.Completion.IsCompleted, "the buffer finished while an accepted write was still landing");

        clock.Release();
        Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Bound));
        Assert.Equal([7], await ReadAll(buffer, completer));
        await AssertFinished(buffer, completer);
    }

    [Theory]
    [InlineData(Completer.TryComplete)]
    [InlineData(Completer.Dispose)]
    public async Task TryWrite_DropOldestForeignCompletionInsideThePlaceOrEvictStep_PlacedItemIsReadBeforeTheFinish(Completer completer)
    {
        // One writer under DropOldest (the SPMC engine): the write evicts the only item and places its own in one engine
        // step (session 16), whose stamp is the second clock reading. The completion comes while the write is inside its
        // mark, before the step: the completer must leave the finish to the write, which then places its item.
        var clock = new BlockingReadingClock();
        var dropped = new List<int>();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            SingleWriter = true,
            SingleReader = true,
            FullMode = OverflowPolicy.DropOldest,
            TrackItemAge = true,
            TimeProvider = clock,
            ItemDropped = (item, _) => dropped.Add(item),
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));

        clock.BlockReading(2); // the first reading stamps the failed enqueue, the second the place-or-evict step
        Task<WriteResult> write = Task.Factory.StartNew(() => buffer.TryWrite(2), TaskCreationOptions.LongRunning);
        Assert.True(clock.Entered.Wait(Bound), "the write never read the clock");
        Assert.Equal(1, buffer.Count); // nothing evicted yet: the stamp comes before the step

        Complete(buffer, completer);
        Assert.False(buffer.Completion.IsCompleted, "the buffer finished while an accepted write was still landing");

        clock.Release();
        Assert.Equal(WriteOutcome.EvictedOldest, (await write.WaitAsync(Bound)).Outcome);
        Assert.Equal([2], await ReadAll(buffer, completer));
        Assert.Equal([1], dropped);
        await AssertFinished(buffer, completer);
    }

    [Fact]
    public async Task TryWrite_ForeignCompletionInsideAWriteThatFindsTheBufferFull_TheReaderStillFinishesIt()
    {
        // The write is inside the window when the completion comes, then finds no room (Reject): it places nothing.
        // The completer left the finish to it (the mark was set), and the reader drains and finishes.
        var clock = new BlockingReadingClock();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            SingleWriter = true,
            SingleReader = true,
            FullMode = OverflowPolicy.Reject,
            TrackItemAge = true,
            TimeProvider = clock,
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));

        clock.BlockReading(1);
        Task<WriteResult> write = Task.Factory.StartNew(() => buffer.TryWrite(2), TaskCreationOptions.LongRunning);
        Assert.True(clock.Entered.Wait(Bound), "the write never read the clock");
        buffer.TryComplete();
        clock.Release();
        Assert.Equal(WriteOutcome.Rejected, (await write.WaitAsync(Bound)).Outcome);
        Assert.Equal([1], await ReadAll(buffer, Completer.TryComplete));
        await buffer.Completion.WaitAsync(Bound);
    }

    [Fact]
    public async Task TryWrite_ForeignCompletionInsideAWriteOnAnEmptyBufferThatThenThrows_TheBufferStillFinishes()
    {
        // The clock throws inside the window after the completer left the finish to the writer: the writer's way out
        // must still finish the buffer (before the catch, the mark stayed set and nobody finished an empty buffer).
        var clock = new BlockingReadingClock();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 4,
            SingleWriter = true,
            SingleReader = true,
            TrackItemAge = true,
            TimeProvider = clock,
        });

        clock.BlockReading(1, thenThrow: true);
        Task<WriteResult> write = Task.Factory.StartNew(() => buffer.TryWrite(7), TaskCreationOptions.LongRunning);
        Assert.True(clock.Entered.Wait(Bound), "the write never read the clock");
        buffer.TryComplete();
        clock.Release();
        await Assert.ThrowsAsync<InvalidOperationException>(() => write.WaitAsync(Bound));
        await buffer.Completion.WaitAsync(Bound);
        Assert.Empty(await ReadAll(buffer, Completer.TryComplete));
    }

    private static void Complete(BackpressureBuffer<int> buffer, Completer completer)
    {
        if (completer == Completer.Dispose)
        {
            buffer.Dispose();
        }
        else
        {
            Assert.True(buffer.TryComplete());
        }
    }

    /// <summary>What a <c>ReadAllAsync</c> consumer sees until the buffer is finished (a disposed one then throws).</summary>
    private static async Task<List<int>> ReadAll(BackpressureBuffer<int> buffer, Completer completer)
    {
        var seen = new List<int>();
        try
        {
            await foreach (int item in buffer.ReadAllAsync().WithCancellation(new CancellationTokenSource(Bound).Token))
            {
                seen.Add(item);
            }
        }
        catch (ObjectDisposedException) when (completer == Completer.Dispose)
        {
            // a disposed buffer's reads end with this once drained
        }

        return seen;
    }

    private static async Task AssertFinished(BackpressureBuffer<int> buffer, Completer completer)
    {
        Task completion = buffer.Completion.WaitAsync(Bound);
        if (completer == Completer.Dispose)
        {
            await Assert.ThrowsAsync<ObjectDisposedException>(() => completion);
        }
        else
        {
            await completion;
        }

        Assert.False(buffer.TryRead(out _), "an item was left behind in a finished buffer");
    }

    /// <summary>A clock whose chosen reading (1 = the next) blocks until <see cref="Release"/>, then reads (or throws).</summary>
    private sealed class BlockingReadingClock : TimeProvider
    {
        private readonly ManualResetEventSlim _released = new(false);
        private int _countdown;
        private bool _throw;

        public ManualResetEventSlim Entered { get; } = new(false);

        public void BlockReading(int reading, bool thenThrow = false)
        {
            _throw = thenThrow;
            Volatile.Write(ref _countdown, reading);
        }

        public void Release() => _released.Set();

        public override long GetTimestamp()
        {
            if (Volatile.Read(ref _countdown) > 0 && Interlocked.Decrement(ref _countdown) == 0)
            {
                Entered.Set();
                if (!_released.Wait(Bound))
                {
                    throw new TimeoutException("the test never released the clock");
                }

                if (_throw)
                {
                    throw new InvalidOperationException("clock failed");
                }
            }

            return 0;
        }
    }
}
