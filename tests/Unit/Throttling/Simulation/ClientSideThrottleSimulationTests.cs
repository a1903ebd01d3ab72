using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>
/// The SRE throttle in virtual time: a client offering 1000 requests/s to a backend that serves 200/s and rejects
/// the rest (so without the throttle it rejects 80% of what it gets).
/// </summary>
public sealed class ClientSideThrottleSimulationTests(ITestOutputHelper output)
{
    [Fact]
    public void TryAdmit_BackendRejecting80Percent_ConvergesToFormulaAndCutsBackendLoad()
    {
        var clock = new VirtualClock();
        ClientSideThrottle throttle = CreateThrottle(clock, seed: 11);
        var backend = new CapacityBackend(ratePerSecond: 200);

        Run(clock, throttle, backend, seconds: 30, offeredPerSecond: 1000, out _, out _);
        Run(clock, throttle, backend, seconds: 20, offeredPerSecond: 1000, out long sent, out long attempted);

        double localRejection = 1 - ((double)sent / attempted);
        double formula = throttle.Probability(throttle.Requests, throttle.Accepts);
        output.WriteLine($"local rejection {localRejection:0.000}, formula {formula:0.000}, backend received {sent / 20.0:0}/s");

        // Expected fixed point: the backend accepts its 200/s, so p = (R − K·A)/(R + 1) ≈ 1 − 2·200/1000 = 0.6.
        Assert.InRange(localRejection, formula - 0.03, formula + 0.03);
        Assert.InRange(localRejection, 0.55, 0.65);

        // Backend load cut from 1000/s to about K·capacity = 400/s.
        Assert.InRange(sent / 20.0, 350, 450);
    }

    [Fact]
    public void TryAdmit_BackendRecovers_RejectionFallsToZeroWithinOneWindow()
    {
        var clock = new VirtualClock();
        ClientSideThrottle throttle = CreateThrottle(clock, seed: 3);
        var backend = new CapacityBackend(ratePerSecond: 200);
        Run(clock, throttle, backend, seconds: 20, offeredPerSecond: 1000, out _, out _);
        Assert.True(throttle.RejectionProbability > 0.5);

        backend.RatePerSecond = 5000;
        Run(clock, throttle, backend, seconds: 11, offeredPerSecond: 1000, out _, out _);
        Run(clock, throttle, backend, seconds: 5, offeredPerSecond: 1000, out long sent, out long attempted);
        Assert.Equal(0, throttle.RejectionProbability);
        Assert.Equal(attempted, sent);
    }

    /// <summary>K = 2 (the default), a 10 s window in 10 buckets, a seeded random source.</summary>
    private static ClientSideThrottle CreateThrottle(VirtualClock clock, ulong seed) =>
        new(new ClientSideThrottleOptions
        {
            Window = TimeSpan.FromSeconds(10),
            Buckets = 10,
            TimeProvider = clock,
            RandomSource = new SimRandom(seed).NextDouble,
        });

    private static void Run(VirtualClock clock, ClientSideThrottle throttle, CapacityBackend backend, int seconds, int offeredPerSecond, out long sent, out long attempted)
    {
        sent = 0;
        attempted = 0;
        long step = TimeSpan.TicksPerSecond / offeredPerSecond;
        for (long i = 0; i < (long)seconds * offeredPerSecond; i++)
        {
            clock.AdvanceTo(clock.Now + step);
            attempted++;
            if (!throttle.TryAdmit())
            {
                continue;
            }

            sent++;
            if (backend.TryServe(clock.Now))
            {
                throttle.RecordAccepted();
            }
            else
            {
                throttle.RecordRejected();
            }
        }
    }

    /// <summary>A backend that serves at most <see cref="RatePerSecond"/> (a token bucket with a burst of 10) and rejects the rest at once.</summary>
    private sealed class CapacityBackend(double ratePerSecond)
    {
        private double _tokens = 10;
        private long _last;

        public double RatePerSecond { get; set; } = ratePerSecond;

        public bool TryServe(long now)
        {
            if (_last != 0)
            {
                _tokens = Math.Min(10, _tokens + (RatePerSecond * (now - _last) / TimeSpan.TicksPerSecond));
            }

            _last = now;
            if (_tokens >= 1)
            {
                _tokens -= 1;
                return true;
            }

            return false;
        }
    }
}
