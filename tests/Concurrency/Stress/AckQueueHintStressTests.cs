using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real-thread stress of <see cref="AckQueue{T}"/>'s rejection hint with all its room in flight, while consumers ack,
/// nack (past <c>MaxDeliveries</c> = 1: to the dead letters) and dead-letter concurrently: every hint is "retry now",
/// "no estimate" or a time within the visibility timeout (never negative, never beyond the earliest deadline's reach),
/// and once every move has ended, a full queue's hint is the earliest deadline again, not a "retry now" left behind by
/// a move counted and never ended (s12). Sizes scale with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class AckQueueHintStressTests(ITestOutputHelper output)
{
    private const int MessagesAtScaleOne = 20_000;
    private const int Capacity = 8;

    private static readonly TimeSpan Visibility = TimeSpan.FromMinutes(1); // nothing times out: every end is a consumer's

    [Fact]
    public async Task RejectionsRacingAcksNacksAndDeadLetters_HintsInRangeAndNoneLeftBehind()
    {
        int messages = (int)StressScale.Items(MessagesAtScaleOne);
        using var deadLetters = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 64 });
        using var queue = new AckQueue<int>(new AckQueueOptions<int>
        {
            Capacity = Capacity, VisibilityTimeout = Visibility, MaxDeliveries = 1, DeadLetters = deadLetters,
        });
        long rejections = 0, zeros = 0, deadlines = 0, ended = 0;
        TimeSpan? bad = null;
        using var done = new CancellationTokenSource();

        void Produce()
        {
            for (int m = 0; m < messages; m++)
            {
                WriteResult result;
                while ((result = queue.TryEnqueue(m)).Outcome == WriteOutcome.Rejected)
                {
                    Interlocked.Increment(ref rejections);
                    TimeSpan hint = result.RetryAfter;
                    if (hint == TimeSpan.Zero)
                    {
                        Interlocked.Increment(ref zeros);
                    }
                    else if (hint > TimeSpan.Zero)
                    {
                        Interlocked.Increment(ref deadlines); // the in-flight hint: the earliest deadline
                    }
                    else if (hint != Timeout.InfiniteTimeSpan && (hint < TimeSpan.Zero || hint > Visibility))
                    {
                        bad = hint;
                    }

                    Thread.Yield();
                }
            }
        }

        async Task Consume(int seed)
        {
            var random = new Random(seed);
            while (Interlocked.Read(ref ended) < messages)
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

                // Hold a batch in flight (two consumers of Capacity / 2 each fill the queue with in-flight messages
                // only), then end them one by one, so rejections meet the in-flight hint while its set changes.
                var held = new List<Delivery<int>> { delivery };
                for (int tries = 0; held.Count < Capacity / 2 && tries < 200; tries++)
                {
                    if (queue.TryReceive(out Delivery<int> more))
                    {
                        held.Add(more);
                    }
                    else
                    {
                        Thread.Yield(); // the producer refills (a bounded wait: the last messages may not fill a batch)
                    }
                }

                if (random.Next(8) == 0)
                {
                    Thread.Sleep(1); // now and then hold them a while: the producer meets a quiet full table (the deadline hint)
                }

                foreach (Delivery<int> d in held)
                {
                    Thread.Yield();
                    bool ok = random.Next(3) switch
                    {
                        0 => queue.Ack(d),
                        1 => queue.Nack(d), // its last delivery: to the dead letters
                        _ => queue.DeadLetter(d, "stress"),
                    };
                    Assert.True(ok);
                    if (Interlocked.Increment(ref ended) == messages)
                    {
                        done.Cancel();
                    }
                }
            }
        }

        Task all = Task.WhenAll([Task.Run(Produce), .. Enumerable.Range(0, 2).Select(c => Task.Run(() => Consume(c)))]);
        TimeSpan timeout = StressScale.Timeout(TimeSpan.FromSeconds(60));
        if (await Task.WhenAny(all, Task.Delay(timeout)) != all)
        {
            done.Cancel();
            Assert.Fail($"timed out after {timeout}: {Interlocked.Read(ref ended)} of {messages} ended; {queue.GetStatistics()}");
        }

        await all;
        output.WriteLine($"{messages} messages, {rejections} rejections: {zeros} answered retry now, {deadlines} a deadline");
        Assert.Null(bad);
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((0, 0), (stats.Count, stats.InFlight));

        // Quiescent: fill the queue and hold every message in flight. Nothing is moving, so the hint is the earliest
        // deadline (within the visibility timeout), never "retry now".
        for (int i = 0; i < Capacity; i++)
        {
            Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(i));
            Assert.True(queue.TryReceive(out _));
        }

        TimeSpan after = queue.TryEnqueue(-1).RetryAfter;
        Assert.True(after > TimeSpan.Zero && after <= Visibility, $"hint {after} with every move ended");
    }
}
