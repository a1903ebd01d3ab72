using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// Review of session 12 (s12-rev): a pooled operation's first steps run on the caller's thread, as an async method's did,
/// and like it they must not leak the ExecutionContext or SynchronizationContext changes of the code they reach (here the
/// user's action, run synchronously by <see cref="RetryPolicy.ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/>)
/// into the caller: the async method's builder restored both when the method returned or parked.
/// </summary>
public sealed class RetryPolicyContextIsolationTests
{
    private static readonly AsyncLocal<string?> Local = new();

    private static RetryPolicy Policy() => new(new RetryPolicyOptions { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(1) });

    [Fact]
    public async Task ExecuteAsync_ActionSetsAnAsyncLocalSynchronously_TheCallerDoesNotSeeIt()
    {
        Local.Value = "caller";
        int result = await Policy().ExecuteAsync(_ =>
        {
            Local.Value = "action"; // a synchronous (non-async) action: before, this leaked into the caller
            return new ValueTask<int>(7);
        });

        Assert.Equal(7, result);
        Assert.Equal("caller", Local.Value);
    }

    [Fact]
    public async Task ExecuteAsync_ActionSetsAnAsyncLocalAndParks_TheCallerDoesNotSeeIt()
    {
        var pending = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Local.Value = "caller";
        ValueTask<int> call = Policy().ExecuteAsync(_ =>
        {
            Local.Value = "action";
            return new ValueTask<int>(pending.Task);
        });

        Assert.False(call.IsCompleted);
        Assert.Equal("caller", Local.Value);
        pending.SetResult(3);
        Assert.Equal(3, await call.AsTask().WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task ExecuteAsync_ActionSetsASynchronizationContext_TheCallerKeepsItsOwn()
    {
        SynchronizationContext? before = SynchronizationContext.Current;
        var foreign = new SynchronizationContext();
        ValueTask<int> call;
        bool leaked;
        try
        {
            call = Policy().ExecuteAsync(_ =>
            {
                SynchronizationContext.SetSynchronizationContext(foreign);
                return new ValueTask<int>(1);
            });
            leaked = ReferenceEquals(SynchronizationContext.Current, foreign);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(before);
        }

        Assert.False(leaked);
        Assert.True(call.IsCompletedSuccessfully);
        Assert.Equal(1, await call);
    }
}
