namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>
/// The simulated callee: <see cref="Capacity"/> requests are served in parallel at <see cref="BaseLatency"/>; beyond
/// that they share the servers (processor sharing), so a request admitted when n are in the service takes
/// BaseLatency · max(1, n / Capacity) · (1 ± Jitter/2). Above Capacity + <see cref="QueueLimit"/> in the service, a
/// request is dropped at once (an overload rejection, after <see cref="RejectLatency"/>).
/// </summary>
public sealed class SimulatedService
{
    /// <summary>Requests served in parallel at the base latency.</summary>
    public int Capacity { get; set; } = 40;

    /// <summary>Requests the service queues beyond <see cref="Capacity"/> before it drops.</summary>
    public int QueueLimit { get; set; } = 10;

    /// <summary>Latency of one request when the service is not saturated.</summary>
    public TimeSpan BaseLatency { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Time a drop takes to come back.</summary>
    public TimeSpan RejectLatency { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Relative spread of the latency (uniform, total width).</summary>
    public double Jitter { get; init; } = 0.2;

    /// <summary>Requests in the service.</summary>
    public int InFlight { get; private set; }

    /// <summary>Requests served.</summary>
    public long Served { get; private set; }

    /// <summary>Requests dropped.</summary>
    public long Dropped { get; private set; }

    /// <summary>Requests that reached the service (served or dropped).</summary>
    public long Received => Served + Dropped;

    /// <summary>A request arrives: returns whether it is served and after how long (ticks) the answer comes back.</summary>
    public (bool Served, long LatencyTicks) Arrive(SimRandom random)
    {
        if (InFlight + 1 > Capacity + QueueLimit)
        {
            Dropped++;
            InFlight++;
            return (false, RejectLatency.Ticks);
        }

        InFlight++;
        Served++;
        double load = Math.Max(1.0, (double)InFlight / Capacity);
        double jitter = 1 + (Jitter * (random.NextDouble() - 0.5));
        return (true, Math.Max(1, (long)(BaseLatency.Ticks * load * jitter)));
    }

    /// <summary>A request leaves the service.</summary>
    public void Leave() => InFlight--;
}
