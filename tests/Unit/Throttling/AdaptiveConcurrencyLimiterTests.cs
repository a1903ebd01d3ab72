using System.Diagnostics.Metrics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class AdaptiveConcurrencyLimiterTests
{
    private static AdaptiveConcurrencyLimiter Create(AdaptiveLimit algorithm, TimeProvider? time = null, int minSamples = 1, string? name = null) =>
        new(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = algorithm,
            TimeProvider = time ?? new ManualTimeProvider(),
            MinWindow = TimeSpan.FromMilliseconds(100),
            MinSamples = minSamples,
            Name = name,
        });

    [Fact]
    public void TryAcquire_UpToLimit_SucceedsThenRejects()
    {
        var limiter = Create(new AimdLimit(new AimdLimitOptions { InitialLimit = 3 }));
        var leases = new List<AdaptiveLease>();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
            Assert.True(lease.IsAcquired);
            leases.Add(lease);
        }

        Assert.False(limiter.TryAcquire(out AdaptiveLease refused));
        Assert.False(refused.IsAcquired);
        Assert.Equal(3, limiter.InFlight);
        Assert.Equal(3, limiter.Acquired);
        Assert.Equal(1, limiter.Rejected);

        leases[0].Complete(AdaptiveOutcome.Ignore);
        Assert.Equal(2, limiter.InFlight);
        Assert.True(limiter.TryAcquire(out _));
    }

    [Fact]
    public void Complete_DefaultLease_ThrowsInvalidOperation() =>
        Assert.Throws<InvalidOperationException>(() => default(AdaptiveLease).Complete());

    [Fact]
    public void Complete_MoreThanAcquired_ThrowsAndLimiterStaysUsable()
    {
        var limiter = Create(new AimdLimit(new AimdLimitOptions { InitialLimit = 1 }));
        Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
        lease.Complete();
        Assert.Throws<InvalidOperationException>(() => lease.Complete());
        Assert.Equal(0, limiter.InFlight);
        Assert.True(limiter.TryAcquire(out AdaptiveLease again));
        Assert.False(limiter.TryAcquire(out _));
        again.Complete();
    }

    [Fact]
    public void Complete_UndefinedOutcome_ThrowsArgumentOutOfRange()
    {
        var limiter = Create(new AimdLimit());
        Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
        Assert.Throws<ArgumentOutOfRangeException>(() => lease.Complete((AdaptiveOutcome)7));
        Assert.Equal(1, limiter.InFlight);
        lease.Complete();
    }

    [Fact]
    public void Constructor_AlgorithmOwnedByAnotherLimiter_Throws()
    {
        var algorithm = new AimdLimit();
        _ = Create(algorithm);
        Assert.Throws<InvalidOperationException>(() => Create(algorithm));
    }

    [Fact]
    public void Constructor_BadOptions_Throw()
    {
        Assert.Throws<ArgumentNullException>(() => new AdaptiveConcurrencyLimiter(null!));
        Assert.Throws<ArgumentNullException>(() => new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions()));
        Assert.Throws<ArgumentNullException>(() => new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions { Algorithm = new AimdLimit(), TimeProvider = null! }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions { Algorithm = new AimdLimit(), MinWindow = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions { Algorithm = new AimdLimit(), MinSamples = 0 }));
    }

    [Fact]
    public void Window_ClosesAfterMinWindow_FeedsAverageLatencyAndPublishesLimit()
    {
        var time = new ManualTimeProvider();
        var recorder = new RecordingLimit(next: 7);
        var limiter = Create(recorder, time, minSamples: 2);

        Assert.True(limiter.TryAcquire(out AdaptiveLease a));
        Assert.True(limiter.TryAcquire(out AdaptiveLease b));
        Assert.True(limiter.TryAcquire(out AdaptiveLease c));
        time.Advance(TimeSpan.FromMilliseconds(10));
        a.Complete(AdaptiveOutcome.Success); // 10 ms
        time.Advance(TimeSpan.FromMilliseconds(20));
        b.Complete(AdaptiveOutcome.Dropped);
        Assert.Empty(recorder.Windows); // the window is only 30 ms old
        time.Advance(TimeSpan.FromMilliseconds(80));
        c.Complete(AdaptiveOutcome.Success); // 110 ms: closes the window

        AdaptiveWindow window = Assert.Single(recorder.Windows);
        Assert.Equal(20, window.Limit);
        Assert.Equal(2, window.SampleCount);
        Assert.Equal(1, window.DroppedCount);
        Assert.Equal(TimeSpan.FromMilliseconds(60), window.AverageLatency);
        Assert.Equal(3, window.MaxInFlight);
        Assert.Equal(TimeSpan.FromMilliseconds(110), window.Duration);
        Assert.Equal(7, limiter.Limit);
    }

    [Fact]
    public void SampleEvery_MeasuresOneInNAndCountsEveryDrop()
    {
        var time = new ManualTimeProvider();
        var recorder = new RecordingLimit(next: 7);
        var limiter = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = recorder,
            TimeProvider = time,
            MinSamples = 1,
            SampleEvery = 4,
        });
        var leases = new List<AdaptiveLease>();
        for (int i = 0; i < 8; i++)
        {
            Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
            leases.Add(lease);
        }

        Assert.Equal(2, leases.Count(l => l.Started != long.MinValue)); // admissions 4 and 8
        time.Advance(TimeSpan.FromSeconds(1));
        foreach (AdaptiveLease lease in leases.Where(l => l.Started == long.MinValue))
        {
            lease.Complete(AdaptiveOutcome.Dropped);
        }

        Assert.Empty(recorder.Windows); // unmeasured completions never close a window
        foreach (AdaptiveLease lease in leases.Where(l => l.Started != long.MinValue))
        {
            lease.Complete(AdaptiveOutcome.Success);
        }

        AdaptiveWindow window = Assert.Single(recorder.Windows);
        Assert.Equal(1, window.SampleCount); // the first measured completion closed it
        Assert.Equal(6, window.DroppedCount);
        Assert.Equal(0, limiter.InFlight);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(2048)]
    public void Constructor_SampleEveryNotPowerOfTwoInRange_Throws(int sampleEvery) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions { Algorithm = new AimdLimit(), SampleEvery = sampleEvery }));

    [Fact]
    public void Window_TooFewSamples_StaysOpen()
    {
        var time = new ManualTimeProvider();
        var recorder = new RecordingLimit(next: 7);
        var limiter = Create(recorder, time, minSamples: 3);
        for (int i = 0; i < 2; i++)
        {
            Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
            time.Advance(TimeSpan.FromSeconds(1));
            lease.Complete();
        }

        Assert.Empty(recorder.Windows);
        Assert.True(limiter.TryAcquire(out AdaptiveLease third));
        third.Complete();
        Assert.Equal(3, Assert.Single(recorder.Windows).SampleCount);
    }

    [Fact]
    public void Window_IgnoredOutcome_RecordsNoSample()
    {
        var time = new ManualTimeProvider();
        var recorder = new RecordingLimit(next: 7);
        var limiter = Create(recorder, time, minSamples: 1);
        Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
        time.Advance(TimeSpan.FromSeconds(1));
        lease.Complete(AdaptiveOutcome.Ignore);
        Assert.Empty(recorder.Windows);
        Assert.Equal(0, limiter.InFlight);
    }

    [Fact]
    public void Window_AlgorithmReturnsOutOfBounds_LimitIsKeptWithinBounds()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(new RecordingLimit(next: 5000), time);
        Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
        time.Advance(TimeSpan.FromSeconds(1));
        lease.Complete();
        Assert.Equal(1000, limiter.Limit);
    }

    [Fact]
    public void Window_LoweredLimit_RefusesUntilInFlightDrains()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(new RecordingLimit(next: 1), time);
        var leases = new List<AdaptiveLease>();
        for (int i = 0; i < 5; i++)
        {
            Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
            leases.Add(lease);
        }

        time.Advance(TimeSpan.FromSeconds(1));
        leases[0].Complete(); // closes the window: limit 1, 4 still in flight
        Assert.Equal(1, limiter.Limit);
        Assert.Equal(4, limiter.InFlight);
        Assert.False(limiter.TryAcquire(out _));
        for (int i = 1; i < 5; i++)
        {
            leases[i].Complete();
        }

        Assert.True(limiter.TryAcquire(out _));
    }

    [Fact]
    public void Metrics_NamedLimiter_ReportsLimitInFlightAcquiredRejected()
    {
        string name = "adaptive-" + Guid.NewGuid();
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == AdaptiveLimitMetrics.MeterName && instrument.Name.StartsWith("lockfree.adaptive.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == AdaptiveLimitMetrics.NameTag && (string?)tag.Value == name)
                {
                    values[instrument.Name] = value;
                }
            }
        });
        listener.Start();

        var limiter = Create(new AimdLimit(new AimdLimitOptions { InitialLimit = 2 }), name: name);
        Assert.True(limiter.TryAcquire(out _));
        Assert.True(limiter.TryAcquire(out _));
        Assert.False(limiter.TryAcquire(out _));
        listener.RecordObservableInstruments();

        Assert.Equal(2, values["lockfree.adaptive.limit"]);
        Assert.Equal(2, values["lockfree.adaptive.in_flight"]);
        Assert.Equal(2, values["lockfree.adaptive.acquired"]);
        Assert.Equal(1, values["lockfree.adaptive.rejected"]);
        GC.KeepAlive(limiter);
    }

    [Fact]
    public void Window_AlgorithmThrows_ExceptionSurfacesSlotReleasedLimiterUsable()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(new ThrowingLimit(), time);
        Assert.True(limiter.TryAcquire(out AdaptiveLease lease));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Throws<InvalidTimeZoneException>(() => lease.Complete());
        Assert.Equal(0, limiter.InFlight);
        Assert.Equal(20, limiter.Limit);
        Assert.True(limiter.TryAcquire(out AdaptiveLease next));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Throws<InvalidTimeZoneException>(() => next.Complete()); // the updater claim was released: the next window runs it again
    }

    private sealed class ThrowingLimit() : AdaptiveLimit(new AimdLimitOptions())
    {
        public override int Update(in AdaptiveWindow window) => throw new InvalidTimeZoneException("planted");
    }

    /// <summary>Records every window and answers a fixed limit.</summary>
    internal sealed class RecordingLimit(int next) : AdaptiveLimit(new AimdLimitOptions())
    {
        public List<AdaptiveWindow> Windows { get; } = new();

        public override int Update(in AdaptiveWindow window)
        {
            Windows.Add(window);
            return next;
        }
    }
}
