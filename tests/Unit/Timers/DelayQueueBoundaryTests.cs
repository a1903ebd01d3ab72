using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// Contract points of <see cref="DelayQueue{T}"/> that a mutation run of session 14 found untested (Stryker on
/// DelayQueue.cs: each check below could be deleted, or never ran, with every unit test still passing).
/// </summary>
public sealed class DelayQueueBoundaryTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Ctor_CapacityBelowOne_Throws(int capacity)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DelayQueue<int>(capacity));
    }

    [Fact]
    public void IsCompleted_FalseUntilCompleted()
    {
        using var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = new ManualTimeProvider() });
        Assert.False(queue.IsCompleted);
        Assert.True(queue.TryComplete());
        Assert.True(queue.IsCompleted);
        Assert.False(queue.TryComplete());
    }

    [Fact]
    public void Dispose_CompletesTheQueue()
    {
        var queue = new DelayQueue<int>(4, new DelayQueueOptions<int> { TimeProvider = new ManualTimeProvider() });
        queue.Dispose();
        Assert.True(queue.IsCompleted);
        queue.Dispose(); // a second Dispose returns
    }

    [Fact]
    public async Task Complete_WhileAWriterWaitsForRoom_EndsItsWaitAsCompleted()
    {
        // A full Wait-policy queue parks EnqueueAsync; completing the queue must end that wait (it would wait for ever).
        using var queue = new DelayQueue<int>(1, new DelayQueueOptions<int> { FullMode = OverflowPolicy.Wait, TimeProvider = new ManualTimeProvider() });
        Assert.True(queue.TryEnqueue(1, TimeSpan.Zero).IsAccepted);
        ValueTask<WriteResult> parked = queue.EnqueueAsync(2, TimeSpan.Zero);
        Assert.False(parked.IsCompleted);

        queue.Complete();

        WriteResult result = await parked.AsTask().WaitAsync(Generous);
        Assert.Equal(WriteOutcome.Completed, result.Outcome);
        Assert.True(queue.TryDequeue(out int item)); // the queued item stays readable
        Assert.Equal(1, item);
        Assert.False(queue.TryDequeue(out _));
    }
}
