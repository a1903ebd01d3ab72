using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.Backpressure;

/// <summary>
/// What the metrics cost the waiting path (acceptance gap E; <see cref="BackpressureMetricsOverheadBenchmarks"/> covers
/// the <c>Try</c> path, which records nothing). 1P1C <c>WriteAsync</c>/<c>ReadAsync</c> loops on the thread pool under
/// <see cref="OverflowPolicy.Wait"/>, single flags, a small <see cref="Capacity"/> so that writes park: every write that
/// parked and then wrote records its wait in the <c>lockfree.queue.wait_time</c> histogram, when the buffer is named and
/// something listens. Three cases: an unnamed buffer (no metrics; baseline), a named buffer while nothing listens to the
/// <c>LockFree</c> meter (the histogram is not <c>Enabled</c>: one flag read per parked write), and a named buffer while a
/// <see cref="MeterListener"/> (started in that case's setup only, disposed in its cleanup) has every <c>LockFree</c>
/// instrument enabled and counts the histogram's samples in a callback (a clock read and a <c>Record</c> with one tag
/// per parked write). Per-op = an item moved; the sum is checked. FailEnq/op and FailDeq/op count the
/// <c>WriteAsync</c>/<c>ReadAsync</c> calls that did not complete synchronously; the samples recorded per item are
/// printed (<c>// LockFree.Samples</c>) and checked: none without the listener, at least one per write that did not
/// complete synchronously with it. Not in the quick run (run it with <c>--quick --filter '*MetricsWaitOverhead*'</c>).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class BackpressureMetricsWaitOverheadBenchmarks : FailedTryBenchmark
{
    /// <summary>Items per invocation.</summary>
    public const int Items = 1 << 16;

    private const string WaitTimeInstrument = "lockfree.queue.wait_time";
    private const int RoundTimeoutMilliseconds = 60_000;
    private const int WarmUpRounds = 200;
    private const int WarmUpMilliseconds = 3_000;

    private BackpressureBuffer<long> _buffer = null!;
    private MeterListener? _listener;
    private long _samples, _samplesBefore, _writeWaits, _items;
    private string _case = "";

    /// <summary>Capacity of the buffer: small, so that writes park (about one wait per <c>Capacity</c> items in lock-step).</summary>
    [Params(4, 64)]
    public int Capacity { get; set; }

    [GlobalSetup(Targets = [nameof(Unnamed)])]
    public void SetupUnnamed() => Setup(name: null, listen: false);

    [GlobalSetup(Targets = [nameof(NamedNotListened)])]
    public void SetupNamedNotListened() => Setup("bench-wait-unlistened", listen: false);

    [GlobalSetup(Targets = [nameof(NamedListened)])]
    public void SetupNamedListened() => Setup("bench-wait-listened", listen: true);

    [GlobalCleanup(Targets = [nameof(Unnamed), nameof(NamedNotListened), nameof(NamedListened)])]
    public void Cleanup()
    {
        _listener?.Dispose();
        _listener = null;
        _buffer.Dispose();
        if (_items > 0)
        {
            Console.WriteLine(FormattableString.Invariant(
                $"// LockFree.Samples {nameof(BackpressureMetricsWaitOverheadBenchmarks)}.{_case}(Capacity={Capacity}): {(double)_samples / _items:G3} wait-time samples/item ({_samples} over {_items} items, {_writeWaits} writes did not complete synchronously)"));
        }

        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long Unnamed() => Run();

    [Benchmark(OperationsPerInvoke = Items)]
    public long NamedNotListened() => Run();

    [Benchmark(OperationsPerInvoke = Items)]
    public long NamedListened() => Run();

    private void Setup(string? name, bool listen)
    {
        _buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = Capacity,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = true,
            SingleReader = true,
            Name = name,
        });
        if (listen)
        {
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
            _listener.SetMeasurementEventCallback<double>((instrument, _, _, _) =>
            {
                if (instrument.Name == WaitTimeInstrument)
                {
                    Interlocked.Increment(ref _samples);
                }
            });
            _listener.Start();
        }

        // JIT, tiering and pools warm before the harness measures, for a while: in a first quick run with 20 rounds the
        // first case of each capacity (the baseline) measured 1.1-1.5x slower than the two after it, which ran the same code.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int round = 0; round < WarmUpRounds && clock.ElapsedMilliseconds < WarmUpMilliseconds; round++)
        {
            Move();
            if (round % 25 == 24)
            {
                Thread.Sleep(150); // a quiet spell longer than the runtime's 100 ms tiering delay: promotion to Tier 1 (see TierUp)
            }
        }

        _samples = _samplesBefore = _writeWaits = _items = 0;
    }

    private long Run([System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        if ((_listener is not null) != (method == nameof(NamedListened)))
        {
            throw new InvalidOperationException($"{method} ran {(_listener is null ? "without" : "with")} the listener: the targeted setups did not apply");
        }

        _samplesBefore = Volatile.Read(ref _samples);
        (long sum, long writeWaits, long readWaits) = Move();
        long samples = Volatile.Read(ref _samples) - _samplesBefore;
        if (_listener is null)
        {
            Transfer.Check(samples, 0, "wait-time samples without a listener");
        }
        else if (samples < writeWaits)
        {
            throw new InvalidOperationException($"{samples} wait-time samples for {writeWaits} writes that did not complete synchronously");
        }

        _writeWaits += writeWaits;
        _items += Items;
        _case = method;
        Count(Items, writeWaits, readWaits, method);
        return sum;
    }

    private (long Sum, long WriteWaits, long ReadWaits) Move()
    {
        Task<(long Sum, long Waits)> consume = Task.Run(() => AsyncReads.FromBuffer(_buffer, Items));
        Task<long> produce = Task.Run(() => Produce(_buffer));
        if (!Task.WaitAll([consume, produce], RoundTimeoutMilliseconds)) // rethrows a loop's failure
        {
            throw new TimeoutException($"a round did not finish within {RoundTimeoutMilliseconds} ms (buffer Count {_buffer.Count})");
        }

        Transfer.Check(consume.Result.Sum, Transfer.SumOneTo(Items), "reader's sum");
        Transfer.Check(_buffer.Count, 0, "items left over");
        return (consume.Result.Sum, produce.Result, consume.Result.Waits);
    }

    private static async Task<long> Produce(BackpressureBuffer<long> buffer)
    {
        long waits = 0;
        for (long value = 1; value <= Items; value++)
        {
            ValueTask<WriteResult> write = buffer.WriteAsync(value);
            waits += write.IsCompleted ? 0 : 1;
            WriteResult result = await write.ConfigureAwait(false);
            if (result.Outcome != WriteOutcome.Accepted)
            {
                throw new InvalidOperationException($"WriteAsync under Wait answered {result}.");
            }
        }

        return waits;
    }
}
