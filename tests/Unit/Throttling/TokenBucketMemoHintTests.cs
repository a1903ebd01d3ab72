using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="TokenBucket"/>'s refusal memo (session 16, from its mutation run, which found the memo's retry hint
/// unchecked): a refusal answered from the memo, without ownership, names the same instant as the owner's exact
/// refusal before it, never earlier and later only by the memo's rounding (2^shift units, well under a millisecond),
/// plus one interval per token asked beyond the memo's count.
/// </summary>
public sealed class TokenBucketMemoHintTests
{
    private static readonly TimeSpan Rounding = TimeSpan.FromMilliseconds(1);

    [Fact]
    public void TryAcquire_RefusedAgainFromTheMemo_NamesTheExactInstantWithinTheRounding()
    {
        var time = new ManualTimeProvider();
        var bucket = new TokenBucket(4, 1.0, time);
        Assert.True(bucket.TryAcquire(4)); // empty
        time.Advance(TimeSpan.FromSeconds(0.25));

        Assert.False(bucket.TryAcquire(1, out TimeSpan exact)); // the owner's refusal: 0.75 s to the next token; writes the memo
        Assert.Equal(TimeSpan.FromSeconds(0.75), exact);

        Assert.False(bucket.TryAcquire(1, out TimeSpan fromMemo)); // answered from the memo
        Assert.InRange(fromMemo, exact, exact + Rounding); // never early, late only by the rounding

        Assert.False(bucket.TryAcquire(3, out TimeSpan threeFromMemo)); // two tokens beyond the memo's count: two intervals more
        Assert.InRange(threeFromMemo, exact + TimeSpan.FromSeconds(2), exact + TimeSpan.FromSeconds(2) + Rounding);

        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.False(bucket.TryAcquire(1, out TimeSpan later));
        Assert.InRange(later, TimeSpan.FromSeconds(0.25), TimeSpan.FromSeconds(0.25) + Rounding); // the clock moved: less left
        time.Advance(later);
        Assert.True(bucket.TryAcquire(1));
    }
}
