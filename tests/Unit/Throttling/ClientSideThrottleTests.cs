using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class ClientSideThrottleTests
{
    private static ClientSideThrottle Create(ManualTimeProvider time, Func<double>? random = null, double k = 2) =>
        new(new ClientSideThrottleOptions { K = k, Window = TimeSpan.FromSeconds(10), Buckets = 10, TimeProvider = time, RandomSource = random ?? (() => 0.5) });

    [Fact]
    public void Probability_IsTheSreFormula()
    {
        var throttle = Create(new ManualTimeProvider());
        Assert.Equal(0, throttle.Probability(0, 0));
        Assert.Equal(0, throttle.Probability(100, 100));
        Assert.Equal(0, throttle.Probability(100, 50));
        Assert.Equal(100.0 / 101, throttle.Probability(100, 0), 12);
        Assert.Equal(40.0 / 101, throttle.Probability(100, 30), 12);
    }

    [Fact]
    public void TryAdmit_AllAccepted_NeverRejectsAndNeverDraws()
    {
        var time = new ManualTimeProvider();
        int draws = 0;
        var throttle = Create(time, () => { draws++; return 0; });
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(throttle.TryAdmit());
            throttle.RecordAccepted();
            time.Advance(TimeSpan.FromMilliseconds(5));
        }

        Assert.Equal(0, draws);
        Assert.Equal(0, throttle.LocallyRejected);
    }

    [Fact]
    public void TryAdmit_NoAccepts_RejectsWithFormulaProbability()
    {
        var time = new ManualTimeProvider();
        double draw = 0.5;
        var throttle = Create(time, () => draw);
        for (int i = 0; i < 9; i++)
        {
            throttle.TryAdmit();
            throttle.RecordRejected();
        }

        // 9 requests, 0 accepts: p = 9/10; a draw of 0.5 < 0.9 rejects, a draw of 0.95 admits.
        Assert.Equal(0.9, throttle.RejectionProbability, 12);
        Assert.False(throttle.TryAdmit());
        draw = 0.95;
        Assert.True(throttle.TryAdmit());
        Assert.Equal(11, throttle.Requests);
        Assert.Equal(0, throttle.Accepts);
        Assert.Equal(9, throttle.BackendRejected);
    }

    [Fact]
    public void Window_OldBucketsExpire()
    {
        var time = new ManualTimeProvider();
        var throttle = Create(time);
        for (int i = 0; i < 50; i++)
        {
            throttle.TryAdmit();
        }

        Assert.Equal(50, throttle.Requests);
        time.Advance(TimeSpan.FromSeconds(5));
        throttle.TryAdmit();
        Assert.Equal(51, throttle.Requests);
        time.Advance(TimeSpan.FromSeconds(5.5));
        Assert.Equal(1, throttle.Requests); // the first bucket left the 10 s window
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, throttle.Requests);
        Assert.Equal(0, throttle.RejectionProbability);
    }

    [Fact]
    public void Window_LongIdle_ReusedBucketStartsFromZero()
    {
        var time = new ManualTimeProvider();
        var throttle = Create(time);
        throttle.TryAdmit();
        time.Advance(TimeSpan.FromSeconds(100)); // ten windows later: same bucket slot, new epoch
        throttle.TryAdmit();
        throttle.RecordAccepted();
        Assert.Equal(1, throttle.Requests);
        Assert.Equal(1, throttle.Accepts);
    }

    [Fact]
    public void Constructor_BadOptions_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientSideThrottle(new ClientSideThrottleOptions { K = 0.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientSideThrottle(new ClientSideThrottleOptions { K = double.NaN }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientSideThrottle(new ClientSideThrottleOptions { Buckets = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientSideThrottle(new ClientSideThrottleOptions { Buckets = 1025 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientSideThrottle(new ClientSideThrottleOptions { Window = TimeSpan.Zero }));
        Assert.Throws<ArgumentNullException>(() => new ClientSideThrottle(new ClientSideThrottleOptions { TimeProvider = null! }));
        Assert.Equal(2, new ClientSideThrottle().K);
    }

    [Fact]
    public void TryAdmit_ConcurrentRecords_CountsExactly()
    {
        var time = new ManualTimeProvider();
        var throttle = Create(time, () => 1.0); // never rejects (draw ≥ p)
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                throttle.TryAdmit();
                throttle.RecordAccepted();
            }
        });
        Assert.Equal(40_000, throttle.Requests);
        Assert.Equal(40_000, throttle.Accepts);
    }
    [Theory]
    [InlineData(-1_000_000_000L)]          // a clock that reads negative (legal: only differences of timestamps mean anything)
    [InlineData(long.MinValue + 1_000L)]   // a clock near the bottom of its range
    [InlineData(long.MaxValue - 30_000_000L)] // a clock that wraps past long.MaxValue three seconds in
    public void TryAdmit_ClockReadsNegativeOrWraps_CountsAndExpiresAsUsual(long start)
    {
        var time = OffsetTimeProvider.StartingAt(start, out ManualTimeProvider inner);
        var throttle = new ClientSideThrottle(new ClientSideThrottleOptions { K = 2, Window = TimeSpan.FromSeconds(10), Buckets = 10, TimeProvider = time, RandomSource = () => 1.0 });
        for (int i = 0; i < 20; i++)
        {
            Assert.True(throttle.TryAdmit()); // before the fix: IndexOutOfRangeException (a negative epoch's slot)
            throttle.RecordAccepted();
            inner.Advance(TimeSpan.FromMilliseconds(250)); // 5 s in all, crossing zero / the wrap for the last two cases
        }

        Assert.Equal(20, throttle.Requests);
        Assert.Equal(20, throttle.Accepts);
        inner.Advance(TimeSpan.FromSeconds(5.5));
        Assert.InRange(throttle.Requests, 1, 19); // the oldest buckets left the window, the newest did not
        inner.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, throttle.Requests);
        Assert.Equal(0, throttle.Accepts);
    }

    [Fact]
    public void Window_ClockCrossesZero_BucketsKeepTheirLength()
    {
        // Truncating division made epoch 0 span (-bucket, +bucket): two buckets' worth of records in one slot.
        var time = OffsetTimeProvider.StartingAt(-TimeSpan.FromMilliseconds(500).Ticks, out ManualTimeProvider inner);
        var throttle = new ClientSideThrottle(new ClientSideThrottleOptions { Window = TimeSpan.FromSeconds(2), Buckets = 2, TimeProvider = time, RandomSource = () => 1.0 });
        throttle.TryAdmit(); // at -0.5 s
        inner.Advance(TimeSpan.FromSeconds(2.1)); // at +1.6 s: more than a window later
        Assert.Equal(0, throttle.Requests);
    }
}
