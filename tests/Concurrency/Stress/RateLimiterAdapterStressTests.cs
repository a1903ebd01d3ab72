using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real threads drive the RateLimiter adapters through every call shape at once (probes, one- and multi-permit
/// attempts, queued waits with cancellations, lease disposal, double disposal, drop reports) while the limit or the
/// clock moves, and count every lease they see. At the end the adapters' statistics must equal those counts exactly
/// (successful and failed leases, counted as the BCL counts them; cancelled waits in neither), nothing is queued and
/// nothing is in flight.
/// </summary>
public sealed class RateLimiterAdapterStressTests
{
    private const int Threads = 4;

    [Fact]
    public void AdaptiveAdapter_ManyThreadsMovingLimit_StatisticsAccountForEveryLease()
    {
        long perThread = StressScale.Items(20_000);
        var limiter = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = new AimdLimit(new AimdLimitOptions { InitialLimit = 4, MinLimit = 1, MaxLimit = 8, BackoffRatio = 0.5 }),
            MinWindow = TimeSpan.FromTicks(1),
            MinSamples = 1,
        });
        using var adapter = new AdaptiveConcurrencyRateLimiter(limiter);
        long successes = 0, failures = 0;
        RunThreads(perThread, (random, iteration, held) =>
        {
            long ok = 0, failed = 0;
            switch (random.Next(4))
            {
                case 0:
                    if (adapter.AttemptAcquire(0).IsAcquired) ok++; else failed++;
                    break;
                case 1:
                    RateLimitLease viaAsync = adapter.AcquireAsync(1).AsTask().GetAwaiter().GetResult(); // never queues
                    if (viaAsync.IsAcquired) { ok++; held.Add(viaAsync); } else { failed++; }
                    break;
                default:
                    RateLimitLease lease = adapter.AttemptAcquire(1);
                    if (lease.IsAcquired) { ok++; held.Add(lease); } else { failed++; }
                    break;
            }

            if (held.Count > random.Next(3))
            {
                int i = random.Next(held.Count);
                if (random.Next(8) == 0)
                {
                    ((AdaptiveRateLimitLease)held[i]).Complete(AdaptiveOutcome.Dropped); // moves the limit down
                }

                held[i].Dispose();
                held[i].Dispose(); // a second disposal is harmless
                held.RemoveAt(i);
            }

            Interlocked.Add(ref successes, ok);
            Interlocked.Add(ref failures, failed);
        });

        RateLimiterStatistics stats = adapter.GetStatistics()!;
        Assert.Equal(0, limiter.InFlight);
        Assert.Equal(successes, stats.TotalSuccessfulLeases);
        Assert.Equal(failures, stats.TotalFailedLeases);
        Assert.Equal(Threads * perThread, stats.TotalSuccessfulLeases + stats.TotalFailedLeases);
        Assert.Equal(limiter.Limit, stats.CurrentAvailablePermits);
        Assert.InRange(limiter.Limit, 1, 8);
    }

    [Fact]
    public void TokenBucketAdapter_ManyThreadsWaitingAndCancelling_StatisticsAccountForEveryLease()
    {
        long perThread = StressScale.Items(3_000);
        var time = new ManualTimeProvider();
        using var adapter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions
        {
            TokenLimit = 8,
            TokensPerSecond = 1000,
            QueueLimit = 6,
            TimeProvider = time,
        });
        long successes = 0, failures = 0, cancelled = 0;
        using var stop = new CancellationTokenSource();
        var clock = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                time.Advance(TimeSpan.FromMilliseconds(1)); // one token; fires the pump's timer on this thread
                Thread.Yield();
            }
        });
        clock.Start();
        try
        {
            RunThreads(perThread, (random, iteration, _) =>
            {
                int permits = random.Next(0, 4);
                if (random.Next(2) == 0)
                {
                    if (adapter.AttemptAcquire(permits).IsAcquired) Interlocked.Increment(ref successes); else Interlocked.Increment(ref failures);
                    return;
                }

                using var cts = new CancellationTokenSource();
                Task<RateLimitLease> wait = adapter.AcquireAsync(permits, cts.Token).AsTask();
                if (random.Next(3) == 0)
                {
                    cts.Cancel(); // may lose to the grant: then the lease counts
                }

                try
                {
                    if (wait.WaitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult().IsAcquired) Interlocked.Increment(ref successes); else Interlocked.Increment(ref failures);
                }
                catch (OperationCanceledException e)
                {
                    Assert.Equal(cts.Token, e.CancellationToken);
                    Interlocked.Increment(ref cancelled);
                }
            });
        }
        finally
        {
            stop.Cancel();
            Assert.True(clock.Join(TimeSpan.FromSeconds(60)), "clock thread hung");
        }

        RateLimiterStatistics stats = adapter.GetStatistics()!;
        Assert.Equal(0, stats.CurrentQueuedCount);
        Assert.Equal(0, adapter.Bucket.QueuedWaiters);
        Assert.Equal(successes, stats.TotalSuccessfulLeases);
        Assert.Equal(failures, stats.TotalFailedLeases);
        Assert.Equal(Threads * perThread, successes + failures + cancelled);
        Assert.True(cancelled > 0 && failures > 0, $"cancelled {cancelled}, failed {failures}: the run must exercise both");
    }

    private static void RunThreads(long perThread, Action<Random, long, List<RateLimitLease>> step)
    {
        using var start = new Barrier(Threads);
        var errors = new List<Exception>();
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            var random = new Random(1000 + t);
            var held = new List<RateLimitLease>();
            try
            {
                start.SignalAndWait();
                for (long i = 0; i < perThread; i++)
                {
                    step(random, i, held);
                }
            }
            catch (Exception e)
            {
                lock (errors)
                {
                    errors.Add(e);
                }
            }
            finally
            {
                held.ForEach(lease => lease.Dispose());
            }
        })).ToList();
        threads.ForEach(thread => thread.Start());
        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(StressScale.Timeout(TimeSpan.FromSeconds(120))), "stress thread hung");
        }

        Assert.Empty(errors);
    }
}
