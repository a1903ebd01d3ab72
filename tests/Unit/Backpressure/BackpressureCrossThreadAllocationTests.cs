using System.Threading.Channels;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Parked asynchronous writes and reads whose continuation (or result) runs on another thread than the call: nothing may
/// be allocated, not even occasionally (acceptance audit, gap A: "hot paths allocate nothing, async waits included").
/// Before session 12 the slow paths were async methods on <c>PoolingAsyncValueTaskMethodBuilder</c>, whose boxes are
/// cached per thread: a box rented by the calling thread went back to the cache of the thread that took the result, and
/// the calling thread rented a new one. Measured on the code before: every cross-thread test here failed, 64,000 to
/// 88,000 B per 500 waits (128-176 B per wait); the await loops allocated 192 and 560 B in the runs taken before the
/// change (they pass on it in some runs: see their comment). Allocations are counted per call on the calling thread,
/// where a pooled object is rented, so the loops' own state machines and the test host's threads do not count.
/// </summary>
[Collection(ProcessWideAllocationCollection.Name)]
public sealed class BackpressureCrossThreadAllocationTests(ITestOutputHelper output)
{
    private const int Rounds = 3;
    private const int MaxRounds = 20;
    private const int WaitsPerRound = 500;
    private const int LoopItems = 100_000;
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WriteAsync_ResultTakenOnAnotherThread_AllocatesNothing(bool single)
    {
        using var buffer = Create(single);
        using var cts = new CancellationTokenSource();
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        using var other = new OtherThread(() => buffer.TryRead(out _) ? 0 : 1);
        (long bytes, int notParked, int wrong) = Measure(() => buffer.WriteAsync(1, cts.Token), other, result => result.Outcome == WriteOutcome.Accepted);
        Assert.Equal(0, notParked); // every write parked: the test measured waits
        Assert.Equal(0, wrong + other.Wrong);
        Assert.Equal(0, bytes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReadAsync_ResultTakenOnAnotherThread_AllocatesNothing(bool single)
    {
        using var buffer = Create(single);
        using var cts = new CancellationTokenSource();
        using var other = new OtherThread(() => buffer.TryWrite(7).Outcome == WriteOutcome.Accepted ? 0 : 1);
        (long bytes, int notParked, int wrong) = Measure(() => buffer.ReadAsync(cts.Token), other, item => item == 7);
        Assert.Equal(0, notParked);
        Assert.Equal(0, wrong + other.Wrong);
        Assert.Equal(0, bytes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Channel_ReadAsync_ResultTakenOnAnotherThread_AllocatesNothing(bool single)
    {
        Channel<int> channel = CreateChannel(single);
        using var cts = new CancellationTokenSource();
        using var other = new OtherThread(() => channel.Writer.TryWrite(7) ? 0 : 1);
        (long bytes, int notParked, int wrong) = Measure(() => channel.Reader.ReadAsync(cts.Token), other, item => item == 7);
        Assert.Equal(0, notParked);
        Assert.Equal(0, wrong + other.Wrong);
        Assert.Equal(0, bytes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Channel_WaitToWriteAsync_ResultTakenOnAnotherThread_AllocatesNothing(bool single)
    {
        Channel<int> channel = CreateChannel(single);
        using var cts = new CancellationTokenSource();
        Assert.True(channel.Writer.TryWrite(0));
        using var other = new OtherThread(() => channel.Reader.TryRead(out _) && channel.Writer.TryWrite(0) ? 0 : 1); // room, then full again after the result
        (long bytes, int notParked, int wrong) = Measure(() => channel.Writer.WaitToWriteAsync(cts.Token), other, more => more);
        Assert.Equal(0, notParked);
        Assert.Equal(0, wrong + other.Wrong);
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void DelayQueue_DequeueAsync_ResultTakenOnAnotherThread_AllocatesNothing()
    {
        using var queue = new DelayQueue<int>(1);
        using var cts = new CancellationTokenSource();
        using var other = new OtherThread(() => queue.TryEnqueue(7, TimeSpan.Zero).Outcome == WriteOutcome.Accepted ? 0 : 1);
        (long bytes, int notParked, int wrong) = Measure(() => queue.DequeueAsync(cts.Token), other, item => item == 7);
        Assert.Equal(0, notParked);
        Assert.Equal(0, wrong + other.Wrong);
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void DelayQueue_EnqueueAsync_ResultTakenOnAnotherThread_AllocatesNothing()
    {
        using var queue = new DelayQueue<int>(1);
        using var cts = new CancellationTokenSource();
        Assert.Equal(WriteOutcome.Accepted, queue.TryEnqueue(0, TimeSpan.Zero).Outcome);
        using var other = new OtherThread(() => queue.TryDequeue(out _) ? 0 : 1);
        (long bytes, int notParked, int wrong) = Measure(() => queue.EnqueueAsync(1, TimeSpan.Zero, cts.Token), other, result => result.Outcome == WriteOutcome.Accepted);
        Assert.Equal(0, notParked);
        Assert.Equal(0, wrong + other.Wrong);
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void AckQueue_ReceiveAsync_ResultTakenOnAnotherThread_AllocatesNothing()
    {
        using var queue = new AckQueue<int>(new AckQueueOptions<int> { Capacity = 1 });
        using var cts = new CancellationTokenSource();
        using var other = new OtherThread(() => queue.TryEnqueue(7).Outcome == WriteOutcome.Accepted ? 0 : 1);
        int notAcked = 0;
        (long bytes, int notParked, int wrong) = Measure(() => queue.ReceiveAsync(cts.Token), other, delivery =>
        {
            notAcked += queue.Ack(delivery) ? 0 : 1; // outside the measured call: frees the room for the next round
            return delivery.Message == 7;
        });
        Assert.Equal(0, notParked);
        Assert.Equal(0, wrong + other.Wrong + notAcked);
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void RetryPolicy_ExecuteAsync_AttemptCompletesOnAnotherThread_AllocatesNothing()
    {
        // An attempt that completes asynchronously (here a parked buffer read) and succeeds: the policy's own wait for it.
        var policy = new RetryPolicy();
        using var buffer = Create(single: true);
        using var cts = new CancellationTokenSource();
        using var other = new OtherThread(() => buffer.TryWrite(7).Outcome == WriteOutcome.Accepted ? 0 : 1);
        (long bytes, int notParked, int wrong) = Measure(
            () => policy.ExecuteAsync(static (b, token) => b.ReadAsync(token), buffer, cts.Token), other, item => item == 7);
        Assert.Equal(0, notParked);
        Assert.Equal(0, wrong + other.Wrong);
        Assert.Equal(0, bytes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AwaitLoops_CapacityOne_CallsAllocateNothing(bool single)
    {
        using var buffer = Create(single);
        using var cts = new CancellationTokenSource();
        await RunAsync(buffer, cts.Token).WaitAsync(Generous); // warm-up: JIT, pools, token registration nodes

        await AwaitLoopRuns.AssertSteadyStateAllocatesNothingAsync(
            () => RunAsync(buffer, cts.Token).WaitAsync(Generous), (long)LoopItems * (LoopItems - 1) / 2, output, single ? "single" : "many");
    }

    /// <summary>
    /// Calls <paramref name="call"/> on this thread (it must park), hands the value task to <paramref name="other"/>, which
    /// wakes it and takes its result, and counts the bytes this thread allocated in the calls of the last round.
    /// </summary>
    private static (long Bytes, int NotParked, int Wrong) Measure<TResult>(Func<ValueTask<TResult>> call, OtherThread other, Func<TResult, bool> check)
    {
        long last = -1;
        int notParked = 0, wrong = 0;
        // After the first Rounds, until a round allocates nothing (at most MaxRounds): under load a round may catch a pool
        // growing once (an object still on its way back from the other thread when the next call rents one); an
        // allocation per wait shows in every round and still fails.
        for (int round = 0; round < Rounds || (last != 0 && round < MaxRounds); round++)
        {
            long bytes = 0;
            for (int i = 0; i < WaitsPerRound; i++)
            {
                // No assertion inside the measured loop (xunit's Assert.Equal allocates): count what goes wrong.
                long before = GC.GetAllocatedBytesForCurrentThread();
                ValueTask<TResult> pending = call();
                bytes += GC.GetAllocatedBytesForCurrentThread() - before;
                notParked += pending.IsCompleted ? 1 : 0;
                wrong += check(other.WakeAndConsume(pending)) ? 0 : 1;
            }

            last = bytes;
        }

        return (last, notParked, wrong);
    }

    /// <summary>
    /// One writer and one reader await loop on the thread pool; returns the sum read, how many calls waited, and the bytes
    /// the calls themselves allocated on their calling threads.
    /// </summary>
    private static async Task<(long Sum, long Waits, long Allocated)> RunAsync(BackpressureBuffer<int> buffer, CancellationToken token)
    {
        Task<(long, long)> writer = Task.Run(async () =>
        {
            long waits = 0, allocated = 0;
            for (int i = 0; i < LoopItems; i++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                ValueTask<WriteResult> write = buffer.WriteAsync(i, token);
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                waits += write.IsCompleted ? 0 : 1;
                if ((await write).Outcome != WriteOutcome.Accepted)
                {
                    throw new InvalidOperationException("a write was not accepted");
                }
            }

            return (waits, allocated);
        });
        Task<(long, long, long)> reader = Task.Run(async () =>
        {
            long sum = 0, waits = 0, allocated = 0;
            for (int i = 0; i < LoopItems; i++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                ValueTask<int> read = buffer.ReadAsync(token);
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                waits += read.IsCompleted ? 0 : 1;
                sum += await read;
            }

            return (sum, waits, allocated);
        });

        (long writeWaits, long writeBytes) = await writer;
        (long total, long readWaits, long readBytes) = await reader;
        return (total, writeWaits + readWaits, writeBytes + readBytes);
    }

    private static BackpressureBuffer<int> Create(bool single) => new(new BackpressureBufferOptions<int>
    {
        Capacity = 1,
        FullMode = OverflowPolicy.Wait,
        SingleWriter = single,
        SingleReader = single,
    });

    private static Channel<int> CreateChannel(bool single) => LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions
    {
        Capacity = 1,
        FullMode = OverflowPolicy.Wait,
        SingleWriter = single,
        SingleReader = single,
    });

    /// <summary>
    /// Runs, for each value task handed to it, the wake-up (a read or a write that ends the wait) and the taking of the
    /// task's result by polling on a new thread, so the result is never taken on the thread that made the call. A new
    /// thread each time: with the async methods before session 12, the box then went to that thread's own cache and died
    /// with it, and the calling thread rented a new one for every call (with one long-lived consumer thread the per-core
    /// cache handed some back, depending on which cores the two threads ran on: the tests failed in some runs only).
    /// </summary>
    private sealed class OtherThread(Func<int> wake) : IDisposable
    {
        /// <summary>Wake-ups that failed on the other threads (each joined before this is read).</summary>
        public int Wrong { get; private set; }

        public TResult WakeAndConsume<TResult>(ValueTask<TResult> pending)
        {
            TResult result = default!;
            Exception? failure = null;
            var thread = new Thread(() =>
            {
                try
                {
                    Wrong += wake();
                    var spinner = default(SpinWait);
                    long deadline = Environment.TickCount64 + (long)Generous.TotalMilliseconds;
                    while (!pending.IsCompleted)
                    {
                        if (Environment.TickCount64 > deadline)
                        {
                            throw new TimeoutException("the parked call was never woken");
                        }

                        spinner.SpinOnce();
                    }

                    result = pending.GetAwaiter().GetResult(); // on the other thread
                }
                catch (Exception error)
                {
                    failure = error;
                }
            });
            thread.Start();
            thread.Join(); // orders the other thread's writes before the reads below
            return failure is null ? result : throw new InvalidOperationException("the other thread failed", failure);
        }

        public void Dispose()
        {
        }
    }
}
