using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// <see cref="DelayQueue{T}.ReadAllAsync"/>: items come out as they fall due, in due order, and the sequence ends
/// once the queue is completed and drained; cancellation takes nothing; disposal surfaces; concurrent enumerations
/// share the items exactly once. Waits that must end are bounded by a generous timeout.
/// </summary>
public sealed class DelayQueueReadAllTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static TimeSpan Ms(int ms) => TimeSpan.FromMilliseconds(ms);

    private static DelayQueue<int> Create(TimeProvider time, int capacity = 64) =>
        new(capacity, new DelayQueueOptions<int> { TimeProvider = time, FullMode = OverflowPolicy.Reject });

    private static async Task<List<int>> Collect(DelayQueue<int> queue, CancellationToken cancellationToken = default)
    {
        var items = new List<int>();
        await foreach (int item in queue.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            lock (items)
            {
                items.Add(item);
            }
        }

        return items;
    }

    [Fact]
    public async Task ReadAllAsync_ItemsFallDueThenComplete_YieldsInDueOrderAndEnds()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(3, Ms(30));
        queue.TryEnqueue(1, Ms(10));
        queue.TryEnqueue(2, Ms(20));
        Task<List<int>> reading = Collect(queue);
        await Task.Delay(50);
        Assert.False(reading.IsCompleted); // nothing due yet

        time.Advance(Ms(15));
        queue.Complete(); // the delayed items are still read after completion
        time.Advance(Ms(15));

        Assert.Equal([1, 2, 3], await reading.WaitAsync(Generous));
        Assert.True(queue.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task ReadAllAsync_CompletedAndEmpty_EndsAtOnce()
    {
        using DelayQueue<int> queue = Create(new ManualTimeProvider());
        queue.Complete();

        Assert.Empty(await Collect(queue).WaitAsync(Generous));
    }

    [Fact]
    public async Task ReadAllAsync_CancelledWhileWaiting_ThrowsAndTakesNothing()
    {
        var time = new ManualTimeProvider();
        using DelayQueue<int> queue = Create(time);
        queue.TryEnqueue(7, Ms(100));
        using var cts = new CancellationTokenSource();
        Task<List<int>> reading = Collect(queue, cts.Token);
        await Task.Delay(50);

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(Generous));
        time.Advance(Ms(100));
        Assert.True(queue.TryDequeue(out int item));
        Assert.Equal(7, item);
    }

    [Fact]
    public async Task ReadAllAsync_DisposedWhileWaiting_ThrowsObjectDisposed()
    {
        using DelayQueue<int> queue = Create(new ManualTimeProvider());
        Task<List<int>> reading = Collect(queue);
        await Task.Delay(50);

        queue.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => reading.WaitAsync(Generous));
    }

    [Fact]
    public async Task ReadAllAsync_ConcurrentEnumerationsAndProducers_EachItemExactlyOnce()
    {
        const int Producers = 2;
        const int PerProducer = 5_000;
        using DelayQueue<int> queue = Create(TimeProvider.System, capacity: 256);
        Task<List<int>>[] readers = [Task.Run(() => Collect(queue)), Task.Run(() => Collect(queue)), Task.Run(() => Collect(queue))];
        Task[] producers = new Task[Producers];
        for (int p = 0; p < Producers; p++)
        {
            int first = p * PerProducer;
            producers[p] = Task.Run(async () =>
            {
                for (int i = first; i < first + PerProducer; i++)
                {
                    while ((await queue.EnqueueAsync(i, TimeSpan.FromTicks(i % 3 == 0 ? 1_000 : 0)).ConfigureAwait(false)).Outcome != WriteOutcome.Accepted)
                    {
                        await Task.Yield(); // Reject mode: full, try again
                    }
                }
            });
        }

        await Task.WhenAll(producers).WaitAsync(Generous);
        queue.Complete();
        List<int>[] results = await Task.WhenAll(readers).WaitAsync(Generous);

        int[] all = results.SelectMany(r => r).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, Producers * PerProducer), all);
    }
}
