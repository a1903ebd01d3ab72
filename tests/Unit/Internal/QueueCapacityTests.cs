using LockFree.Internal;
using Xunit;

namespace LockFree.Tests.Unit.Internal;

/// <summary>The capacity rule shared by the queue family, including the largest value (too big to allocate in a test).</summary>
public sealed class QueueCapacityTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 4)]
    [InlineData(1024, 1024)]
    [InlineData((1 << 29) + 1, 1 << 30)]
    [InlineData(1 << 30, 1 << 30)]
    public void RoundUp_InRange_ReturnsNextPowerOfTwo(int capacity, int expected)
    {
        Assert.Equal(expected, QueueCapacity.RoundUp(capacity));
    }

    /// <summary>Capacities every queue rejects: below 1 and above 2^30, including the extremes of int.</summary>
    public static TheoryData<int> OutOfRangeCapacities => new() { 0, -1, int.MinValue, QueueCapacity.Max + 1, int.MaxValue };

    [Theory]
    [MemberData(nameof(OutOfRangeCapacities))]
    public void RoundUp_OutOfRange_ThrowsArgumentOutOfRange(int capacity)
    {
        Assert.Throws<ArgumentOutOfRangeException>("capacity", () => QueueCapacity.RoundUp(capacity));
    }
}
