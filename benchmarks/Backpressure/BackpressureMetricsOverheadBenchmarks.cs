using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// What the metrics cost the hot path (acceptance audit, 2026-11-23: issue 4 asks to show that an unlistened instrument
/// costs nothing measurable; the claim rested on the design alone). One thread, <c>TryWrite</c>+<c>TryRead</c> pairs on
/// a multi-writer multi-reader buffer of capacity 1024 that never holds more than one item: an unnamed buffer (no
/// metrics; baseline), a named buffer nobody listens to, and a named buffer while a <see cref="MeterListener"/> listens
/// to every instrument of the <c>LockFree</c> meter (observable instruments are read only when the listener collects,
/// which this loop never asks for; the listener runs during that case only). Per-op = a pair. The waiting path, where
/// the wait-time histogram records: <see cref="BackpressureMetricsWaitOverheadBenchmarks"/>. Not in the quick run.
/// </summary>
[MemoryDiagnoser]
public class BackpressureMetricsOverheadBenchmarks
{
    /// <summary>Write+read pairs per invocation.</summary>
    public const int Pairs = 1 << 16;

    private BackpressureBuffer<long> _unnamed = null!, _named = null!, _listened = null!;
    private MeterListener? _listener;

    [GlobalSetup(Targets = [nameof(Unnamed), nameof(NamedNotListened)])]
    public void Setup() => CreateBuffers();

    /// <summary>The listener runs for <see cref="NamedListened"/> only (started here, disposed in the cleanup): before, one setup
    /// started it for every case, so the "not listened" buffer had its meter listened to as well.</summary>
    [GlobalSetup(Target = nameof(NamedListened))]
    public void SetupListened()
    {
        CreateBuffers();
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "LockFree")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.Start();
    }

    private void CreateBuffers()
    {
        _unnamed = Create(null);
        _named = Create("bench-unlistened");
        _listened = Create("bench-listened");

        // Every loop at Tier 1 before the harness measures (see TierUp): without it, the first case of the run (the
        // baseline) measured partly unoptimized code, 39 ns/op against 15-17 for the others in one quick run.
        TierUp.Run(() => Run(_unnamed), () => Run(_named), () => Run(_listened));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _listener?.Dispose();
        _listener = null;
        _unnamed.Dispose();
        _named.Dispose();
        _listened.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public long Unnamed() => Run(_unnamed);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long NamedNotListened() => Run(_named);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public long NamedListened() => Run(_listened);

    private static BackpressureBuffer<long> Create(string? name) => new(new BackpressureBufferOptions<long>
    {
        Capacity = 1024,
        FullMode = OverflowPolicy.Wait,
        Name = name,
    });

    private static long Run(BackpressureBuffer<long> buffer)
    {
        long sum = 0;
        for (long i = 1; i <= Pairs; i++)
        {
            if (!buffer.TryWrite(i).IsAccepted || !buffer.TryRead(out long item))
            {
                throw new InvalidOperationException("a TryWrite or TryRead failed on a buffer that never holds more than one item");
            }

            sum += item;
        }

        Transfer.Check(sum, Transfer.SumOneTo(Pairs), "sum of the pairs");
        return sum;
    }
}
