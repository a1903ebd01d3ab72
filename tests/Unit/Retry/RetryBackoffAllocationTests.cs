using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// The backoff wait between attempts allocates nothing (session 13; the last leftover of acceptance gap A: before, each
/// wait was a <c>Task.Delay</c>, its timer and its token registration). Measured on the calling thread, which arms the wait
/// (where everything the wait allocated used to be allocated) and takes the result, with
/// <see cref="GC.GetAllocatedBytesForCurrentThread"/>: a call whose first attempt throws a cached exception and which
/// retries after a 1 ms backoff on <see cref="TimeProvider.System"/> (the shared timer wheel; the second attempt runs on
/// the pool thread the wheel's callback hands the operation to), against the same call with a zero backoff (the retry
/// runs inline). Throwing costs the same in both (the stack trace of the same frames), so the difference is what the
/// wait costs the calling thread: 0 after warm-up. A cancellable token is passed, so the registration is measured too
/// (its source reuses its nodes). The result is taken through the value task's source (no <c>AsTask</c>) after a spin.
/// The resuming side (the wheel's callback, the pool thread that runs the next attempt) is measured process-wide by
/// <see cref="RetryBackoffResumeAllocationTests"/>.
/// </summary>
public sealed class RetryBackoffAllocationTests
{
    private const int Rounds = 5;

    /// <summary>
    /// Rounds at most: after the first <see cref="Rounds"/>, until one is clean. A round may catch a one-time growth under
    /// load (the pool of operations gaining one because an operation was still on its way back; the JIT tiering up); a
    /// per-wait allocation shows in every round and still fails.
    /// </summary>
    private const int MaxRounds = 20;

    private const int CallsPerRound = 50;
    private static readonly TimeoutException Failure = new("first attempt");

    [Fact]
    public void ExecuteAsync_RetryAfterABackoff_AllocatesNoMoreThanWithoutOne()
    {
        var waiting = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(1), Jitter = RetryJitter.None });
        var immediate = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.Zero, Jitter = RetryJitter.None });
        using var cts = new CancellationTokenSource();
        long waitingBytes = -1, immediateBytes = -1;
        int parked = 0, wrong = 0;
        for (int round = 0; round < Rounds || (waitingBytes != immediateBytes && round < MaxRounds); round++)
        {
            parked = 0;
            wrong = 0;
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < CallsPerRound; i++)
            {
                wrong += Call(immediate, cts.Token, ref parked) == 2 ? 0 : 1;
            }

            immediateBytes = GC.GetAllocatedBytesForCurrentThread() - before;
            int immediateParked = parked;
            parked = 0;
            before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < CallsPerRound; i++)
            {
                wrong += Call(waiting, cts.Token, ref parked) == 2 ? 0 : 1;
            }

            waitingBytes = GC.GetAllocatedBytesForCurrentThread() - before;
            wrong += immediateParked; // a zero backoff never waits
        }

        Assert.Equal(0, wrong);
        Assert.True(parked > 0, "no call waited: the test measured nothing"); // nearly all park; one descheduled for the whole 1 ms goes on inline, allocation-free too
        Assert.True(immediateBytes > 0, "the throw allocates nothing: the comparison is vacuous"); // the stack trace of the cached exception, per call
        Assert.Equal(immediateBytes, waitingBytes);
    }

    /// <summary>One call (no assertion inside: xunit's assertions allocate): its result, once complete; counts a call that parked.</summary>
    private static int Call(RetryPolicy policy, CancellationToken token, ref int parked)
    {
        ValueTask<int> call = policy.ExecuteAsync(static (attempt, _) => ++attempt.Count == 1 ? throw Failure : new ValueTask<int>(attempt.Count), new Box(), token);
        if (!call.IsCompleted)
        {
            parked++;
            SpinWait spinner = default;
            while (!call.IsCompleted)
            {
                spinner.SpinOnce(); // yields and sleeps as it goes: the wheel's and the pool's threads get the cores
            }
        }

        return call.GetAwaiter().GetResult(); // through the source: the operation goes back to its pool here
    }

    /// <summary>The attempt counter of one call (a new one per call: the same allocation in both policies' rounds).</summary>
    private sealed class Box
    {
        public int Count;
    }
}
