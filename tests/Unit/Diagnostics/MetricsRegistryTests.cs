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

    [Fact]
    public void Collect_TwoBuffersWithTheSameName_ReportOneSummedSeries()
    {
        // Two buffers sharing a name (one per connection, say) gave two measurements with identical tags; a backend
        // keyed by tags (OpenTelemetry, dotnet-counters) keeps one of them, so one buffer's counts vanished.
        string name = "shared-name-" + Guid.NewGuid().ToString("N");
        using var first = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4, FullMode = OverflowPolicy.Reject, Name = name });
        using var second = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 8, FullMode = OverflowPolicy.Reject, Name = name });
        Assert.True(first.TryWrite(1).IsAccepted);
        Assert.True(second.TryWrite(2).IsAccepted);
        Assert.True(second.TryWrite(3).IsAccepted);

        Dictionary<string, List<long>> seen = ReadInstruments(BackpressureMetrics.NameTag, name, "lockfree.queue.");

        Assert.Equal([3L], seen["lockfree.queue.enqueued"]);
        Assert.Equal([3L], seen["lockfree.queue.depth"]);
        Assert.Equal([12L], seen["lockfree.queue.capacity"]);
    }

    [Fact]
    public void Collect_OneSourceThrows_OtherSourcesStillReportedAndTheFailureCounted()
    {
        // A named dead-letter queue whose clock fails: reading its statistics (the oldest letter's age) throws. Before,
        // that one exception ended the instrument's whole collection: no other queue's measurement reached the
        // listener (RecordObservableInstruments threw an AggregateException after dropping them all).
        var failing = new FailingClock();
        string badName = "failing-dlq-" + Guid.NewGuid().ToString("N");
        string goodName = "healthy-dlq-" + Guid.NewGuid().ToString("N");
        using var bad = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 4, Name = badName, TimeProvider = failing });
        using var good = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 4, Name = goodName });
        bad.TryAdd(1, "src", "reason", null, 1);
        good.TryAdd(2, "src", "reason", null, 1);
        good.TryAdd(3, "src", "reason", null, 1);
        long failuresBefore = ReadUntagged("lockfree.metrics.failed_observations");
        failing.Fail = true;

        Dictionary<string, List<long>> goodSeen = ReadInstruments(BackpressureMetrics.NameTag, goodName, "lockfree.deadletter.");
        Dictionary<string, List<long>> badSeen = ReadInstruments(BackpressureMetrics.NameTag, badName, "lockfree.deadletter.");

        Assert.Equal([2L], goodSeen["lockfree.deadletter.count"]);
        Assert.Equal([2L], goodSeen["lockfree.deadletter.added"]);
        Assert.Empty(badSeen); // the failing source reports nothing rather than a made-up value
        Assert.True(ReadUntagged("lockfree.metrics.failed_observations") - failuresBefore >= 8, "each failed observation is counted");
        GC.KeepAlive(bad);
        GC.KeepAlive(good);
    }

    /// <summary>A system clock that throws once told to (a stand-in for a broken user clock).</summary>
    private sealed class FailingClock : TimeProvider
    {
        public volatile bool Fail;

        public override long GetTimestamp() => Fail ? throw new InvalidOperationException("clock failed") : System.GetTimestamp();
    }

    private static long ReadUntagged(string instrumentName)
    {
        long total = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName && instrument.Name == instrumentName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => total += value);
        listener.Start();
        listener.RecordObservableInstruments();
        return total;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RegisterGarbage(MetricsRegistry<object> registry, int count)
    {
        for (int i = 0; i < count; i++)
        {
            registry.Register(new object());
        }
    }

    private static Dictionary<string, List<long>> ReadInstruments(string tagKey, string name, string prefix)
    {
        var seen = new Dictionary<string, List<long>>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName && instrument.Name.StartsWith(prefix, StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == tagKey && (string?)tag.Value == name)
                {
                    if (!seen.TryGetValue(instrument.Name, out List<long>? values))
                    {
                        seen[instrument.Name] = values = [];
                    }

                    values.Add(value);
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }

    internal static HashSet<string> ReadLimiterInstruments(string name)
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
