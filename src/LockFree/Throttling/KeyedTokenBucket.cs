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
// The sweep that retired a bucket also disposes its timers (the pump's timer, armed only if a wait was ever queued
// on it through TryGetBucket; s11-rev: before, an evicted bucket kept it for good): a retired bucket never needs one
// again, since a wait queued on it later fails at once.
//
// A key left with a part-spent fast-path batch is idle too, once nobody has taken from the batch for a while: the
// bucket remembers the clock reading at which it last saw the batch (at issue, and at each sweep), and a sweep that
// finds the batch unchanged charges its spent tokens at that reading (TokenBucketCore.TryRetireIfIdle has the
// argument). So a key that took one batch and went quiet is evictable at the first sweep; one that took from its batch
// since the last sighting, at the next sweep that finds it unchanged.
//
// The key count is kept in our own counter (ConcurrentDictionary.Count takes every lock): an insert reserves a
// slot first; when the table is full it sweeps for idle buckets, and if none can go, the new key is refused
// (fail closed). Sweeps are rate-limited: a sweep visits every held key (O(MaxKeys)), so a storm of new keys
// against a table of busy keys must not pay one per attempt. A sweep that frees nothing learns the earliest instant
// any held key could read full (each bucket reports it; takes only move it later) and no automatic sweep runs before
// then, nor within SweepSpacingPerKey x MaxKeys of the last one; until then a new key is refused in O(1), its
// retryAfter the time to that instant. One thread sweeps at a time (a flag; the others refuse at once). Cost: O(1)
// per new-key attempt, plus at most one O(MaxKeys) sweep per max(earliest refill, MaxKeys microseconds): amortised,
// sweeping costs a few percent of one core at most. EvictIdle() sweeps on demand, unconditionally.

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
    private readonly int _unitShift;   // provider ticks << shift = the buckets' time units (the same for every key)
    private readonly long _sweepSpacing; // provider ticks between automatic sweeps at least (SweepSpacingPerKey x MaxKeys)
    private int _count;
    private long _nextSweep;           // provider timestamp before which no automatic sweep runs (read and written with Volatile)
    private int _sweeping;             // 1 while a thread runs an automatic sweep

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
        var probe = new TokenBucket(capacity, tokensPerSecond, _batch, _time); // validates the rate against the clock now, not at the first key
        _unitShift = probe.UnitShift;
        _sweepSpacing = (long)Math.Min(Math.Ceiling(maxKeys * SweepSpacingPerKey.TotalSeconds * _time.TimestampFrequency), long.MaxValue / 4);
        _nextSweep = _time.GetTimestamp();
    }

    /// <summary>
    /// Automatic sweeps are at least this much apart per held key (1 µs: a sweep's visit to a key, an ownership CAS and
    /// a clock read, costs some tens of nanoseconds, so sweeps back to back take a few percent of one core at most).
    /// </summary>
    internal static readonly TimeSpan SweepSpacingPerKey = TimeSpan.FromTicks(10);

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

    /// <summary>
    /// As <see cref="TryAcquire(TKey, int)"/>, with the key's hint on refusal; a new key refused by a full table of busy
    /// keys is told the earliest instant the next sweep could free a slot.
    /// </summary>
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
            if (!_buckets.TryGetValue(key, out TokenBucket? bucket) && !TryAdd(key, out bucket, out retryAfter))
            {
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

    /// <summary>
    /// Evicts every key whose bucket has refilled completely and has nobody waiting; returns how many went. A key left
    /// with a part-spent fast-path batch counts once no token was taken from the batch since the table last saw it
    /// (its spent tokens are then charged at that sighting), so it may take a second sweep. Always sweeps (O(keys));
    /// the automatic sweeps of a full table are rate-limited instead.
    /// </summary>
    public int EvictIdle() => Sweep(out _);

    /// <summary>One pass over the table; <paramref name="fullInUnits"/>: the earliest a kept key could read full (units; long.MaxValue when none).</summary>
    private int Sweep(out long fullInUnits)
    {
        int evicted = 0;
        fullInUnits = long.MaxValue;
        foreach (KeyValuePair<TKey, TokenBucket> entry in _buckets)
        {
            if (entry.Value.TryRetireIfIdle(out long fullIn))
            {
                if (Remove(entry.Key, entry.Value))
                {
                    evicted++;
                }

                entry.Value.StopTimersAfterRetire(); // retired for good (this call retired it): its pump's timer, if a wait ever armed one, goes too (s11-rev)
            }
            else
            {
                fullInUnits = Math.Min(fullInUnits, fullIn);
            }
        }

        return evicted;
    }

    private bool TryAdd(TKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TokenBucket? bucket, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (Interlocked.Increment(ref _count) > MaxKeys)
        {
            Interlocked.Decrement(ref _count);
            bool swept = TrySweepForRoom(out retryAfter);
            if (!swept || Interlocked.Increment(ref _count) > MaxKeys)
            {
                if (swept)
                {
                    Interlocked.Decrement(ref _count); // the sweep freed room, and other new keys took it first
                    retryAfter = TicksToTimeSpan(_sweepSpacing);
                }

                if (_buckets.TryGetValue(key, out bucket))
                {
                    retryAfter = TimeSpan.Zero;
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

    /// <summary>
    /// The table is full: sweeps if the last sweep's horizon has passed and no other thread is sweeping. True when this
    /// call swept and freed at least one slot; otherwise <paramref name="retryAfter"/> is the time to the next allowed sweep.
    /// </summary>
    private bool TrySweepForRoom(out TimeSpan retryAfter)
    {
        long now = _time.GetTimestamp();
        long next = Volatile.Read(ref _nextSweep); // acquire: pairs with the sweeper's release store
        if (unchecked(next - now) > 0 || Interlocked.CompareExchange(ref _sweeping, 1, 0) != 0) // full fence: one sweeper at a time
        {
            retryAfter = TicksToTimeSpan(Math.Max(unchecked(next - now), 1));
            return false; // refused in O(1): a sweep now would find no key idle (or one is running)
        }

        int evicted;
        try
        {
            evicted = Sweep(out long fullInUnits);
            long horizon = evicted > 0 ? 0 : Math.Max(fullInUnits == long.MaxValue ? _sweepSpacing : fullInUnits >> _unitShift, _sweepSpacing); // units >> shift: provider ticks, rounded down (never later than a key could be full)
            Volatile.Write(ref _nextSweep, unchecked(now + horizon)); // release: pairs with the acquire above
            retryAfter = evicted > 0 ? TimeSpan.Zero : TicksToTimeSpan(horizon);
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0); // release: the next sweeper sees _nextSweep
        }

        return evicted > 0;
    }

    /// <summary>Provider ticks as a <see cref="TimeSpan"/>, rounded up (a hint: never earlier than the instant it names).</summary>
    private TimeSpan TicksToTimeSpan(long ticks) =>
        TimeSpan.FromTicks((long)Math.Min(Math.Ceiling(ticks * ((double)TimeSpan.TicksPerSecond / _time.TimestampFrequency)), TimeSpan.MaxValue.Ticks));

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
