using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The pieces together, on a manual clock: a consumer fails, retries wait on the delay queue with the policy's
/// backoff, the last attempt moves the message to the dead letters with its metadata, a replay puts it back, and it
/// then succeeds.
/// </summary>
public sealed class RetryEndToEndTests
{
    [Fact]
    public void FailingConsumer_RetriesWithBackoff_DeadLettersAfterMaxAttempts_ReplaySucceeds()
    {
        var time = new ManualTimeProvider();
        using var deadLetters = new DeadLetterQueue<string>(new DeadLetterQueueOptions<string> { Capacity = 16, TimeProvider = time, Name = null });
        using var queue = new AckQueue<string>(new AckQueueOptions<string>
        {
            Capacity = 16,
            VisibilityTimeout = TimeSpan.FromMinutes(5),
            DeadLetters = deadLetters,
            Name = "payments",
            TimeProvider = time,
        });
        var policy = new RetryPolicy(new RetryPolicyOptions
        {
            MaxAttempts = 4,
            BaseDelay = TimeSpan.FromSeconds(1),
            MaxDelay = TimeSpan.FromSeconds(10),
            Jitter = RetryJitter.None,
            TimeProvider = time,
        });
        bool downstreamHealthy = false;
        var attemptsAt = new List<DateTimeOffset>();
        int succeeded = 0;
        DateTimeOffset start = time.GetUtcNow();

        // One consumer step: receive what is visible, process it, ack, or nack with the policy's delay, or dead-letter.
        bool Step()
        {
            if (!queue.TryReceive(out Delivery<string> delivery))
            {
                return false;
            }

            attemptsAt.Add(time.GetUtcNow());
            if (downstreamHealthy)
            {
                succeeded++;
                Assert.True(queue.Ack(delivery));
                return true;
            }

            var failure = new TimeoutException("downstream timed out");
            RetryDecision decision = policy.Evaluate(delivery.DeliveryCount, failure, TimeSpan.Zero);
            Assert.True(decision.ShouldRetry
                ? queue.Nack(delivery, decision.Delay, failure)
                : queue.DeadLetter(delivery, decision.StopReason.ToString(), failure));
            return true;
        }

        queue.TryEnqueue("pay #1");
        Assert.True(Step()); // attempt 1 fails: retry after 1 s

        // Walk the clock in 100 ms steps: each retry becomes visible exactly when its backoff has passed, never before.
        for (int tick = 0; tick < 200; tick++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            while (Step())
            {
            }
        }

        Assert.Equal(4, attemptsAt.Count);
        Assert.Equal(
            [TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(7)], // backoff 1, 2, 4 s
            attemptsAt.Select(t => t - start));
        Assert.Equal(0, queue.Count);

        DeadLetter<string> letter = Assert.Single(deadLetters.Snapshot());
        Assert.Equal(("pay #1", "payments", nameof(RetryStopReason.MaxAttempts), 4), (letter.Message, letter.SourceName, letter.Reason, letter.AttemptCount));
        Assert.IsType<TimeoutException>(letter.Exception);
        Assert.Equal((start, start.AddSeconds(7)), (letter.FirstAttempt, letter.LastAttempt));

        // The operator fixes the downstream and replays the dead letter into the queue: it now succeeds.
        downstreamHealthy = true;
        ReplayResult replay = deadLetters.Replay(l => queue.TryEnqueue(l.Message).IsAccepted, l => l.SourceName == "payments");
        Assert.Equal(new ReplayResult(1, 0), replay);
        Assert.True(Step());

        Assert.Equal(1, succeeded);
        Assert.Equal((0, 0), (queue.Count, deadLetters.Count));
        AckQueueStatistics stats = queue.GetStatistics();
        Assert.Equal((2L, 1L, 3L, 1L), (stats.Enqueued, stats.Acked, stats.Nacked, stats.DeadLettered));
    }
}
