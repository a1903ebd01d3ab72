namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>
/// A discrete-event simulation in virtual time: an open-loop Poisson client offering <see cref="OfferedRate"/>
/// requests per second through an <see cref="AdaptiveConcurrencyLimiter"/> to a <see cref="SimulatedService"/>.
/// Refused requests are shed. Deterministic for a seed. The limit is sampled every <see cref="SampleEvery"/>.
/// </summary>
public sealed class LimiterSimulation
{
    private readonly PriorityQueue<Event, long> _events = new();
    private readonly SimRandom _random;
    private readonly List<(long At, Action Change)> _changes = new();
    private long _nextSample;

    /// <summary>Creates a simulation; the limiter is built by <paramref name="algorithm"/> on the simulation's clock.</summary>
    public LimiterSimulation(AdaptiveLimit algorithm, SimulatedService service, ulong seed, double offeredRate)
    {
        Clock = new VirtualClock();
        Service = service;
        OfferedRate = offeredRate;
        _random = new SimRandom(seed);
        Limiter = new AdaptiveConcurrencyLimiter(new AdaptiveConcurrencyLimiterOptions
        {
            Algorithm = algorithm,
            TimeProvider = Clock,
            MinWindow = TimeSpan.FromMilliseconds(100),
            MinSamples = 10,
        });
        Start = Clock.Now;
        _nextSample = Start;
        _events.Enqueue(new Event(EventKind.Arrival, default, false), Start + _random.Exponential(TimeSpan.TicksPerSecond / offeredRate));
    }

    /// <summary>The virtual clock.</summary>
    public VirtualClock Clock { get; }

    /// <summary>The limiter under test.</summary>
    public AdaptiveConcurrencyLimiter Limiter { get; }

    /// <summary>The callee.</summary>
    public SimulatedService Service { get; }

    /// <summary>Requests per second the client offers.</summary>
    public double OfferedRate { get; set; }

    /// <summary>How often the limit is sampled into <see cref="Limits"/>.</summary>
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The clock reading at the start.</summary>
    public long Start { get; }

    /// <summary>(seconds since start, limit) every <see cref="SampleEvery"/>.</summary>
    public List<(double Seconds, int Limit)> Limits { get; } = new();

    /// <summary>Requests the limiter refused.</summary>
    public long Shed { get; private set; }

    /// <summary>Schedules a change of the scenario (e.g. the service's capacity) at <paramref name="seconds"/>.</summary>
    public void At(double seconds, Action change) => _changes.Add((Start + (long)(seconds * TimeSpan.TicksPerSecond), change));

    /// <summary>Runs the simulation until <paramref name="seconds"/> after the start.</summary>
    public void RunUntil(double seconds)
    {
        long end = Start + (long)(seconds * TimeSpan.TicksPerSecond);
        _changes.Sort((a, b) => a.At.CompareTo(b.At));
        while (_events.TryPeek(out Event e, out long at) && at <= end)
        {
            while (_nextSample <= at)
            {
                Clock.AdvanceTo(_nextSample);
                Limits.Add(((double)(_nextSample - Start) / TimeSpan.TicksPerSecond, Limiter.Limit));
                _nextSample += SampleEvery.Ticks;
            }

            while (_changes.Count > 0 && _changes[0].At <= at)
            {
                Clock.AdvanceTo(Math.Max(Clock.Now, _changes[0].At));
                _changes[0].Change();
                _changes.RemoveAt(0);
            }

            _events.Dequeue();
            Clock.AdvanceTo(at);
            if (e.Kind == EventKind.Arrival)
            {
                Arrive();
                _events.Enqueue(new Event(EventKind.Arrival, default, false), at + _random.Exponential(TimeSpan.TicksPerSecond / OfferedRate));
            }
            else
            {
                Service.Leave();
                e.Lease.Complete(e.Served ? AdaptiveOutcome.Success : AdaptiveOutcome.Dropped);
            }
        }
    }

    /// <summary>The limits sampled in [from, to) seconds.</summary>
    public int[] LimitsBetween(double from, double to) =>
        Limits.Where(s => s.Seconds >= from && s.Seconds < to).Select(s => s.Limit).ToArray();

    private void Arrive()
    {
        if (!Limiter.TryAcquire(out AdaptiveLease lease))
        {
            Shed++;
            return;
        }

        (bool served, long latency) = Service.Arrive(_random);
        _events.Enqueue(new Event(EventKind.Completion, lease, served), Clock.Now + latency);
    }

    private enum EventKind
    {
        Arrival,
        Completion,
    }

    private readonly record struct Event(EventKind Kind, AdaptiveLease Lease, bool Served);
}
