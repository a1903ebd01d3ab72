using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class ServerQuotaHintTests
{
    [Fact]
    public void TryAdmit_NoHint_AdmitsEverything()
    {
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = new ManualTimeProvider() });
        for (int i = 0; i < 100; i++)
        {
            Assert.True(hint.TryAdmit());
        }

        Assert.Equal(long.MaxValue, hint.Remaining);
        Assert.Equal(TimeSpan.Zero, hint.RetryAfter);
    }

    [Fact]
    public void TryAdmit_QuotaExhausted_RefusesUntilReset()
    {
        var time = new ManualTimeProvider();
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = time });
        hint.Update(remaining: 0, resetAfter: TimeSpan.FromSeconds(5));
        Assert.False(hint.TryAdmit());
        Assert.Equal(TimeSpan.FromSeconds(5), hint.RetryAfter);
        time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.False(hint.TryAdmit());
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.True(hint.TryAdmit());
        Assert.Equal(2, hint.Refused);
    }

    [Fact]
    public void TryAdmit_PlentyRemaining_ChargesEachRequest()
    {
        var time = new ManualTimeProvider();
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = time, PaceBelow = 0 });
        hint.Update(remaining: 3, resetAfter: TimeSpan.FromSeconds(60));
        Assert.True(hint.TryAdmit());
        Assert.True(hint.TryAdmit());
        Assert.True(hint.TryAdmit());
        Assert.Equal(0, hint.Remaining);
        Assert.False(hint.TryAdmit()); // a burst cannot overshoot the reported quota
    }

    [Fact]
    public void TryAdmit_LowRemaining_PacesEvenlyUntilReset()
    {
        var time = new ManualTimeProvider();
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = time, PaceBelow = 10 });
        hint.Update(remaining: 4, resetAfter: TimeSpan.FromSeconds(8));
        int admitted = 0;
        var admittedAt = new List<double>();
        for (int tick = 0; tick < 80; tick++)
        {
            if (hint.TryAdmit())
            {
                admitted++;
                admittedAt.Add(tick / 10.0);
            }

            time.Advance(TimeSpan.FromMilliseconds(100));
        }

        // 4 requests spread over 8 s: spacing (time left) / remaining = 2 s, 2 s, 2 s, ...
        Assert.Equal(4, admitted);
        Assert.Equal(new[] { 0.0, 2.0, 4.0, 6.0 }, admittedAt);
    }

    [Fact]
    public void Update_AbsoluteResetInstant_IsHonoured()
    {
        var time = new ManualTimeProvider();
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = time });
        hint.Update(0, time.GetUtcNow() + TimeSpan.FromSeconds(3));
        Assert.False(hint.TryAdmit());
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.True(hint.TryAdmit());
        hint.Update(0, time.GetUtcNow() - TimeSpan.FromSeconds(3)); // already reset
        Assert.True(hint.TryAdmit());
    }

    [Fact]
    public void BadArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ServerQuotaHint(new ServerQuotaHintOptions { PaceBelow = -1 }));
        Assert.Throws<ArgumentNullException>(() => new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = null! }));
        var hint = new ServerQuotaHint();
        Assert.Throws<ArgumentOutOfRangeException>(() => hint.Update(-1, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => hint.Update(1, TimeSpan.FromSeconds(-1)));
        Assert.True(hint.TryAdmit());
    }
    [Fact]
    public void TryAdmit_ClockReadsNegative_NoHintAdmitsAndFirstPacedHintPacesFromNow()
    {
        // "No hint yet" was a reset instant of 0: on a clock reading negative the absent hint was in force, so the first
        // real hint was not a new period, pacing kept its initial due instant 0, and every paced request was refused
        // until the clock reached 0 (here: 100 s; on a clock far below 0, practically forever).
        var time = OffsetTimeProvider.StartingAt(-TimeSpan.FromSeconds(100).Ticks, out ManualTimeProvider inner);
        var hint = new ServerQuotaHint(new ServerQuotaHintOptions { TimeProvider = time, PaceBelow = 10 });
        Assert.True(hint.TryAdmit());
        Assert.Equal(long.MaxValue, hint.Remaining); // no hint: nothing charged

        hint.Update(remaining: 5, resetAfter: TimeSpan.FromSeconds(10)); // paced: one per 2 s
        Assert.True(hint.TryAdmit()); // before the fix: refused (pacing due at timestamp 0, 100 s away)
        Assert.False(hint.TryAdmit());
        inner.Advance(TimeSpan.FromSeconds(2));
        Assert.True(hint.TryAdmit());
    }
}
