using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real threads: an <see cref="TokenBucket.AcquireAsync(int, CancellationToken)"/> waiter joins a one-token bucket while
/// another thread runs <see cref="TokenBucket.TryAcquireAll"/> over it and an empty second level (take, refuse, refund)
/// in a loop, on a frozen clock. Whenever the waiter links between a take and its refund, only the refund can serve it
/// (the clock never moves, so the pump's timer never fires): before (helper s10-thr, 2026-11-23) such a waiter sat
/// queued with the token back in the bucket, and the round timed out. Checks the "no waiter missed" argument of
/// <c>TokenBucket.RefundOrOwe</c> (the count is read after the refund's locked CAS; a later waiter pumps itself).
/// </summary>
public sealed class TokenBucketRefundWakeStressTests
{
    [Fact]
    public async Task AcquireAsync_RacingRefunds_EveryWaiterIsServedWithoutTheClock()
    {
        var time = new ManualTimeProvider(); // never moves: a waiter is served by a refund or by its own try, never by a timer
        int rounds = (int)StressScale.Items(300);
        for (int round = 0; round < rounds; round++)
        {
            var first = new TokenBucket(1, 0.001, fastPathBatch: 1, time); // one token; the next in 1,000 s
            var second = new TokenBucket(1, 0.001, fastPathBatch: 1, time);
            Assert.True(second.TryAcquire(1)); // empty: refuses every request, so the first level is refunded each time
            using var stop = new CancellationTokenSource();
            int admitted = 0;
            var hammer = new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    admitted += TokenBucket.TryAcquireAll([first, second], 1, out _) ? 1 : 0; // never: the second level is empty
                }
            });
            hammer.Start();
            Thread.SpinWait(round % 64 * 50); // vary where in the take/refund cycle the waiter lands
            ValueTask<bool> waiter = first.AcquireAsync(1);
            bool served = await waiter.AsTask().WaitAsync(StressScale.Timeout(TimeSpan.FromSeconds(10))).ContinueWith(t => t.IsCompletedSuccessfully && t.Result);
            stop.Cancel();
            Assert.True(hammer.Join(StressScale.Timeout(TimeSpan.FromSeconds(60))), "the acquirer hung");
            Assert.Equal(0, admitted);
            Assert.True(served, $"round {round}: the waiter was never served (queued: {first.QueuedWaiters}) though its token was refunded");
            Assert.False(first.TryAcquire(1)); // the waiter holds the only token: none was minted by the refunds
        }
    }
}
