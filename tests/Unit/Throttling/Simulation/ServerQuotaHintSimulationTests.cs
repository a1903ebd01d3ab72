using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>
/// Server hints in virtual time: a server grants 100 requests per fixed 10 s period and answers every request with
/// its remaining quota and the time to the reset (as RateLimit-Remaining / RateLimit-Reset headers); a client
/// wants to send 50 requests/s. Honouring the hints, the client sends no request the server would refuse, and spreads
/// the last <c>PaceBelow</c> requests of each period instead of firing them at once.
/// </summary>
public sealed class ServerQuotaHintSimulationTests(ITestOutputHelper output)
{
    private const int Quota = 100;
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);

    [Fact]
    public void TryAdmit_HonouringHints_ServerRefusesNothingAndQuotaIsUsed()
    {
        (long sent, long refusedByServer, long servedInLastSecondOfPeriods) = Run(useHints: true);
        output.WriteLine($"with hints: sent {sent}, refused by server {refusedByServer}, served in the last second of a period {servedInLastSecondOfPeriods}");
        Assert.Equal(0, refusedByServer);
        Assert.InRange(sent, 6 * Quota * 0.9, 6 * Quota); // six periods: the quota is (almost) all used
        // Pacing spreads the last requests of each period up to its end (a hint on every response must not restart
        // the pacing: a first version did, and sent the last 10 requests at once, 0 of them in the last second).
        Assert.True(servedInLastSecondOfPeriods >= 5, $"only {servedInLastSecondOfPeriods} periods used their last second");

        (long blindSent, long blindRefused, _) = Run(useHints: false);
        output.WriteLine($"without hints: sent {blindSent}, refused by server {blindRefused}");
        Assert.True(blindRefused > 4 * Quota, "the control without hints must hit the server's limit");
    }

    private static (long Sent, long RefusedByServer, long ServedLate) Run(bool useHints)
    {
        var clock = new VirtualClock();
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = clock, PaceBelow = 10 });
        long periodStart = clock.Now;
        long used = 0, sent = 0, refused = 0, servedLate = 0;
        long step = TimeSpan.TicksPerSecond / 50;
        for (long t = 0; t < 60 * TimeSpan.TicksPerSecond; t += step)
        {
            clock.AdvanceTo(periodStart + t);
            long periodIndex = t / Period.Ticks;
            long periodEnd = periodStart + ((periodIndex + 1) * Period.Ticks);
            if (useHints && !hint.TryAdmit())
            {
                continue;
            }

            sent++;
            long usedInPeriod = used >> 32 == periodIndex ? used & uint.MaxValue : 0;
            bool served = usedInPeriod < Quota;
            if (served)
            {
                usedInPeriod++;
                if (periodEnd - clock.Now <= TimeSpan.TicksPerSecond)
                {
                    servedLate++;
                }
            }
            else
            {
                refused++;
            }

            used = (periodIndex << 32) | usedInPeriod;
            hint.Update(Quota - usedInPeriod, TimeSpan.FromTicks(periodEnd - clock.Now));
        }

        return (sent, refused, servedLate);
    }
}
