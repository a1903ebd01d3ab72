using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real-thread stress of <see cref="AckQueue{T}"/> on the system clock: a producer, several async consumers that ack
/// most deliveries, drop some (never ack: the visibility timeout must bring them back) and ack some late (after
/// their timeout: the ack may be stale). At-least-once and the stale-ack check together mean every message is acked
/// successfully exactly once, however often it was delivered. Bounded by a timeout; sizes scale with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class AckQueueStressTests(ITestOutputHelper output)
{
    private const int MessagesAtScaleOne = 3_000;

    private static readonly TimeSpan TimeoutAtScaleOne = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(2, 16, false)]
    [InlineData(4, 64, false)]
    [InlineData(2, 16, true)]
    public async Task ConsumersDropAndAckLate_EveryMessageAckedExactlyOnce(int consumers, int capacity, bool wheelDriven)
    {
        int messages = (int)StressScale.Items(MessagesAtScaleOne);

        // wheelDriven: the visibility timeouts and the inner queue's wake-ups are timers on a wheel's driver thread.
        using HierarchicalTimerWheel? wheel = wheelDriven ? new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1), TimeProvider.System) : null;
        wheel?.StartDriver();
        using var queue = new AckQueue<int>(new AckQueueOptions<int> { Capacity = capacity, VisibilityTimeout = TimeSpan.FromMilliseconds(10), TimerWheel = wheel });
        var acked = new int[messages];
        var deliveries = new int[messages];
        long staleAcks = 0, dropped = 0, totalAcked = 0;
        using var done = new CancellationTokenSource();

        async Task Produce()
        {
            for (int m = 0; m < messages; m++)
            {
                while (queue.TryEnqueue(m).Outcome == WriteOutcome.Rejected)
                {
                    await Task.Delay(1).ConfigureAwait(false);
                }
            }
        }

        async Task Consume(int seed)
        {
            var random = new Random(seed);
            while (true)
            {
                Delivery<int> delivery;
                try
                {
                    delivery = await queue.ReceiveAsync(done.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Interlocked.Increment(ref deliveries[delivery.Message]);
                int roll = random.Next(100);
                if (roll < 4)
                {
                    Interlocked.Increment(ref dropped); // never acked: must come back after the visibility timeout
                    continue;
                }

                if (roll < 8)
                {
                    await Task.Delay(15).ConfigureAwait(false); // past the visibility timeout: the ack may be stale
                }

                if (queue.Ack(delivery))
                {
                    Interlocked.Increment(ref acked[delivery.Message]);
                    if (Interlocked.Increment(ref totalAcked) == messages)
                    {
                        done.Cancel();
                    }
                }
                else
                {
                    Interlocked.Increment(ref staleAcks);
                }
            }
        }

        Task all = Task.WhenAll([Task.Run(Produce), .. Enumerable.Range(0, consumers).Select(c => Task.Run(() => Consume(c)))]);
        TimeSpan timeout = StressScale.Timeout(TimeoutAtScaleOne);
        if (await Task.WhenAny(all, Task.Delay(timeout)) != all)
        {
            done.Cancel();
            Assert.Fail($"timed out after {timeout}: {Interlocked.Read(ref totalAcked)} of {messages} acked; {queue.GetStatistics()}");
        }

        await all;
        output.WriteLine($"{messages} messages, {deliveries.Sum()} deliveries, {Interlocked.Read(ref dropped)} dropped, {Interlocked.Read(ref staleAcks)} stale acks, wheel fired {wheel?.FiredCount}");
        Assert.True(wheel is null || Interlocked.Read(ref dropped) == 0 || wheel.FiredCount > 0, "dropped deliveries came back without the wheel firing");
        Assert.All(acked, n => Assert.Equal(1, n));
        Assert.All(deliveries, n => Assert.True(n >= 1));
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((messages, (long)messages, 0, 0), (stats.Enqueued, stats.Acked, stats.Count, stats.InFlight));
        Assert.True(stats.Expired >= Interlocked.Read(ref dropped), "every dropped delivery expired");
    }
}
