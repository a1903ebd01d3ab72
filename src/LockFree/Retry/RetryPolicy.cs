using System.Diagnostics;
using LockFree.Timers;

#if LOCKFREE_COMPOSED_TESTS
namespace LockFree.Tests.Concurrency.Composed;
#else
namespace LockFree;
#endif

// Design: a retry policy is a pure decision (Evaluate: retry after how long, or stop and why) plus one async
// driver (ExecuteAsync) built on it. A pipeline that schedules its retries on a DelayQueue calls Evaluate and
// enqueues the message with the delay it returns: no async state machine, no thread waiting. ExecuteAsync waits
// through the Wakeups seam (a TimeProvider timer, or the timer wheel given in the options), never by blocking a thread.
//
// Decision order for a failure after attempt n: cancellation of the caller's token -> never retried (ExecuteAsync:
// checked before Evaluate, so neither ShouldRetry nor the budget is asked; the caller's own OperationCanceledException
// passes as is, any other failure is wrapped in one for the caller's token); n >=
// MaxAttempts -> MaxAttempts; ShouldRetry says no -> NotRetryable; a retry-after hint above MaxDelay ->
// RetryAfterTooLong; the budget is spent -> BudgetExhausted (checked last, so only real retries spend it); else
// retry after max(backoff(n), hint).
//
// Thread safety: the policy is immutable apart from the budget (lock-free) and the random source
// (Random.Shared is thread-safe; a seeded one is documented as single-threaded).

/// <summary>
/// Retries with capped exponential backoff and jitter (none, full or decorrelated), honours retry-after hints, and
/// spends from a <see cref="RetryBudget"/> so retries cannot amplify an overload. Use <see cref="ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/>
/// to run an action, or <see cref="Evaluate"/> to schedule retries yourself (for example on a <see cref="DelayQueue{T}"/>).
/// </summary>
[DebuggerDisplay("MaxAttempts = {MaxAttempts}, Jitter = {Jitter}")]
public sealed partial class RetryPolicy
{
    private static readonly Func<Exception, TimeSpan?> DefaultRetryAfter = static e => e is RetryAfterException r ? r.RetryAfter : null;

    private readonly Func<Exception, bool>? _shouldRetry;
    private readonly Func<Exception, TimeSpan?> _retryAfter;
    private readonly Random _random;
    private readonly TimeProvider _time;
    private readonly HierarchicalTimerWheel? _wheel;

    /// <summary>Creates a policy with the given options (null for the defaults).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of its documented range.</exception>
    /// <exception cref="ArgumentNullException">The options' <see cref="RetryPolicyOptions.TimeProvider"/> is null.</exception>
    /// <exception cref="ArgumentException">The options' <see cref="RetryPolicyOptions.TimerWheel"/> reads another clock than its <see cref="RetryPolicyOptions.TimeProvider"/>.</exception>
    public RetryPolicy(RetryPolicyOptions? options = null)
    {
        options ??= new RetryPolicyOptions();
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        Wakeups.ValidateWheel(options.TimerWheel, options.TimeProvider, nameof(options)); // ExecuteAsync waits on the policy's clock
        if (options.MaxAttempts is < 1 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxAttempts, "MaxAttempts must be in [1, 1000000].");
        }

        if (options.MaxDelay < TimeSpan.Zero || options.MaxDelay > Wakeups.MaxDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxDelay, $"MaxDelay must be in [0, {Wakeups.MaxDelay}].");
        }

        if (options.BaseDelay < TimeSpan.Zero || options.BaseDelay > options.MaxDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BaseDelay, "BaseDelay must be in [0, MaxDelay].");
        }

        if (!Enum.IsDefined(options.Jitter))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Jitter, "Jitter is not a RetryJitter value.");
        }

        MaxAttempts = options.MaxAttempts;
        BaseDelay = options.BaseDelay;
        MaxDelay = options.MaxDelay;
        Jitter = options.Jitter;
        Budget = options.Budget;
        _shouldRetry = options.ShouldRetry;
        _retryAfter = options.RetryAfter ?? DefaultRetryAfter;
        _random = options.Random ?? Random.Shared;
        _time = options.TimeProvider;
        _wheel = options.TimerWheel;
    }

    /// <summary>Attempts in all, the first included.</summary>
    public int MaxAttempts { get; }

    /// <summary>The backoff unit.</summary>
    public TimeSpan BaseDelay { get; }

    /// <summary>The cap on any delay.</summary>
    public TimeSpan MaxDelay { get; }

    /// <summary>How the backoff is randomised.</summary>
    public RetryJitter Jitter { get; }

    /// <summary>The budget retries spend from, or null (unlimited).</summary>
    public RetryBudget? Budget { get; }

    /// <summary>Records one call (a first attempt) with the budget, if any. <see cref="ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/> does this itself.</summary>
    public void RecordCall() => Budget?.RecordCall();

    /// <summary>
    /// Decides what to do after attempt <paramref name="attempt"/> (1 for the first) failed with <paramref name="failure"/>:
    /// retry after the returned delay, or stop. <paramref name="previousDelay"/> is the delay before the failed attempt
    /// (<see cref="TimeSpan.Zero"/> after the first); decorrelated jitter grows from it. A retry decision spends one
    /// retry from the budget.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="attempt"/> is below 1 or <paramref name="previousDelay"/> is negative.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="failure"/> is null.</exception>
    public RetryDecision Evaluate(int attempt, Exception failure, TimeSpan previousDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        ArgumentNullException.ThrowIfNull(failure);
        ArgumentOutOfRangeException.ThrowIfLessThan(previousDelay, TimeSpan.Zero);
        if (attempt >= MaxAttempts)
        {
            return RetryDecision.Stop(RetryStopReason.MaxAttempts);
        }

        if (!(_shouldRetry?.Invoke(failure) ?? failure is not OperationCanceledException))
        {
            return RetryDecision.Stop(RetryStopReason.NotRetryable);
        }

        TimeSpan? hint = _retryAfter(failure);
        if (hint > MaxDelay)
        {
            return RetryDecision.Stop(RetryStopReason.RetryAfterTooLong);
        }

        if (Budget is not null && !Budget.TryAcquireRetry())
        {
            return RetryDecision.Stop(RetryStopReason.BudgetExhausted);
        }

        TimeSpan delay = GetBackoff(attempt, previousDelay);
        return RetryDecision.Retry(hint is { } h && h > delay ? h : delay);
    }

    /// <summary>
    /// The jittered backoff before retry number <paramref name="retry"/> (1 for the first retry), capped at
    /// <see cref="MaxDelay"/>; <paramref name="previousDelay"/> feeds decorrelated jitter (zero: start from
    /// <see cref="BaseDelay"/>). Pure apart from the random draw; spends nothing from the budget.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="retry"/> is below 1 or <paramref name="previousDelay"/> is negative.</exception>
    public TimeSpan GetBackoff(int retry, TimeSpan previousDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retry, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(previousDelay, TimeSpan.Zero);
        double cap = MaxDelay.Ticks;
        double ticks;
        switch (Jitter)
        {
            case RetryJitter.None:
                ticks = Math.Min(cap, BaseDelay.Ticks * Math.Pow(2, retry - 1));
                break;
            case RetryJitter.Full:
                ticks = Math.Min(cap, BaseDelay.Ticks * Math.Pow(2, retry - 1)) * _random.NextDouble();
                break;
            default:
                double low = BaseDelay.Ticks;
                double high = 3.0 * Math.Max(low, previousDelay.Ticks);
                ticks = Math.Min(cap, low + ((high - low) * _random.NextDouble()));
                break;
        }

        return TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>Runs <paramref name="action"/>, retrying failures under the policy; the last failure propagates.</summary>
    /// <exception cref="OperationCanceledException">
    /// <paramref name="cancellationToken"/> was cancelled (before an attempt, during one, or during a wait): always for
    /// that token; an attempt that failed otherwise after the cancellation is its <see cref="Exception.InnerException"/>.
    /// A cancelled call is never retried and spends nothing from the budget.
    /// </exception>
    public ValueTask<TResult> ExecuteAsync<TResult>(Func<CancellationToken, ValueTask<TResult>> action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        return ExecuteAsync(static (a, token) => a(token), action, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="action"/> with <paramref name="state"/> (no closure to allocate), retrying failures under
    /// the policy; the last failure propagates. Allocation-free when the first attempt succeeds synchronously; each
    /// retry waits on the policy's clock without blocking a thread.
    /// </summary>
    /// <exception cref="OperationCanceledException">
    /// <paramref name="cancellationToken"/> was cancelled (before an attempt, during one, or during a wait): always for
    /// that token; an attempt that failed otherwise after the cancellation is its <see cref="Exception.InnerException"/>.
    /// A cancelled call is never retried and spends nothing from the budget.
    /// </exception>
    public ValueTask<TResult> ExecuteAsync<TState, TResult>(Func<TState, CancellationToken, ValueTask<TResult>> action, TState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        return ExecuteCore(action, state, cancellationToken);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowCancelled(Exception failure, CancellationToken cancellationToken) =>
        throw new OperationCanceledException("The operation was cancelled by the caller's token; the attempt failed with the inner exception.", failure, cancellationToken);
}
