using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using LockFree.Diagnostics;
using Xunit;

namespace LockFree.Tests.Unit.Diagnostics;

public sealed class MetricsRegistryTests
{
    [Fact]
    public void Register_ManySourcesCollectedWithoutAListener_RegistryStaysBounded()
    {
        // Named sources that are never disposed (TokenBucket and AdaptiveConcurrencyLimiter have no Dispose) and no
        // listener ever collecting: the registry must not keep one entry per source ever created.
        var registry = new MetricsRegistry<object>();
        for (int round = 0; round < 20; round++)
        {
            RegisterGarbage(registry, 500);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
        }

        var live = new object();
        registry.Register(live);
        Assert.True(registry.Entries < 2_000, $"{registry.Entries} entries held for 1 live source after 10,000 dead ones");
        GC.KeepAlive(live);
    }

    [Fact]
    public void Register_LiveSources_AllStayRegistered()
    {
        var registry = new MetricsRegistry<object>();
        var live = new List<object>();
        for (int i = 0; i < 3_000; i++)
        {
            var source = new object();
            live.Add(source);
            registry.Register(source);
        }

        List<Measurement<long>> measurements = registry.Collect<long>(_ => new Measurement<long>(1));
        Assert.Equal(3_000, measurements.Count);
        GC.KeepAlive(live);
    }

    [Fact]
    public void Dispose_NamedTokenBucketRateLimiter_StopsReporting()
    {
        string name = "disposed-limiter-" + Guid.NewGuid().ToString("N");
        var limiter = new LockFreeTokenBucketRateLimiter(new LockFreeTokenBucketRateLimiterOptions { TokenLimit = 5, TokensPerSecond = 1, Name = name });
        Assert.Contains("lockfree.limiter.limit", ReadLimiterInstruments(name));

        limiter.Dispose();

        Assert.Empty(ReadLimiterInstruments(name));
        GC.KeepAlive(limiter);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RegisterGarbage(MetricsRegistry<object> registry, int count)
    {
        for (int i = 0; i < count; i++)
        {
            registry.Register(new object());
        }
    }

    private static HashSet<string> ReadLimiterInstruments(string name)
    {
        var seen = new HashSet<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == TokenBucketMetrics.MeterName && instrument.Name.StartsWith("lockfree.limiter.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == TokenBucketMetrics.NameTag && (string?)tag.Value == name)
                {
                    seen.Add(instrument.Name);
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }
}
