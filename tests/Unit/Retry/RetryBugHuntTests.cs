using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// Bugs found by the session-10 bug hunt on the retry side (each test failed before its fix): an expiry pass whose
/// re-arm threw lost the messages it had just timed out; <see cref="RetryPolicy.ExecuteAsync{TResult}(Func{CancellationToken, ValueTask{TResult}}, CancellationToken)"/>
/// spent the budget (and ran ShouldRetry) for a failure whose caller had already cancelled.
/// </summary>
public sealed class RetryBugHuntTests
{
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(10);

    [Fact]
    public void VisibilityTimeout_ReArmThrowsInTheExpiryPass_ExpiredMessagesKeptAndTimeoutsResume()
    {
        // The expiry pass unlinks the expired deliveries, then re-arms the timer for the next head, under the lock.
        // Before, a re-arm that threw (the TimeProvider's ITimer: user code) left the pass before the expired messages
        // were put back: out of the table, never in the ready queue, their room held for good (at-least-once broken).
        var manual = new ManualTimeProvider();
        var clock = new TimerFailingClock(manual);
        using var queue = new AckQueue<string>(new AckQueueOptions<string> { Capacity = 4, VisibilityTimeout = Visibility, TimeProvider = clock });
        var reported = new List<Exception>();
        queue.CallbackFailed += (_, ex) => reported.Add(ex);
        Assert.True(queue.TryEnqueue("a").IsAccepted);
        Assert.True(queue.TryEnqueue("b").IsAccepted);
        Assert.True(queue.TryReceive(out Delivery<string> a));
        manual.Advance(TimeSpan.FromSeconds(1));
        Assert.True(queue.TryReceive(out Delivery<string> b));
        Assert.Equal(("a", "b"), (a.Message, b.Message));

        clock.ArmingFailures = 1; // the pass's re-arm for "b"
        manual.Advance(Visibility - TimeSpan.FromSeconds(1)); // "a" expires

        Assert.Equal("arming failed", Assert.Single(reported).Message);
        Assert.Equal(1, queue.InFlightCount); // "b"
        Assert.Equal(2, queue.Count);
        Assert.True(queue.TryReceive(out Delivery<string> again)); // before: false, "a" was lost
        Assert.Equal(("a", 2), (again.Message, again.DeliveryCount));
        Assert.False(queue.Ack(a)); // stale
        Assert.True(queue.Ack(again));

        manual.Advance(TimeSpan.FromSeconds(2)); // the retried arming times "b" out
        Assert.Equal(0, queue.InFlightCount);
        Assert.True(queue.TryReceive(out Delivery<string> bAgain));
        Assert.Equal(("b", 2), (bAgain.Message, bAgain.DeliveryCount));
        Assert.False(queue.Ack(b));
        Assert.True(queue.Ack(bAgain));
        Assert.Equal(0, queue.Count);
    }
}
