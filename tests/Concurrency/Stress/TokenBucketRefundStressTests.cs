using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real threads running <see cref="TokenBucket.TryAcquireAll"/> over two batched buckets on a frozen clock, the second
/// far smaller and mostly drained, so most requests are refused at the second level and refunded at the first: every token is accounted
/// for (the first bucket ends holding exactly its capacity less the admitted requests). Sizes scale with <see cref="StressScale"/>.
/// </summary>
public sealed class TokenBucketRefundStressTests
{
    [Fact]
    public void TryAcquireAll_ConcurrentRefundsToBatchedBucket_LoseNoToken()
    {
        var time = new ManualTimeProvider(); // never moves: no refill, so the accounting is exact
        var outer = new TokenBucket(1000, 1, fastPathBatch: 62, time); // batched, no thread caches (a batch below 128)
        var inner = new TokenBucket(100, 1, fastPathBatch: 6, time);
        Assert.True(inner.TryAcquire(40)); // inner runs dry early, while the outer bucket is still (nearly) full
        int perThread = (int)StressScale.Items(3000);
        long admitted = 0;
        var threads = Enumerable.Range(0, 3).Select(t => new Thread(() =>
        {
            long mine = 0;
            for (int i = 0; i < perThread; i++)
            {
                mine += TokenBucket.TryAcquireAll([outer, inner], 1, out _) ? 1 : 0;
            }

            Interlocked.Add(ref admitted, mine);
        })).ToArray();
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(StressScale.Timeout(TimeSpan.FromSeconds(60))), "an acquirer hung");
        }

        Assert.InRange(admitted, 55, 60); // what the inner bucket had left, less at most its batch slack
        Assert.Equal(1000 - admitted, outer.AvailableTokens); // every refused request's outer token came back
    }
}
