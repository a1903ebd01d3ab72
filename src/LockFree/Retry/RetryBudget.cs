using System.Diagnostics;
using LockFree.Internal;

namespace LockFree;

// Design: the public face of RetryBudgetCore<RealAtomics>, the lock-free engine (two buckets: a capped ratio bucket
// and a GCRA reserve; the design note, ordering argument and bound are in RetryBudgetCore.cs). This type validates
// the options at the boundary and forwards; the engine is a struct field used in place (never copied), and its
// members are inlined here, so the seam costs nothing (docs/retry-and-dead-letters.md, Budget semantics).

/// <summary>
/// Limits retries to a fraction of calls, so retries cannot amplify an overload: when most calls fail, each caller
/// retries at most <see cref="RetryBudgetOptions.RetryRatio"/> times per call on average, plus a small reserve per
/// second. Thread-safe and lock-free; share one budget across the policies that call the same dependency.
/// </summary>
[DebuggerDisplay("Ratio = {_core.Ratio}, MinPerSecond = {_core.MinPerSecond}")]
public sealed class RetryBudget
{
    private const double MinPositiveRatio = 1.0 / RetryBudgetCore<RealAtomics>.Unit;

    private RetryBudgetCore<RealAtomics> _core; // mutable struct: never copy

    /// <summary>Creates a budget with the given options (null for the defaults).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of its documented range.</exception>
    /// <exception cref="ArgumentNullException">The options' <see cref="RetryBudgetOptions.TimeProvider"/> is null.</exception>
    public RetryBudget(RetryBudgetOptions? options = null)
    {
        options ??= new RetryBudgetOptions();
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        if (!(options.RetryRatio >= 0 && options.RetryRatio <= 100) || (options.RetryRatio > 0 && options.RetryRatio < MinPositiveRatio))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.RetryRatio, "RetryRatio must be 0 or in [0.000001, 100].");
        }

        if (options.MinRetriesPerSecond is < 0 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MinRetriesPerSecond, "MinRetriesPerSecond must be in [0, 1000000].");
        }

        if (options.MaxBurst is < 0 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxBurst, "MaxBurst must be in [0, 1000000].");
        }

        _core = new RetryBudgetCore<RealAtomics>(options.RetryRatio, options.MinRetriesPerSecond, options.MaxBurst, options.TimeProvider);
    }

    /// <summary>Calls recorded.</summary>
    public long Calls => _core.Calls;

    /// <summary>Retries granted.</summary>
    public long RetriesGranted => _core.Granted;

    /// <summary>Retries refused because the budget was spent.</summary>
    public long RetriesRefused => _core.Refused;

    /// <summary>Records one call (a first attempt): deposits <see cref="RetryBudgetOptions.RetryRatio"/> of a retry.</summary>
    public void RecordCall() => _core.RecordCall();

    /// <summary>Spends one retry if the budget allows it; false when it is spent (do not retry).</summary>
    public bool TryAcquireRetry() => _core.TryAcquireRetry();
}
