using System.Text;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="TokenBucket"/> and <see cref="LeakyBucket"/> on a clock that starts anywhere (helper s10-thr, 2026-11-23):
/// near <see cref="long.MaxValue"/> (it wraps during the script), at <see cref="long.MinValue"/>, negative. Only
/// differences of timestamps mean anything, so each script must answer exactly as it does from an ordinary start:
/// every admission, refusal, retry hint, queued count and release, step by step (timers included: the manual clock
/// compares due times as differences).
/// </summary>
public sealed class ThrottlingClockWrapTests
{
    public static TheoryData<long> Starts => new()
    {
        long.MaxValue - (5 * TimeSpan.TicksPerSecond), // wraps 5 s into the 15 s script
        long.MaxValue - 1,                             // wraps at once
        long.MinValue,
        -(5 * TimeSpan.TicksPerSecond),                // negative, passes 0
    };

    [Theory]
    [MemberData(nameof(Starts))]
    public void TokenBucket_ClockStartsAnywhere_AnswersExactlyAsFromAnOrdinaryStart(long start)
    {
        Assert.Equal(TokenBucketScript(new ManualTimeProvider(), fastPathBatch: 1), TokenBucketScript(new ManualTimeProvider(start), fastPathBatch: 1));
        Assert.Equal(TokenBucketScript(new ManualTimeProvider(), fastPathBatch: 4), TokenBucketScript(new ManualTimeProvider(start), fastPathBatch: 4));
    }

    [Theory]
    [MemberData(nameof(Starts))]
    public void LeakyBucket_ClockStartsAnywhere_AnswersExactlyAsFromAnOrdinaryStart(long start)
    {
        Assert.Equal(LeakyBucketScript(new ManualTimeProvider()), LeakyBucketScript(new ManualTimeProvider(start)));
    }

    [Theory]
    [MemberData(nameof(Starts))]
    public void KeyedTokenBucket_ClockStartsAnywhere_SweepsExactlyAsFromAnOrdinaryStart(long start)
    {
        Assert.Equal(KeyedScript(new ManualTimeProvider()), KeyedScript(new ManualTimeProvider(start)));
    }

    /// <summary>15 s in 50 ms steps: bursts of TryAcquire with hints, an AcquireAsync every 7th step and a timed one every 11th, the queue's length.</summary>
    private static string TokenBucketScript(ManualTimeProvider clock, int fastPathBatch)
    {
        var bucket = new TokenBucket(8, 3.0, fastPathBatch, clock);
        var log = new StringBuilder();
        var waits = new List<ValueTask<bool>>();
        for (int step = 0; step < 300; step++)
        {
            for (int i = 0; i < 3; i++)
            {
                bool taken = bucket.TryAcquire(1 + (i % 2), out TimeSpan retryAfter);
                log.Append(taken ? 'T' : 'F').Append(retryAfter.Ticks).Append(',');
            }

            if (step % 7 == 0)
            {
                waits.Add(bucket.AcquireAsync(2));
            }

            if (step % 11 == 0)
            {
                waits.Add(bucket.AcquireAsync(3, TimeSpan.FromMilliseconds(200))); // a timeout timer on the same clock
            }

            log.Append('q').Append(bucket.QueuedWaiters).Append(" a").Append(bucket.AdmittedTokens).Append(";\n");
            clock.Advance(TimeSpan.FromMilliseconds(50));
        }

        Assert.Contains('T', log.ToString());
        Assert.Contains('F', log.ToString());
        return log.ToString();
    }

    /// <summary>15 s in 50 ms steps: TryEnter, EnterAsync every 3rd step, the queue, releases and rejections.</summary>
    private static string LeakyBucketScript(ManualTimeProvider clock)
    {
        using var bucket = new LeakyBucket(3, 4.0, OverflowPolicy.Reject, clock);
        var log = new StringBuilder();
        var waits = new List<ValueTask<bool>>();
        for (int step = 0; step < 300; step++)
        {
            log.Append(bucket.TryEnter() ? 'T' : 'F');
            if (step % 3 == 0)
            {
                ValueTask<bool> wait = bucket.EnterAsync();
                waits.Add(wait);
                log.Append(wait.IsCompleted ? (wait.Result ? 'P' : 'R') : 'Q');
            }

            log.Append(" q").Append(bucket.QueuedCount).Append(" r").Append(bucket.Released).Append(" x").Append(bucket.Rejected).Append(";\n");
            clock.Advance(TimeSpan.FromMilliseconds(50));
        }

        Assert.True(bucket.Released > 30, log.ToString());
        return log.ToString();
    }

    /// <summary>A full table that must sweep idle keys for room, over 15 s: admissions, refusals, hints and the key count.</summary>
    private static string KeyedScript(ManualTimeProvider clock)
    {
        var keyed = new KeyedTokenBucket<int>(2, 1.0, maxKeys: 4, clock);
        var log = new StringBuilder();
        for (int step = 0; step < 150; step++)
        {
            int key = step % 9;
            bool taken = keyed.TryAcquire(key, 1, out TimeSpan retryAfter);
            log.Append(taken ? 'T' : 'F').Append(retryAfter.Ticks).Append(" n").Append(keyed.Count).Append(";\n");
            clock.Advance(TimeSpan.FromMilliseconds(100));
        }

        return log.ToString();
    }
}
