using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// Boundaries and bad input the mutation run of session 14 found untested (Stryker on RetryPolicy.cs, RetryBudget.cs,
/// RetryBudgetCore.cs and RetryJitter.cs: each check below could be deleted, or its bound moved by one, with every unit
/// test still passing). Each range's ends are accepted, the values just past them refused at the boundary with the
/// parameter named, and a refused call spends nothing from the budget.
/// </summary>
public sealed class RetryInputBoundaryTests
{
    private static TimeSpan Ms(double milliseconds) => TimeSpan.FromMilliseconds(milliseconds);

    [Fact]
    public void RetryBudget_RangeEnds_AcceptedAndJustPastThemRefused()
    {
        _ = new RetryBudget(new RetryBudgetOptions { RetryRatio = 100 });
        _ = new RetryBudget(new RetryBudgetOptions { RetryRatio = 1e-6 }); // the smallest positive ratio: one micro-retry per call
        _ = new RetryBudget(new RetryBudgetOptions { RetryRatio = 0 });
        _ = new RetryBudget(new RetryBudgetOptions { MinRetriesPerSecond = 1_000_000 });
        _ = new RetryBudget(new RetryBudgetOptions { MaxBurst = 1_000_000 });

        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { RetryRatio = 100.000001 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { RetryRatio = 0.9e-6 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { MinRetriesPerSecond = 1_000_001 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryBudget(new RetryBudgetOptions { MaxBurst = 1_000_001 }));
    }

    [Fact]
    public void RetryBudget_NullTimeProvider_ThrowsNamingIt()
    {
        ArgumentNullException e = Assert.Throws<ArgumentNullException>(() => new RetryBudget(new RetryBudgetOptions { TimeProvider = null! }));
        Assert.Equal("options.TimeProvider", e.ParamName);
    }

    [Fact]
    public void Evaluate_NegativePreviousDelay_ThrowsAndSpendsNothing()
    {
        var budget = new RetryBudget(new RetryBudgetOptions { RetryRatio = 1, MinRetriesPerSecond = 0, MaxBurst = 1, TimeProvider = new ManualTimeProvider() });
        budget.RecordCall(); // one retry's credit
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 3, BaseDelay = Ms(10), MaxDelay = Ms(100), Budget = budget });
        ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => policy.Evaluate(1, new TimeoutException(), Ms(-1)));
        Assert.Equal("previousDelay", e.ParamName);
        Assert.Equal(0, budget.RetriesGranted + budget.RetriesRefused);

        // The one retry of the budget is still there: the refused call took nothing.
        Assert.True(policy.Evaluate(1, new TimeoutException(), TimeSpan.Zero).ShouldRetry);
        Assert.False(policy.Evaluate(1, new TimeoutException(), TimeSpan.Zero).ShouldRetry);
    }

    [Fact]
    public void GetBackoff_RetryBelowOne_ThrowsNamingIt()
    {
        var policy = new RetryPolicy(new RetryPolicyOptions { BaseDelay = Ms(10), MaxDelay = Ms(100) });
        Assert.Equal("retry", Assert.Throws<ArgumentOutOfRangeException>(() => policy.GetBackoff(0, TimeSpan.Zero)).ParamName);
        Assert.Equal("retry", Assert.Throws<ArgumentOutOfRangeException>(() => policy.GetBackoff(-1, TimeSpan.Zero)).ParamName);
        Assert.True(policy.GetBackoff(1, TimeSpan.Zero) >= TimeSpan.Zero);
    }

    [Fact]
    public void ExecuteAsync_WithStateNullAction_ThrowsAtTheCall()
    {
        var policy = new RetryPolicy();
        ArgumentNullException e = Assert.Throws<ArgumentNullException>(() => policy.ExecuteAsync<int, int>(null!, 1));
        Assert.Equal("action", e.ParamName);
    }
}
