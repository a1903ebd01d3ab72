using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class AdaptiveConcurrencyRateLimiterTests
{
    private static (AdaptiveConcurrencyRateLimiter Adapter, AdaptiveConcurrencyLimiter Limiter, ManualTimeProvider Time) Create(int limit, AdaptiveLimit? algorithm = null)
    {
        var time = new ManualTimeProvider();
        var limiter = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = algorithm ?? new AimdLimit(new AimdLimitOptions { InitialLimit = limit }),
            TimeProvider = time,
            MinSamples = 1,
        });
        return (new AdaptiveConcurrencyRateLimiter(limiter), limiter, time);
    }

    [Fact]
    public void AttemptAcquire_UpToLimit_ThenFails_DisposeReleases()
    {
        var (adapter, limiter, _) = Create(2);
        RateLimitLease a = adapter.AttemptAcquire();
        RateLimitLease b = adapter.AttemptAcquire();
        RateLimitLease c = adapter.AttemptAcquire();
        Assert.True(a.IsAcquired);
        Assert.True(b.IsAcquired);
        Assert.False(c.IsAcquired);
        Assert.Equal(2, limiter.InFlight);
        a.Dispose();
        a.Dispose(); // harmless
        Assert.Equal(1, limiter.InFlight);
        c.Dispose(); // a failed lease releases nothing
        Assert.Equal(1, limiter.InFlight);

        RateLimiterStatistics stats = adapter.GetStatistics()!;
        Assert.Equal(1, stats.CurrentAvailablePermits);
        Assert.Equal(2, stats.TotalSuccessfulLeases);
        Assert.Equal(1, stats.TotalFailedLeases);
        b.Dispose();
    }

    [Fact]
    public void Lease_CompleteDropped_FeedsTheAlgorithm()
    {
        var recorder = new AdaptiveConcurrencyLimiterTests.RecordingLimit(next: 5);
        var (adapter, _, time) = Create(0, recorder);
        RateLimitLease lease = adapter.AttemptAcquire();
        time.Advance(TimeSpan.FromSeconds(1));
        ((AdaptiveRateLimitLease)lease).Complete(AdaptiveOutcome.Dropped);
        lease.Dispose(); // already completed: no second release
        AdaptiveWindow window = Assert.Single(recorder.Windows);
        Assert.Equal(1, window.DroppedCount);
        Assert.Equal(0, window.SampleCount);
    }

    [Fact]
    public async Task AcquireAsync_NeverWaits()
    {
        var (adapter, _, _) = Create(1);
        using RateLimitLease first = await adapter.AcquireAsync();
        ValueTask<RateLimitLease> second = adapter.AcquireAsync();
        Assert.True(second.IsCompleted);
        Assert.False((await second).IsAcquired);
    }

    [Fact]
    public void AttemptAcquire_ZeroPermits_ReportsAvailabilityWithoutTaking()
    {
        var (adapter, limiter, _) = Create(1);
        Assert.True(adapter.AttemptAcquire(0).IsAcquired);
        Assert.Equal(0, limiter.InFlight);
        using RateLimitLease held = adapter.AttemptAcquire();
        Assert.False(adapter.AttemptAcquire(0).IsAcquired);
    }

    [Fact]
    public void BadArguments_Throw()
    {
        var (adapter, _, _) = Create(1);
        Assert.Throws<ArgumentOutOfRangeException>(() => adapter.AttemptAcquire(2));
        Assert.Throws<ArgumentNullException>(() => new AdaptiveConcurrencyRateLimiter(null!));
        RateLimitLease lease = adapter.AttemptAcquire();
        Assert.Throws<ArgumentOutOfRangeException>(() => ((AdaptiveRateLimitLease)lease).Complete((AdaptiveOutcome)9));
        lease.Dispose();
        adapter.Dispose();
        Assert.Throws<ObjectDisposedException>(() => adapter.AttemptAcquire());
    }
}
