using System.Collections.Concurrent;
using System.Diagnostics;
using LockFree.Throttling;

namespace LockFree;

// Design: one TokenBucket per key in a ConcurrentDictionary (whose reads take no lock), at most MaxKeys of them.
//
// Eviction without losing accounting: a bucket that is full, with no open batch and nobody waiting, is
// indistinguishable from a fresh one, so dropping it and creating a new one later changes nothing a caller can
// observe. Eviction therefore retires only full buckets, atomically, inside the bucket's own refill word (a
// Retired flag); an acquire that lands on a retired bucket looks the key up again. So a key is never reset
// while it holds debt, and a race between an acquire and an eviction never admits extra tokens.
//
// The key count is kept in our own counter (ConcurrentDictionary.Count takes every lock): an insert reserves a
// slot first; when the table is full it sweeps for full buckets, and if none can go, the new key is refused
// (fail closed) with a retryAfter of one full refill.

/// <summary>
/// A token bucket per key (user, tenant, client address...): each key gets its own <see cref="TokenBucket"/>
/// of the same capacity and rate, created on first use. Lookups take no global lock; at most
/// <see cref="MaxKeys"/> keys are held, and idle keys (whose bucket has refilled completely) are evicted.
/// </summary>
[DebuggerDisplay("KeyedTokenBucket: Count = {Count}, MaxKeys = {MaxKeys}")]
public sealed class KeyedTokenBucket<TKey>
    where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, TokenBucket> _buckets;
    private readonly long _capacity;
    private readonly double _tokensPerSecond;
    private readonly int _batch;
    private readonly TimeProvider _time;
    private readonly TimeSpan _fullRefill;
    private int _count;

    /// <summary>Creates an empty table of per-key buckets.</summary>
    /// <param name="capacity">Each key's bucket capacity.</param>
    /// <param name="tokensPerSecond">Each key's refill rate.</param>
    /// <param name="maxKeys">Keys held at most (at least 1).</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="comparer">Key equality; the default comparer when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad capacity or rate (as <see cref="TokenBucket"/>), or <paramref name="maxKeys"/> below 1.</exception>
    public KeyedTokenBucket(long capacity, double tokensPerSecond, int maxKeys, TimeProvider? timeProvider = null, IEqualityComparer<TKey>? comparer = null)
    {
        TokenBucketCore<Internal.RealAtomics>.ValidateCapacity(capacity);
        TokenBucketCore<Internal.RealAtomics>.ValidateRate(tokensPerSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxKeys, 1);
        _capacity = capacity;
        _tokensPerSecond = tokensPerSecond;
        _batch = TokenBucket.DefaultBatch(capacity);
        _time = timeProvider ?? TimeProvider.System;
        _buckets = new ConcurrentDictionary<TKey, TokenBucket>(comparer);
        MaxKeys = maxKeys;
        _fullRefill = TimeSpan.FromSeconds(Math.Min(capacity / tokensPerSecond, TimeSpan.MaxValue.TotalSeconds / 2));
        _ = new TokenBucket(capacity, tokensPerSecond, _batch, _time); // validates the rate against the clock now, not at the first key
    }

    /// <summary>Keys held at most.</summary>
    public int MaxKeys { get; }

    /// <summary>Keys held now (a snapshot).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Each key's capacity.</summary>
    public long Capacity => _capacity;

    /// <summary>Each key's refill rate.</summary>
    public double TokensPerSecond => _tokensPerSecond;

    /// <summary>Takes <paramref name="tokens"/> from <paramref name="key"/>'s bucket, creating it (full) on first use.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above the capacity.</exception>
    public bool TryAcquire(TKey key, int tokens = 1) => TryAcquire(key, tokens, out _, out _);

    /// <summary>As <see cref="TryAcquire(TKey, int)"/>, with the key's hint on refusal (one full refill when the table is full of busy keys).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above the capacity.</exception>
    public bool TryAcquire(TKey key, int tokens, out TimeSpan retryAfter) => TryAcquire(key, tokens, out retryAfter, out _);

    /// <summary>As <see cref="TryAcquire(TKey, int, out TimeSpan)"/>, also giving the bucket charged (for a hierarchy's refund).</summary>
    internal bool TryAcquire(TKey key, int tokens, out TimeSpan retryAfter, out TokenBucket? charged)
    {
        ArgumentNullException.ThrowIfNull(key);
        TokenBucket.ValidateTokens(tokens, _capacity);
        while (true)
        {
            if (!_buckets.TryGetValue(key, out TokenBucket? bucket) && !TryAdd(key, out bucket))
            {
                retryAfter = _fullRefill;
                charged = null;
                return false;
            }

            switch (bucket.TryAcquireCore(tokens, out long wait))
            {
                case AcquireStatus.Acquired:
                    retryAfter = TimeSpan.Zero;
                    charged = bucket;
                    return true;
                case AcquireStatus.Refused:
                    retryAfter = bucket.ToTimeSpan(wait);
                    charged = null;
                    return false;
                default:
                    Remove(key, bucket); // retired by an eviction: look the key up again
                    continue;
            }
        }
    }

    /// <summary>
    /// The key's bucket, if the key is held (a snapshot; the bucket may be evicted later, once it has refilled completely
    /// with nobody waiting: an evicted bucket's acquires throw <see cref="InvalidOperationException"/>, and a wait queued
    /// on it fails with that exception; look the key up again).
    /// </summary>
    public bool TryGetBucket(TKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TokenBucket? bucket) => _buckets.TryGetValue(key, out bucket);

    /// <summary>Evicts every key whose bucket has refilled completely and has nobody waiting; returns how many went.</summary>
    public int EvictIdle()
    {
        int evicted = 0;
        foreach (KeyValuePair<TKey, TokenBucket> entry in _buckets)
        {
            if (entry.Value.TryRetireIfFull() && Remove(entry.Key, entry.Value))
            {
                evicted++;
            }
        }

        return evicted;
    }

    private bool TryAdd(TKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TokenBucket? bucket)
    {
        if (Interlocked.Increment(ref _count) > MaxKeys)
        {
            Interlocked.Decrement(ref _count);
            EvictIdle();
            if (Interlocked.Increment(ref _count) > MaxKeys)
            {
                Interlocked.Decrement(ref _count);
                if (_buckets.TryGetValue(key, out bucket))
                {
                    return true; // added by another thread meanwhile
                }

                bucket = null;
                return false; // fail closed: every held key is busy
            }
        }

        var created = new TokenBucket(_capacity, _tokensPerSecond, _batch, _time, threadCache: 0, leanRefusalCount: true); // no per-thread state: a table holds many buckets
        bucket = _buckets.GetOrAdd(key, created);
        if (!ReferenceEquals(bucket, created))
        {
            Interlocked.Decrement(ref _count); // another thread added it first
        }

        return true;
    }

    private bool Remove(TKey key, TokenBucket bucket)
    {
        if (_buckets.TryRemove(new KeyValuePair<TKey, TokenBucket>(key, bucket)))
        {
            Interlocked.Decrement(ref _count);
            return true;
        }

        return false;
    }
}
