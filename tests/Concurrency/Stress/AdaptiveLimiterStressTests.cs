using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real threads hammer one <see cref="AdaptiveConcurrencyLimiter"/> with TryAcquire/Complete while windows close
/// on almost every completion (MinWindow of one tick, one sample), so the single updater runs concurrently with
/// admissions all the time. Checks: requests inside never exceed the largest limit the algorithm ever sets; the
/// algorithm is never entered twice at once; at the end in-flight is 0 and every attempt is counted exactly once.
/// </summary>
public sealed class AdaptiveLimiterStressTests(ITestOutputHelper output)
{
    private const int Threads = 4;

    [Fact]
    public void TryAcquireComplete_ManyThreadsMovingLimit_AccountsForEveryAttempt()
    {
        long perThread = StressScale.Items(50_000);
        var algorithm = new AlternatingLimit();
        var limiter = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = algorithm,
            MinWindow = TimeSpan.FromTicks(1),
            MinSamples = 1,
        });
        int inside = 0, maxInside = 0;
        long successes = 0;
        using var start = new Barrier(Threads);
        var failures = new List<Exception>();
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                long mine = 0;
                for (long i = 0; i < perThread; i++)
                {
                    if (!limiter.TryAcquire(out AdaptiveLease lease))
                    {
                        continue;
                    }

                    mine++;
                    int now = Interlocked.Increment(ref inside);
                    int seen;
                    while (now > (seen = Volatile.Read(ref maxInside)) && Interlocked.CompareExchange(ref maxInside, now, seen) != seen)
                    {
                    }

                    Interlocked.Decrement(ref inside);
                    lease.Complete((i % 7) switch { 0 => AdaptiveOutcome.Dropped, 1 => AdaptiveOutcome.Ignore, _ => AdaptiveOutcome.Success });
                }

                Interlocked.Add(ref successes, mine);
            }
            catch (Exception ex)
            {
                lock (failures)
                {
                    failures.Add(ex);
                }
            }
        })).ToArray();

        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(StressScale.Timeout(TimeSpan.FromSeconds(60))), "stress thread hung");
        }

        Assert.Empty(failures);
        output.WriteLine($"{successes} admitted, {limiter.Rejected} refused, {algorithm.Updates} window closes, max inside {maxInside}");
        Assert.False(algorithm.Reentered, "the algorithm ran on two threads at once");
        Assert.InRange(maxInside, 1, AlternatingLimit.High);
        Assert.Equal(0, limiter.InFlight);
        Assert.Equal(successes, limiter.Acquired);
        Assert.Equal(Threads * perThread, limiter.Acquired + limiter.Rejected);
        Assert.True(algorithm.Updates > 0);
    }

    /// <summary>Alternates the limit between 2 and <see cref="High"/>; records any concurrent entry.</summary>
    private sealed class AlternatingLimit() : AdaptiveLimit(new AimdLimitOptions { InitialLimit = 2, MinLimit = 1, MaxLimit = High })
    {
        public const int High = 6;

        private int _active;

        public bool Reentered { get; private set; }

        public long Updates { get; private set; }

        public override int Update(in AdaptiveWindow window)
        {
            if (Interlocked.Increment(ref _active) != 1)
            {
                Reentered = true;
            }

            Updates++;
            Thread.SpinWait(20); // widen the window in which a second updater could enter
            Interlocked.Decrement(ref _active);
            return window.Limit == 2 ? High : 2;
        }
    }
}
