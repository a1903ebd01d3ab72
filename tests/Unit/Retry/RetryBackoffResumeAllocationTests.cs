using LockFree.Tests.Unit.Backpressure;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The resuming side of a retry's backoff wait allocates nothing: the wheel's callback that ends the wait (on the wheel's
/// driving thread), the thread-pool work item it queues (the operation itself), and the second attempt and the completion
/// that run there. <see cref="RetryBackoffAllocationTests"/> measures the calling thread only, which arms the wait; this
/// test measures the whole process with <see cref="GC.GetTotalAllocatedBytes(bool)"/> (precise) and subtracts what the
/// calling thread allocated in the same window (<see cref="GC.GetAllocatedBytesForCurrentThread"/>): the failed first
/// attempt's throw, which allocates its stack trace on the calling thread every time and so is never 0 B, and the arming
/// side, which the other test pins. What is left is what every other thread allocated meanwhile: 0 B per retry in steady
/// state, after a warm-up (JIT, the operation pool, the token's registration nodes, the pool threads).
/// </summary>
/// <remarks>
/// The window is one call, and the windows are contiguous (each boundary read once), so the end of one call's resuming
/// thread (after it completed the call) falls into the next window, never between two. The test host is not quiet: one
/// of its threads allocates about 168 B every 100 ms whatever the test does (measured by polling the precise count in an
/// idle test; a console process running these calls counts 0 B on its other threads over thousands of calls). A
/// 100-call window therefore never came out clean, while a one-call window (a few milliseconds) is hit only when that
/// tick falls inside it. That noise hits a window by the time it spans; an allocation on the resuming side hits every
/// window whose call parked. So the test asks that most of those windows (at least half) allocated nothing on the other
/// threads: a per-retry allocation leaves none clean, and an allocation on more than about half the retries fails too.
/// It runs alone (the collection) so that no other test's threads allocate meanwhile.
/// </remarks>
[Collection(ProcessWideAllocationCollection.Name)]
public sealed class RetryBackoffResumeAllocationTests(ITestOutputHelper output)
{
    private const int WarmUpCalls = 200;
    private const int Calls = 200;

    private static readonly TimeoutException Failure = new("first attempt");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ExecuteAsync_RetryAfterABackoff_TheResumingSideAllocatesNothing(bool ownWheel)
    {
        // The system clock, on the shared timer wheel (the default) or on the policy's own wheel driven by its thread.
        using HierarchicalTimerWheel? wheel = ownWheel ? new HierarchicalTimerWheel(TimeSpan.FromMilliseconds(1)) : null;
        wheel?.StartDriver();
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(1), Jitter = RetryJitter.None, TimerWheel = wheel });
        using var cts = new CancellationTokenSource(); // cancellable: the registration is released on the resuming side
        var attempts = new Box();
        var others = new long[WarmUpCalls];
        var parked = new bool[WarmUpCalls];
        Assert.Equal(0, Run(policy, cts.Token, attempts, others, parked));

        others = new long[Calls];
        parked = new bool[Calls];
        Assert.Equal(0, Run(policy, cts.Token, attempts, others, parked));
        int parkedCalls = 0, clean = 0;
        long dirtyBytes = 0;
        for (int i = 0; i < Calls; i++)
        {
            parkedCalls += parked[i] ? 1 : 0;
            clean += parked[i] && others[i] == 0 ? 1 : 0;
            dirtyBytes += parked[i] ? others[i] : 0;
        }

        output.WriteLine($"{parkedCalls} of {Calls} calls parked; {clean} of them allocated nothing on the other threads; the others {dirtyBytes} B in all");
        Assert.True(parkedCalls >= Calls / 2, "most calls went on inline: the test measured few waits"); // a wait that ended before its call parked resumes nothing
        Assert.True(clean * 2 >= parkedCalls, $"only {clean} of {parkedCalls} parked calls allocated nothing on the resuming side ({dirtyBytes} B in the others)");
    }

    /// <summary>
    /// The calls, one after the other, each failing once and retried after its backoff: per call, the bytes the other
    /// threads allocated in its window and whether it parked; returns how many answered wrong. Nothing in the windows
    /// allocates but the calls (the arrays are given; no assertion: xunit's assertions allocate).
    /// </summary>
    private static int Run(RetryPolicy policy, CancellationToken token, Box attempts, long[] others, bool[] parked)
    {
        int wrong = 0;
        long total = GC.GetTotalAllocatedBytes(precise: true);
        long calling = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < others.Length; i++)
        {
            attempts.Count = 0; // one call at a time: the box is reused
            ValueTask<int> call = policy.ExecuteAsync(static (attempt, _) => ++attempt.Count == 1 ? throw Failure : new ValueTask<int>(attempt.Count), attempts, token);
            parked[i] = !call.IsCompleted;
            SpinWait spinner = default;
            while (!call.IsCompleted)
            {
                spinner.SpinOnce(); // yields and sleeps as it goes: the wheel's and the pool's threads get the cores
            }

            wrong += call.GetAwaiter().GetResult() == 2 ? 0 : 1; // through the source: the operation goes back to its pool here
            long callingNow = GC.GetAllocatedBytesForCurrentThread();
            long totalNow = GC.GetTotalAllocatedBytes(precise: true);
            others[i] = (totalNow - total) - (callingNow - calling);
            total = totalNow;
            calling = callingNow;
        }

        return wrong;
    }

    /// <summary>The attempt counter of the call in progress.</summary>
    private sealed class Box
    {
        public int Count;
    }
}
