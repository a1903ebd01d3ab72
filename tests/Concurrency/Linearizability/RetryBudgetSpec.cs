namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>A retry budget call in a history.</summary>
public enum BudgetOp
{
    /// <summary><c>RecordCall()</c> (output 0).</summary>
    RecordCall,

    /// <summary><c>TryAcquireRetry()</c> (output 1 = granted, 0 = refused).</summary>
    TryAcquireRetry,

    /// <summary>The ratio bucket's credit read at a quiescent point after the run (output: micro-retries).</summary>
    ObserveCredit,
}

/// <summary>The budget's state in the model: the ratio bucket's credit (micro-retries) and the reserve's theoretical arrival time.</summary>
public readonly record struct BudgetState(long Credit, long Tat);

/// <summary>
/// The sequential specification of <see cref="RetryBudget"/> on a clock that does not move (relative time 0): the
/// rules of the model in <c>tests/Unit/Retry/RetryPropertyTests.cs</c> (BudgetMatchesModel), restated per call. A call
/// tops the credit up by the deposit, capped (none at the cap); a retry spends a whole retry of credit if there is one,
/// else asks the GCRA reserve (burst exactly MinRetriesPerSecond); nothing else grants.
/// </summary>
public sealed class RetryBudgetSpec : ISequentialSpec<BudgetState, BudgetOp, long>
{
    private const long Unit = 1_000_000;
    private readonly long _deposit;
    private readonly long _maxCredit;
    private readonly int _minPerSecond;
    private readonly long _interval;
    private readonly long _tolerance;

    /// <summary>A spec for the given options, after <paramref name="setupCalls"/> calls recorded alone.</summary>
    public RetryBudgetSpec(double ratio, int minPerSecond, int maxBurst, long timestampFrequency, int setupCalls)
    {
        _deposit = (long)Math.Round(ratio * Unit);
        _maxCredit = maxBurst * Unit;
        _minPerSecond = minPerSecond;
        _interval = minPerSecond == 0 ? 0 : Math.Max(1, (timestampFrequency + minPerSecond - 1) / minPerSecond);
        _tolerance = (minPerSecond - 1) * _interval;
        var state = new BudgetState(0, long.MinValue);
        for (int i = 0; i < setupCalls; i++)
        {
            state = Deposit(state);
        }

        Initial = state;
    }

    /// <inheritdoc/>
    public BudgetState Initial { get; }

    /// <inheritdoc/>
    public IEqualityComparer<BudgetState> StateComparer => EqualityComparer<BudgetState>.Default;

    /// <inheritdoc/>
    public bool TryStep(BudgetState state, BudgetOp input, long output, out BudgetState next)
    {
        next = state;
        switch (input)
        {
            case BudgetOp.RecordCall:
                next = Deposit(state);
                return output == 0;
            case BudgetOp.ObserveCredit:
                return output == state.Credit;
            default:
                bool granted;
                if (state.Credit >= Unit)
                {
                    next = state with { Credit = state.Credit - Unit };
                    granted = true;
                }
                else if (_minPerSecond == 0)
                {
                    granted = false;
                }
                else
                {
                    const long now = 0; // the clock does not move
                    long tat = Math.Max(state.Tat, now) + _interval;
                    granted = tat - now <= _tolerance + _interval;
                    next = granted ? state with { Tat = tat } : state;
                }

                return output == (granted ? 1 : 0);
        }
    }

    /// <inheritdoc/>
    public string Describe(BudgetOp input, long output) => input switch
    {
        BudgetOp.RecordCall => "RecordCall()",
        BudgetOp.ObserveCredit => $"credit = {output}",
        _ => $"TryAcquireRetry() = {output == 1}",
    };

    private BudgetState Deposit(BudgetState state) =>
        state.Credit < _maxCredit ? state with { Credit = Math.Min(state.Credit + _deposit, _maxCredit) } : state;
}
