using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// s11-rev: a reader that <see cref="DelayQueue{T}.DequeueAsync"/> tells "completed and empty"
/// (<see cref="InvalidOperationException"/>) must find <see cref="DelayQueue{T}.Completion"/> completed, as its documentation
/// and the stress tests' own <c>catch (InvalidOperationException) when (queue.Completion.IsCompleted)</c> assume. Before,
/// the queue marked itself finished, woke its parked readers and only then completed <c>Completion</c>: a reader that read
/// the finished mark in that window threw while <c>Completion</c> was still incomplete (found by
/// <see cref="DelayQueueStressTests"/>' clock-wrap case, whose reader's filter then let the exception through). Many short
/// rounds, each ending in the finish with readers parked and polling; rounds scale with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class DelayQueueCompletionOrderStressTests(ITestOutputHelper output)
{
    private const int RoundsAtScaleOne = 400;
    private const int Readers = 16;
    private const int ItemsPerProducer = 16;
    private static readonly TimeSpan RoundTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task DequeueAsync_CompletedAndEmpty_CompletionAlreadyCompleted()
    {
        long rounds = StressScale.Items(RoundsAtScaleOne);
        int early = 0;
        for (long round = 0; round < rounds; round++)
        {
            using var queue = new DelayQueue<int>(4);
            int taken = 0;
            async Task Read()
            {
                while (true)
                {
                    try
                    {
                        await queue.DequeueAsync().ConfigureAwait(false);
                        Interlocked.Increment(ref taken);
                    }
                    catch (InvalidOperationException)
                    {
                        if (!queue.Completion.IsCompleted)
                        {
                            Interlocked.Increment(ref early); // told "completed and empty" before Completion completed
                        }

                        return;
                    }
                }
            }

            async Task Produce(int producer)
            {
                for (int i = 0; i < ItemsPerProducer; i++)
                {
                    Assert.True((await queue.EnqueueAsync((producer * ItemsPerProducer) + i, TimeSpan.Zero).ConfigureAwait(false)).IsAccepted);
                }
            }

            Task[] readers = Enumerable.Range(0, Readers).Select(_ => Task.Run(Read)).ToArray();
            await Task.WhenAll(Task.Run(() => Produce(0)), Task.Run(() => Produce(1))).ConfigureAwait(true);
            queue.Complete();
            Task all = Task.WhenAll(readers);
            if (await Task.WhenAny(all, Task.Delay(RoundTimeout)).ConfigureAwait(true) != all)
            {
                Assert.Fail($"round {round}: readers did not end ({string.Join(", ", readers.Select(r => r.Status))}), {taken} taken");
            }

            await all.ConfigureAwait(true);
            Assert.Equal(2 * ItemsPerProducer, taken);
        }

        output.WriteLine($"{rounds} rounds, {early} readers told completed before Completion completed");
        Assert.Equal(0, early);
    }
}
