using System.Threading.Channels;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>Runs alone: its measurement is process-wide.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideAllocationCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "process-wide allocation measurements";
}

/// <summary>
/// The <see cref="Channel{T}"/> adapter's asynchronous path in the usual shape, an <c>await</c> loop writing and one
/// reading, with cancellable tokens, on a small channel so that both sides really wait (acceptance audit of issue 4,
/// 2026-11-23: the adapter had no allocation test or benchmark). Measured per call on the calling thread, where the pooled
/// operations and waiters are rented (a process-wide measurement counted the test host's own threads: 0 to 1 MB per run,
/// noise). Nothing may be allocated. Before session 12 the bound was 4 B per wait on average: the slow paths were async
/// methods whose pooled boxes are cached per thread, and a continuation that changed threads left the box in another
/// thread's cache now and then (0 to a few hundred bytes per run; gap A). They are now per-buffer pooled operations
/// (PooledOperation) parked on hand-off waits (Waiter), which go back to the buffer whatever thread takes the result.
/// </summary>
[Collection(ProcessWideAllocationCollection.Name)]
public sealed class LockFreeChannelAwaitLoopAllocationTests(ITestOutputHelper output)
{
    private const int Items = 100_000;
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AwaitLoops_WithCancellableTokens_SteadyStateAllocatesNothing(bool single)
    {
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions
        {
            Capacity = 4,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = single,
            SingleReader = single,
        });
        using var cts = new CancellationTokenSource();
        await RunAsync(channel, cts.Token).WaitAsync(Generous); // warm-up: JIT, pools, token registration nodes

        await AwaitLoopRuns.AssertSteadyStateAllocatesNothingAsync(
            () => RunAsync(channel, cts.Token).WaitAsync(Generous), (long)Items * (Items - 1) / 2, output, single ? "single" : "many");
    }

    /// <summary>
    /// One writer and one reader loop on the thread pool; returns the sum read, how many calls waited, and the bytes the
    /// calls themselves allocated on their calling threads (each <c>WriteAsync</c>/<c>ReadAsync</c> call measured alone,
    /// so neither the loops' own state machines nor other threads of the test host count).
    /// </summary>
    private static async Task<(long Sum, long Waits, long Allocated)> RunAsync(Channel<int> channel, CancellationToken token)
    {
        Task<(long, long)> writer = Task.Run(async () =>
        {
            long waits = 0, allocated = 0;
            for (int i = 0; i < Items; i++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                ValueTask write = channel.Writer.WriteAsync(i, token);
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                waits += write.IsCompleted ? 0 : 1;
                await write;
            }

            return (waits, allocated);
        });
        Task<(long, long, long)> reader = Task.Run(async () =>
        {
            long sum = 0, waits = 0, allocated = 0;
            for (int i = 0; i < Items; i++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                ValueTask<int> read = channel.Reader.ReadAsync(token);
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
}
