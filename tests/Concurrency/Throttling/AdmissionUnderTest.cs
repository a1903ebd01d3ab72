using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.Throttling;

/// <summary>The admission protocol a schedule test drives: the real engine or a planted variant.</summary>
internal interface IAdmission
{
    bool TryAcquire(out long start);

    void Complete(long start, AdaptiveOutcome outcome);

    long InFlight { get; }

    long Limit { get; }

    long Acquired { get; }

    long Rejected { get; }
}

/// <summary>The real <see cref="AdaptiveLimiterEngine{TAtomics}"/> under <see cref="TestAtomics"/>.</summary>
internal sealed class EngineAdmission(AdaptiveLimit algorithm, TimeProvider time, int sampleEvery = 1) : IAdmission
{
    private AdaptiveLimiterEngine<TestAtomics> _engine = new(algorithm, time, TimeSpan.FromMilliseconds(100), minSamples: 1, sampleEvery);

    public long InFlight => _engine.InFlight;

    public long Limit => _engine.Limit;

    public long Acquired => _engine.Acquired;

    public long Rejected => _engine.Rejected;

    public bool TryAcquire(out long start) => _engine.TryAcquire(out start);

    public void Complete(long start, AdaptiveOutcome outcome) => _engine.Complete(start, outcome);
}

/// <summary>
/// Planted bug: admission as check-then-increment (load the count, compare with the limit, then add) instead of a
/// compare-and-swap. Two acquirers that both see limit − 1 both get in.
/// </summary>
internal sealed class CheckThenIncrementAdmission(long limit) : IAdmission
{
    private long _inFlight;
    private long _acquired;
    private long _rejected;

    public long InFlight => TestAtomics.LoadAcquire(ref _inFlight);

    public long Limit => limit;

    public long Acquired => TestAtomics.LoadAcquire(ref _acquired);

    public long Rejected => TestAtomics.LoadAcquire(ref _rejected);

    public bool TryAcquire(out long start)
    {
        start = 0;
        if (TestAtomics.LoadAcquire(ref _inFlight) < limit)
        {
            TestAtomics.Add(ref _inFlight, 1); // planted: the check above is stale by now
            TestAtomics.Add(ref _acquired, 1);
            return true;
        }

        TestAtomics.Add(ref _rejected, 1);
        return false;
    }

    public void Complete(long start, AdaptiveOutcome outcome) => TestAtomics.Add(ref _inFlight, -1);
}

/// <summary>A clock that stands still: windows never close, so the limit stays at its initial value.</summary>
internal sealed class FrozenTime : TimeProvider
{
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => TimeSpan.TicksPerDay;
}

/// <summary>A clock that jumps one second at every reading: every completion finds its window old enough to close.</summary>
internal sealed class RacingTime : TimeProvider
{
    private long _now = TimeSpan.TicksPerDay;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _now += TimeSpan.TicksPerSecond; // only one logical thread runs at a time
}

/// <summary>
/// An algorithm that checks it is never run by two threads at once: its Update holds a scheduling point (so the
/// scheduler can switch threads inside it) and alternates the limit between 1 and 3.
/// </summary>
internal sealed class ReentrancyProbeLimit() : AdaptiveLimit(new AimdLimitOptions { InitialLimit = 2, MinLimit = 1, MaxLimit = 3 })
{
    private long _point;
    private int _active;

    public int Updates { get; private set; }

    public override int Update(in AdaptiveWindow window)
    {
        _active++;
        if (_active != 1)
        {
            throw new InvalidOperationException($"algorithm entered by {_active} threads at once");
        }

        _ = TestAtomics.LoadAcquire(ref _point); // a scheduling point inside the update
        Updates++;
        _active--;
        return window.Limit == 1 ? 3 : 1;
    }
}
