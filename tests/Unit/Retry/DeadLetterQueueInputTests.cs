using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// <see cref="DeadLetterQueue{T}.TryAdd(DeadLetter{T})"/> checks the dead letter's required fields at the boundary, as
/// the overload that builds one from its parts does (review, 2026-11-23: a null SourceName or Reason and a negative
/// AttemptCount were held without complaint, to fail later in whoever inspects or replays them).
/// </summary>
public sealed class DeadLetterQueueInputTests
{
    private static DeadLetter<int> Letter(int message) =>
        new(message, "orders", "failed", null, 3, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddSeconds(1));

    private static DeadLetterQueue<int> Create() => new(new DeadLetterQueueOptions<int> { Capacity = 4 });

    private static void AssertRefusedAndStillUsable(DeadLetterQueue<int> queue)
    {
        DeadLetterStatistics stats = queue.GetStatistics();
        Assert.Equal(0, stats.Added); // nothing taken, nothing counted
        Assert.Equal(0, queue.Count);
        Assert.Equal(WriteResult.Accepted, queue.TryAdd(Letter(7)));
        Assert.Equal(7, Assert.Single(queue.Snapshot()).Message);
    }

    [Fact]
    public void TryAdd_NullSourceName_ThrowsArgumentNullAndStaysUsable()
    {
        using DeadLetterQueue<int> queue = Create();
        var error = Assert.Throws<ArgumentNullException>(() => queue.TryAdd(Letter(1) with { SourceName = null! }));
        Assert.Equal("deadLetter.SourceName", error.ParamName);
        AssertRefusedAndStillUsable(queue);
    }

    [Fact]
    public void TryAdd_NullReason_ThrowsArgumentNullAndStaysUsable()
    {
        using DeadLetterQueue<int> queue = Create();
        var error = Assert.Throws<ArgumentNullException>(() => queue.TryAdd(Letter(1) with { Reason = null! }));
        Assert.Equal("deadLetter.Reason", error.ParamName);
        AssertRefusedAndStillUsable(queue);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void TryAdd_NegativeAttemptCount_ThrowsArgumentOutOfRangeAndStaysUsable(int attempts)
    {
        using DeadLetterQueue<int> queue = Create();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => queue.TryAdd(Letter(1) with { AttemptCount = attempts }));
        Assert.Equal("deadLetter.AttemptCount", error.ParamName);
        AssertRefusedAndStillUsable(queue);
    }

    [Fact]
    public void TryAdd_ZeroAttemptsAndNoException_IsAccepted()
    {
        // Documented as valid: a message dead-lettered before any attempt (poison on arrival), with no failure object.
        using DeadLetterQueue<int> queue = Create();
        Assert.Equal(WriteResult.Accepted, queue.TryAdd(Letter(1) with { AttemptCount = 0, Exception = null }));
    }
}
