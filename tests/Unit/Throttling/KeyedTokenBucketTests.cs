using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

public sealed class KeyedTokenBucketTests
{
    [Fact]
    public void TryAcquire_EachKeyHasItsOwnBucket()
    {
        var keyed = new KeyedTokenBucket<string>(2, 1, maxKeys: 10, new ManualTimeProvider());
        Assert.True(keyed.TryAcquire("a", 2));
        Assert.False(keyed.TryAcquire("a"));
        Assert.True(keyed.TryAcquire("b", 2));
        Assert.Equal(2, keyed.Count);
    }

    [Fact]
    public void TryAcquire_TableFullOfBusyKeys_RefusesNewKeyUntilTheEarliestKeyCouldRefill()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(4, 2, maxKeys: 2, time);
        Assert.True(keyed.TryAcquire(1));
        Assert.True(keyed.TryAcquire(2));

        Assert.False(keyed.TryAcquire(3, 1, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(0.5), retryAfter); // each key owes one token at 2/s (before: one full refill, 2 s)
        Assert.Equal(2, keyed.Count);
        time.Advance(retryAfter);
        Assert.True(keyed.TryAcquire(3));
    }

    [Fact]
    public void TryAcquire_TableFull_EvictsKeysWhoseBucketRefilled()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(4, 2, maxKeys: 2, time);
        Assert.True(keyed.TryAcquire(1, 4));
        Assert.True(keyed.TryAcquire(2, 1));
        time.Advance(TimeSpan.FromSeconds(2)); // both refilled

        Assert.True(keyed.TryAcquire(3));
        Assert.Equal(1, keyed.Count); // keys 1 and 2 were idle and went; 3 came in
    }

    [Fact]
    public void EvictIdle_KeepsKeysWithDebt_SoNoKeyIsEverReset()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(4, 1, maxKeys: 10, time);
        Assert.True(keyed.TryAcquire(1, 4));
        Assert.True(keyed.TryAcquire(2, 1));
        time.Advance(TimeSpan.FromSeconds(1)); // key 2 is full again, key 1 still owes 3

        Assert.Equal(1, keyed.EvictIdle());
        Assert.False(keyed.TryAcquire(1, 2)); // key 1 kept its debt
        Assert.True(keyed.TryAcquire(1, 1));
    }

    [Fact]
    public void TryAcquire_AfterEviction_KeyStartsFullAgain()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(3, 1, maxKeys: 10, time);
        Assert.True(keyed.TryAcquire(7, 3));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(1, keyed.EvictIdle());
        Assert.Equal(0, keyed.Count);

        Assert.True(keyed.TryAcquire(7, 3));
        Assert.False(keyed.TryAcquire(7));
    }

    [Fact]
    public void BadInput_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new KeyedTokenBucket<int>(0, 1, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new KeyedTokenBucket<int>(1, -1, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new KeyedTokenBucket<int>(1, 1, 0));
        var keyed = new KeyedTokenBucket<string>(2, 1, 10);
        Assert.Throws<ArgumentNullException>(() => keyed.TryAcquire(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => keyed.TryAcquire("a", 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => keyed.TryAcquire("a", 0));
        Assert.Equal(0, keyed.Count);
    }

    [Fact]
    public async Task TryAcquire_ConcurrentKeysAndEviction_NeverAdmitsMoreThanCapacityPerKey()
    {
        var time = new ManualTimeProvider();
        var keyed = new KeyedTokenBucket<int>(5, 1e-6, maxKeys: 4, time); // no refill within the test
        var admitted = new int[8];
        using var stop = new CancellationTokenSource();
        Task evictor = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                keyed.EvictIdle();
            }
        });
        Task[] workers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                int key = (i + w) % 8;
                if (keyed.TryAcquire(key))
                {
                    Interlocked.Increment(ref admitted[key]);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
        stop.Cancel();
        await evictor.WaitAsync(TimeSpan.FromSeconds(60));

        // A key with debt is never evicted, so no key is ever handed a second full bucket.
        Assert.All(admitted, count => Assert.InRange(count, 0, 5));
        Assert.InRange(keyed.Count, 0, 4);
    }

    [Fact]
    public void Hierarchy_RefusalBelow_ConsumesNothingAbove()
    {
        var time = new ManualTimeProvider();
        var global = new TokenBucket(10, 1, fastPathBatch: 1, time);
        var perUser = new KeyedTokenBucket<string>(5, 1, 100, time);
        var perOp = new KeyedTokenBucket<(string, string)>(2, 1, 100, time);
        var limits = new HierarchicalTokenBucket<string, string>(global, perUser, perOp);

        Assert.True(limits.TryAcquire("ann", "search"));
        Assert.True(limits.TryAcquire("ann", "search"));
        Assert.False(limits.TryAcquire("ann", "search", 1, out TimeSpan retryAfter)); // per-operation limit
        Assert.Equal(TimeSpan.FromSeconds(1), retryAfter);
        Assert.Equal(8, global.AvailableTokens); // the refusal took nothing from the global bucket
        Assert.True(limits.TryAcquire("ann", "upload", 2, out _));
        Assert.False(limits.TryAcquire("ann", "other", 2, out _)); // per-user: 1 left
        Assert.Equal(6, global.AvailableTokens);
    }

    [Fact]
    public void Hierarchy_RefusalAbove_RefundsLevelsBelow()
    {
        var time = new ManualTimeProvider();
        var global = new TokenBucket(3, 1, fastPathBatch: 1, time);
        var perUser = new KeyedTokenBucket<string>(5, 1, 100, time);
        var limits = new HierarchicalTokenBucket<string, string>(global, perUser);

        Assert.True(limits.TryAcquire("ann", "x", 3, out _));
        Assert.False(limits.TryAcquire("bob", "x", 2, out TimeSpan retryAfter)); // global refuses
        Assert.Equal(TimeSpan.FromSeconds(2), retryAfter);
        Assert.True(perUser.TryAcquire("bob", 5)); // bob's tokens were given back
    }

    [Fact]
    public void TryAcquireAll_RefundsEarlierLevelsWhenOneRefuses()
    {
        var time = new ManualTimeProvider();
        var a = new TokenBucket(5, 1, fastPathBatch: 1, time);
        var b = new TokenBucket(2, 1, fastPathBatch: 1, time);
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenBucket.TryAcquireAll([a, b], 3, out _));
        Assert.True(TokenBucket.TryAcquireAll([a, b], 2, out _));
        Assert.False(TokenBucket.TryAcquireAll([a, b], 1, out _));
        Assert.Equal(3, a.AvailableTokens);
    }
}
