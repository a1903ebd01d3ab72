using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="HierarchicalTokenBucket{TKey, TOperation}"/> at its boundaries (session 16, from its mutation run, which left
/// these unchecked): null arguments are refused by name; a token count above any level's capacity is refused before any
/// level is touched (no per-key or per-operation bucket is even created: without the up-front checks, the earlier levels
/// were charged, their buckets created, and refunded when the level that refuses threw); and a refusal at the key level
/// gives the operation level its token back.
/// </summary>
public sealed class HierarchicalTokenBucketBoundaryTests
{
    [Fact]
    public void Constructor_NullPerKey_ThrowsArgumentNull()
    {
        var error = Assert.Throws<ArgumentNullException>(() => new HierarchicalTokenBucket<string, string>(null, null!));
        Assert.Equal("perKey", error.ParamName);
    }

    [Fact]
    public void TryAcquire_NullKeyOrOperation_ThrowsArgumentNullByName()
    {
        var time = new ManualTimeProvider();
        var operations = new KeyedTokenBucket<(string, string)>(4, 1.0, maxKeys: 4, time);
        var hierarchy = new HierarchicalTokenBucket<string, string>(
            new TokenBucket(4, 1.0, time),
            new KeyedTokenBucket<string>(4, 1.0, maxKeys: 4, time),
            operations);
        Assert.Equal("key", Assert.Throws<ArgumentNullException>(() => hierarchy.TryAcquire(null!, "op", 1, out _)).ParamName);
        Assert.False(operations.TryGetBucket((null!, "op"), out _), "a null key reached the operation level (a (null, op) bucket was created)");
        Assert.Equal("operation", Assert.Throws<ArgumentNullException>(() => hierarchy.TryAcquire("a", null!, 1, out _)).ParamName);
        Assert.True(hierarchy.TryAcquire("a", "op")); // still usable
    }

    [Theory]
    [InlineData(2, 4, 4)] // above the global level's capacity
    [InlineData(4, 2, 4)] // above the key level's
    [InlineData(4, 4, 2)] // above the operation level's
    public void TryAcquire_MoreTokensThanALevelHolds_ThrowsBeforeAnyLevelIsTouched(long global, long perKey, long perOperation)
    {
        var time = new ManualTimeProvider();
        var keys = new KeyedTokenBucket<string>(perKey, 1.0, maxKeys: 4, time);
        var operations = new KeyedTokenBucket<(string, string)>(perOperation, 1.0, maxKeys: 4, time);
        var globalBucket = new TokenBucket(global, 1.0, time);
        var hierarchy = new HierarchicalTokenBucket<string, string>(globalBucket, keys, operations);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => hierarchy.TryAcquire("a", "op", 3, out _));
        Assert.Equal("tokens", error.ParamName);
        Assert.False(keys.TryGetBucket("a", out _), "the key level was touched (its bucket created) by a request refused up front");
        Assert.False(operations.TryGetBucket(("a", "op"), out _), "the operation level was touched by a request refused up front");
        Assert.True(globalBucket.TryAcquire(2)); // the global level's tokens are all there
    }

    [Fact]
    public void TryAcquire_KeyLevelRefuses_TheOperationLevelGetsItsTokenBack()
    {
        var time = new ManualTimeProvider(); // never advances: no refill
        var keys = new KeyedTokenBucket<string>(1, 1.0, maxKeys: 4, time);
        var operations = new KeyedTokenBucket<(string, string)>(3, 1.0, maxKeys: 4, time);
        var hierarchy = new HierarchicalTokenBucket<string, string>(null, keys, operations);

        Assert.True(hierarchy.TryAcquire("a", "op")); // operation level 2 left, key level 0 left
        Assert.False(hierarchy.TryAcquire("a", "op", 1, out TimeSpan retryAfter)); // the key level refuses
        Assert.True(retryAfter > TimeSpan.Zero);
        Assert.True(operations.TryAcquire(("a", "op"), 2)); // both of the operation level's tokens are still there
    }
}
