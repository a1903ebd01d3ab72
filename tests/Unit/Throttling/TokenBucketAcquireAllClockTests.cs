using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="TokenBucket.TryAcquireAll"/> gives the earlier levels their tokens back when a later level refuses, also
/// when a level's clock fails during that refund. Before, the refund's exception left the call between two refunds: the
/// failing level (and every level before it) kept tokens taken for a request that was refused, and the caller got the
/// clock's exception instead of the refusal.
/// </summary>
public sealed class TokenBucketAcquireAllClockTests
{
    [Fact]
    public void TryAcquireAll_RefundClockThrows_RefusesAndTheTokensComeBack()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var first = new TokenBucket(2, 1.0, fastPathBatch: 1, clock); // exact: the owner reads the clock on every call
        var second = new TokenBucket(1, 1.0, fastPathBatch: 1, manual);
        Assert.True(second.TryAcquire(1)); // empty: it refuses the request
        var reported = new List<Exception>();
        first.ClockFailed += (_, error) => reported.Add(error);

        clock.FailReading(2); // the first level's acquire reads the clock (1), then its refund (2) fails

        Assert.False(TokenBucket.TryAcquireAll([first, second], 1, out TimeSpan retryAfter));
        Assert.True(retryAfter > TimeSpan.Zero);
        Assert.Equal(1, first.ClockFailureCount);
        Assert.Equal("clock failed", Assert.Single(reported).Message);

        // The refused request's token is back in the first level (paid by the pump right away): both tokens, no more.
        Assert.True(first.TryAcquire(1));
        Assert.True(first.TryAcquire(1));
        Assert.False(first.TryAcquire(1));
    }
}
