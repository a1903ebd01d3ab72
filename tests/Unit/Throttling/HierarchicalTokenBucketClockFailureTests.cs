using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// <see cref="HierarchicalTokenBucket{TKey, TOperation}.TryAcquire(TKey, TOperation, int, out TimeSpan)"/> takes at every
/// level or at none, also when a later level's clock throws (helper s9-room, 2026-11-23; the same rule as
/// <see cref="TokenBucket.TryAcquireAll"/>): the levels already charged get their tokens back.
/// </summary>
public sealed class HierarchicalTokenBucketClockFailureTests
{
    [Fact]
    public void TryAcquire_GlobalClockThrows_ThrowsAndTheKeyLevelsTokensComeBack()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var global = new TokenBucket(4, 1.0, fastPathBatch: 1, clock); // exact: the owner reads the clock on every call
        var perKey = new KeyedTokenBucket<string>(2, 1.0, maxKeys: 4, manual);
        var perOperation = new KeyedTokenBucket<(string, string)>(2, 1.0, maxKeys: 4, manual);
        var hierarchy = new HierarchicalTokenBucket<string, string>(global, perKey, perOperation);

        clock.FailReading(1); // the global level's acquire, after the operation and key levels took their token
        Assert.Throws<InvalidOperationException>(() => hierarchy.TryAcquire("a", "op", 1, out _));

        // Before: each of the two lower levels had lost one token to a request that was never admitted.
        Assert.True(perKey.TryAcquire("a", 2));
        Assert.False(perKey.TryAcquire("a", 1));
        Assert.True(perOperation.TryAcquire(("a", "op"), 2));
        Assert.True(global.TryAcquire(4)); // nothing was taken at the failing level either
    }

    [Fact]
    public void TryAcquire_KeyClockThrows_ThrowsAndTheOperationLevelsTokenComesBack()
    {
        var manual = new ManualTimeProvider();
        var clock = new FailingReadingClock(manual);
        var perKey = new KeyedTokenBucket<string>(2, 1.0, maxKeys: 4, clock);
        var perOperation = new KeyedTokenBucket<(string, string)>(2, 1.0, maxKeys: 4, manual);
        var hierarchy = new HierarchicalTokenBucket<string, string>(null, perKey, perOperation);
        Assert.True(perKey.TryGetBucket("a", out _) || perKey.TryAcquire("a", 1)); // the key's bucket exists (one token taken)

        clock.FailReading(1); // the key level's acquire
        Assert.Throws<InvalidOperationException>(() => hierarchy.TryAcquire("a", "op", 1, out _));

        Assert.True(perOperation.TryAcquire(("a", "op"), 2)); // before: one token lost
    }
}
