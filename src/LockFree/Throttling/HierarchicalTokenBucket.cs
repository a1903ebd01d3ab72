namespace LockFree;

// Design: a request passes every level or takes from none. Levels are tried most specific first (operation,
// then key, then global): the refusal that happens most (one user or one operation over its limit) is decided
// before any shared level is touched, so it consumes nothing above it and costs the global bucket no contention.
// When a higher level refuses, the lower levels already charged get their tokens back (TokenBucket refunds are
// exact: the charge is undone, as if the request never came). Between the charge and the refund, a concurrent
// request of the same key may be refused: the hierarchy errs on the side of refusing, never of admitting.

/// <summary>
/// Global, then per key (user, tenant), then per operation limits: a request must pass every level, and a
/// refusal at a lower level consumes nothing above it. Any level but the per-key one may be omitted.
/// </summary>
/// <typeparam name="TKey">The key type (user, tenant).</typeparam>
/// <typeparam name="TOperation">The operation type (endpoint, method).</typeparam>
public sealed class HierarchicalTokenBucket<TKey, TOperation>
    where TKey : notnull
    where TOperation : notnull
{
    private readonly TokenBucket? _global;
    private readonly KeyedTokenBucket<TKey> _perKey;
    private readonly KeyedTokenBucket<(TKey, TOperation)>? _perOperation;

    /// <summary>Creates the hierarchy from its levels.</summary>
    /// <param name="global">The limit every request shares; none when null.</param>
    /// <param name="perKey">The per-key limits.</param>
    /// <param name="perOperation">The per-key, per-operation limits; none when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="perKey"/> is null.</exception>
    public HierarchicalTokenBucket(TokenBucket? global, KeyedTokenBucket<TKey> perKey, KeyedTokenBucket<(TKey, TOperation)>? perOperation = null)
    {
        ArgumentNullException.ThrowIfNull(perKey);
        _global = global;
        _perKey = perKey;
        _perOperation = perOperation;
    }

    /// <summary>The global level, if any.</summary>
    public TokenBucket? Global => _global;

    /// <summary>The per-key level.</summary>
    public KeyedTokenBucket<TKey> PerKey => _perKey;

    /// <summary>The per-operation level, if any.</summary>
    public KeyedTokenBucket<(TKey, TOperation)>? PerOperation => _perOperation;

    /// <summary>Takes <paramref name="tokens"/> at every level, or at none.</summary>
    /// <remarks>
    /// A lower level given its tokens back (a higher level refused, or its clock threw) serves that bucket's queued
    /// <see cref="TokenBucket.AcquireAsync(int, CancellationToken)"/> waiters at once, oldest first.
    /// </remarks>
    /// <param name="key">The caller's key.</param>
    /// <param name="operation">The operation (ignored without a per-operation level).</param>
    /// <param name="tokens">The cost.</param>
    /// <param name="retryAfter">On refusal, the refusing level's hint.</param>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="operation"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is below 1 or above some level's capacity (checked before anything is taken).</exception>
    public bool TryAcquire(TKey key, TOperation operation, int tokens, out TimeSpan retryAfter)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(operation);
        TokenBucket.ValidateTokens(tokens, _perKey.Capacity);
        if (_perOperation is not null)
        {
            TokenBucket.ValidateTokens(tokens, _perOperation.Capacity);
        }

        if (_global is not null)
        {
            TokenBucket.ValidateTokens(tokens, _global.Capacity);
        }

        // All or nothing, also when a level's clock throws (its acquire, or a refund's reading): the levels already
        // charged get their tokens back through RefundOrOwe, which never throws (a refund whose reading fails is owed and
        // paid by that bucket's pump). Before (review of 2026-11-23), an exception from a later level's acquire, or from a
        // refund, left the earlier levels charged for a request that was never admitted: their tokens were lost.
        TokenBucket? operationBucket = null;
        TokenBucket? keyBucket = null;
        try
        {
            if (_perOperation is not null && !_perOperation.TryAcquire((key, operation), tokens, out retryAfter, out operationBucket))
            {
                return false;
            }

            if (!_perKey.TryAcquire(key, tokens, out retryAfter, out keyBucket))
            {
                operationBucket?.RefundOrOwe(tokens);
                return false;
            }

            if (_global is not null && !_global.TryAcquire(tokens, out retryAfter))
            {
                keyBucket!.RefundOrOwe(tokens);
                operationBucket?.RefundOrOwe(tokens);
                return false;
            }
        }
        catch
        {
            keyBucket?.RefundOrOwe(tokens); // only the acquires throw here: nothing was refunded yet
            operationBucket?.RefundOrOwe(tokens);
            throw;
        }

        retryAfter = TimeSpan.Zero;
        return true;
    }

    /// <summary>As <see cref="TryAcquire(TKey, TOperation, int, out TimeSpan)"/> for one token.</summary>
    public bool TryAcquire(TKey key, TOperation operation) => TryAcquire(key, operation, 1, out _);
}
