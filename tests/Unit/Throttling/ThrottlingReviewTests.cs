using System.Threading.RateLimiting;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>Regression tests from the adversarial review of the throttling area (each failed before its fix).</summary>
public sealed class ThrottlingReviewTests
{
    [Fact]
    public void TryAcquireAll_RefundToBatchedBucket_GivesTheTokenBack()
    {
        var time = new ManualTimeProvider();
        var a = new TokenBucket(100, 1, fastPathBatch: 10, time);
        var b = new TokenBucket(1, 1, fastPathBatch: 1, time);
        Assert.True(TokenBucket.TryAcquireAll([a, b], 1, out _));
        Assert.False(TokenBucket.TryAcquireAll([a, b], 1, out _)); // b refuses: a's token goes back

        Assert.Equal(99, a.AvailableTokens);
    }

    [Fact]
    public void Hierarchy_RefusalAbove_RefundsBatchedKeyBucket()
    {
        var time = new ManualTimeProvider();
        var global = new TokenBucket(1, 1, fastPathBatch: 1, time);
        var perUser = new KeyedTokenBucket<string>(64, 1, 100, time); // default batch 4
        var limits = new HierarchicalTokenBucket<string, string>(global, perUser);

        Assert.True(limits.TryAcquire("ann", "x"));
        for (int i = 0; i < 10; i++)
        {
            Assert.False(limits.TryAcquire("ann", "x")); // the global level refuses; ann's token goes back each time
        }

        Assert.True(perUser.TryAcquire("ann", 63)); // everything but the one admitted token is still there
    }
}
