using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>The throttle's sliding window where its 20-bit epoch wraps: clocks far from zero, long idle spells.</summary>
public sealed class ClientSideThrottleEpochTests
{
    private const long EpochRange = 1L << 20;
    private static readonly TimeSpan BucketLength = TimeSpan.FromMilliseconds(100);

    private static ClientSideThrottle Create(ManualTimeProvider time) =>
        new(new ClientSideThrottleOptions { K = 2, Window = TimeSpan.FromSeconds(1), Buckets = 10, TimeProvider = time, RandomSource = () => 0.5 });

    /// <summary>Moves the clock forward to the epoch at <paramref name="whereInRange"/> of a later 2^20-epoch range.</summary>
    private static void MoveTo(ManualTimeProvider time, double whereInRange)
    {
        long epochNow = time.GetTimestamp() / BucketLength.Ticks;
        long target = (long)(whereInRange * EpochRange) + (2 * EpochRange);
        time.Advance(TimeSpan.FromTicks((target - epochNow) * BucketLength.Ticks));
    }

    [Theory]
    [InlineData(0.25)] // epochs in the lower half of the 2^20 range: always worked
    [InlineData(0.5)]  // the upper half: a fresh throttle's zeroed buckets read as "newer", every count went into them and no sum saw it
    [InlineData(0.75)]
    public void TryAdmit_ClockAnywhereInTheEpochRange_CountsRequests(double whereInRange)
    {
        var time = new ManualTimeProvider(); // starts at 1 day: epoch 864,000 of 100 ms buckets, 0.82 of the range
        MoveTo(time, whereInRange);
        ClientSideThrottle throttle = Create(time);

        int sent = 0;
        for (int i = 0; i < 100; i++)
        {
            sent += throttle.TryAdmit() ? 1 : 0; // the backend accepts nothing
        }

        Assert.Equal(100, throttle.Requests);
        Assert.True(throttle.RejectionProbability > 0.9, $"p = {throttle.RejectionProbability}");
        Assert.InRange(sent, 1, 10); // the throttle backs off instead of sending everything
    }

    [Fact]
    public void TryAdmit_AfterIdleBetweenHalfAndAllOfTheEpochRange_StillCounts()
    {
        var time = new ManualTimeProvider();
        MoveTo(time, 0.1); // the lower half: counted before the fix too
        ClientSideThrottle throttle = Create(time);
        Assert.True(throttle.TryAdmit());
        Assert.Equal(1, throttle.Requests);
        for (int i = 0; i < 49; i++)
        {
            throttle.TryAdmit();
            throttle.RecordAccepted();
        }

        // Idle for 0.6 of the epoch range (about 17.5 hours of 100 ms buckets): every bucket's epoch is that far behind,
        // which the old comparison read as "newer than ours", so new counts went into words no sum looked at (for up to
        // another 14.6 hours: a throttle that sends everything to a failing backend).
        time.Advance(TimeSpan.FromTicks((long)(0.6 * EpochRange) * BucketLength.Ticks));
        for (int i = 0; i < 100; i++)
        {
            throttle.TryAdmit();
        }

        Assert.Equal(100, throttle.Requests); // the old accepts are long gone, the new requests all count
        Assert.Equal(0, throttle.Accepts);
        Assert.True(throttle.RejectionProbability > 0.9, $"p = {throttle.RejectionProbability}");
    }
}
