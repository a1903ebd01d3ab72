using System.Text;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="ServerQuotaHint"/> on a clock that starts anywhere (helper s10-thr, 2026-11-23). Before, it kept raw
/// timestamps: on a clock within a reset period of <see cref="long.MaxValue"/> the reset instant saturated to "never",
/// and after the clock wrapped the exhausted hint refused every request for good.
/// </summary>
public sealed class ServerQuotaHintClockWrapTests
{
    [Fact]
    public void TryAdmit_ResetPeriodStraddlesTheWrap_AdmitsAgainAfterTheReset()
    {
        var clock = new ManualTimeProvider(long.MaxValue - TimeSpan.TicksPerSecond); // wraps 1 s from now
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = clock });
        hint.Update(0, TimeSpan.FromSeconds(10));
        Assert.False(hint.TryAdmit());

        clock.Advance(TimeSpan.FromSeconds(5)); // past the wrap, inside the period
        Assert.False(hint.TryAdmit());
        Assert.Equal(TimeSpan.FromSeconds(5), hint.RetryAfter);

        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.True(hint.TryAdmit()); // before: refused for good (the reset had saturated to "never")
        Assert.Equal(long.MaxValue, hint.Remaining);
    }

    [Theory]
    [InlineData(long.MaxValue - (5 * TimeSpan.TicksPerSecond))]
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    [InlineData(-(5 * TimeSpan.TicksPerSecond))]
    public void Script_ClockStartsAnywhere_AnswersExactlyAsFromAnOrdinaryStart(long start)
    {
        Assert.Equal(Script(new ManualTimeProvider()), Script(new ManualTimeProvider(start)));
    }

    /// <summary>20 s in 100 ms steps: a hint every 3 s (sometimes exhausted, sometimes low: paced), asks every step.</summary>
    private static string Script(ManualTimeProvider clock)
    {
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = clock, PaceBelow = 5 });
        var log = new StringBuilder();
        for (int step = 0; step < 200; step++)
        {
            if (step % 30 == 0)
            {
                hint.Update((step / 30) % 3 == 0 ? 0 : 4, TimeSpan.FromSeconds(2));
            }

            for (int i = 0; i < 2; i++)
            {
                log.Append(hint.TryAdmit() ? 'T' : 'F');
            }

            log.Append(' ').Append(hint.Remaining).Append(' ').Append(hint.RetryAfter.Ticks).Append(";\n");
            clock.Advance(TimeSpan.FromMilliseconds(100));
        }

        Assert.Contains('T', log.ToString());
        Assert.Contains('F', log.ToString());
        return log.ToString();
    }
}
