namespace LockFree;

/// <summary>Settings of a <see cref="RetryBudget"/>. Every value is validated by the budget's constructor.</summary>
public sealed class RetryBudgetOptions
{
    /// <summary>
    /// Retries allowed per call: each call deposits this much retry credit and each retry spends one. Default 0.1
    /// (retries add at most 10% load on top of the calls). 0, or in [0.000001, 100]: kept to six decimals (the budget
    /// counts in millionths of a retry), so a smaller positive ratio is refused rather than rounded to 0.
    /// </summary>
    public double RetryRatio { get; init; } = 0.1;

    /// <summary>
    /// Retries always allowed per second, whatever the call volume, so a quiet caller can still retry. Default 10.
    /// In [0, 1_000_000]. Also the size of that reserve's burst (one second's worth, available at once).
    /// </summary>
    public int MinRetriesPerSecond { get; init; } = 10;

    /// <summary>
    /// The most unspent credit the call deposits accumulate, in retries, so a long healthy period cannot fund an
    /// unbounded storm later. Default 100. In [0, 1_000_000]. A retry spends one whole unit of credit, so below 1 (that
    /// is, 0) the deposits never add up to a retry: <see cref="RetryRatio"/> then grants nothing and only the
    /// <see cref="MinRetriesPerSecond"/> reserve does.
    /// </summary>
    public int MaxBurst { get; init; } = 100;

    /// <summary>
    /// The clock for the per-second reserve. Default <see cref="TimeProvider.System"/>. Read once when the budget is
    /// created (with a reserve), then only when the ratio credit is spent; its timestamps may start anywhere and wrap
    /// past <see cref="long.MaxValue"/> (the reserve counts differences), as long as they are monotonic.
    /// </summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
