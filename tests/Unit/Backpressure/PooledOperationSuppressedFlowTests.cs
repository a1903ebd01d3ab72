using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Review s13: <c>PooledOperation.Start</c> under <see cref="ExecutionContext.SuppressFlow"/>. As the async method builder's
/// <c>Start</c>, an AsyncLocal set by code the operation's first steps reach (a retry's action) must not leak into the
/// caller; the builder restores the thread's context whether or not flow is suppressed.
/// </summary>
public sealed class PooledOperationSuppressedFlowTests
{
    private static readonly AsyncLocal<string?> Local = new();

    [Fact]
    public void AsyncMethod_UnderSuppressedFlow_RestoresTheCallersAsyncLocal()
    {
        // The reference behaviour: the BCL's builder.
        string? after = RunSuppressed(() => SetInAsyncMethod().AsTask());
        Assert.Null(after);
    }

    [Fact]
    public void RetryPolicy_ActionSetsAnAsyncLocalUnderSuppressedFlow_DoesNotLeakIntoTheCaller()
    {
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero });
        string? after = RunSuppressed(() => policy.ExecuteAsync(
            (_, _) =>
            {
                Local.Value = "action";
                return new ValueTask<int>(1);
            },
            0).AsTask());
        Assert.Null(after);
    }

    [Fact]
    public void BufferWriteAsync_ParkedUnderSuppressedFlow_CompletesAndLeavesTheCallersFlowSuppressed()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        bool stillSuppressed = false;
        WriteResult result = default;
        OnThread(() =>
        {
            using (ExecutionContext.SuppressFlow()) // its Undo (at the end of the block) throws if the flow state was changed under it
            {
                ValueTask<WriteResult> write = buffer.WriteAsync(1);
                stillSuppressed = ExecutionContext.IsFlowSuppressed();
                Assert.True(buffer.TryRead(out _));
                result = write.AsTask().GetAwaiter().GetResult();
            }
        });
        Assert.True(stillSuppressed);
        Assert.Equal(WriteResult.Accepted, result);
        Assert.True(buffer.TryRead(out int item));
        Assert.Equal(1, item);
    }

    /// <summary>Starts <paramref name="start"/> with flow suppressed, on a clean thread, and returns the AsyncLocal the caller sees after.</summary>
    private static string? RunSuppressed(Func<Task> start)
    {
        string? seen = "not run";
        OnThread(() =>
        {
            using (ExecutionContext.SuppressFlow())
            {
                start().GetAwaiter().GetResult();
                seen = Local.Value;
            }
        });
        return seen;
    }

    /// <summary>Runs <paramref name="body"/> on a new thread (a clean context) and rethrows what it threw.</summary>
    private static void OnThread(Action body)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception error)
            {
                failure = error;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw new Xunit.Sdk.XunitException("the thread failed: " + failure);
        }
    }

    private static async ValueTask<int> SetInAsyncMethod()
    {
        Local.Value = "action";
        await Task.CompletedTask;
        return 1;
    }
}
