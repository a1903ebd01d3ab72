using Xunit;
using static LockFree.Tests.Concurrency.Linearizability.QueueInput;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>The checker accepts what is linearizable and rejects planted violations: it can fail.</summary>
public sealed class LinearizabilityCheckerTests
{
    private static readonly QueueSpec Spec = new(capacity: 2, exactBatches: false);

    private static Operation<QueueInput, QueueOutput> Op(int thread, QueueInput input, QueueOutput output, long call, long ret) =>
        new(thread, input, output, call, ret);

    [Fact]
    public void Check_SequentialFifo_IsLinearizable()
    {
        var history = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 1),
            Op(0, Enqueue(2), QueueOutput.Succeeded, 2, 3),
            Op(0, Enqueue(3), QueueOutput.Failed, 4, 5),
            Op(1, Dequeue(), QueueOutput.Item(1), 6, 7),
            Op(1, Dequeue(), QueueOutput.Item(2), 8, 9),
            Op(1, Dequeue(), QueueOutput.Failed, 10, 11),
        };
        Assert.True(LinearizabilityChecker.Check(Spec, history).IsLinearizable);
    }

    [Fact]
    public void Check_OverlappingEnqueues_AllowEitherOrder()
    {
        var history = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 10),
            Op(1, Enqueue(2), QueueOutput.Succeeded, 1, 9),
            Op(2, Dequeue(), QueueOutput.Item(2), 11, 12),
            Op(2, Dequeue(), QueueOutput.Item(1), 13, 14),
        };
        Assert.True(LinearizabilityChecker.Check(Spec, history).IsLinearizable);
    }

    [Fact]
    public void Check_ReorderedFifo_IsRejected()
    {
        var history = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 1),
            Op(0, Enqueue(2), QueueOutput.Succeeded, 2, 3),
            Op(1, Dequeue(), QueueOutput.Item(2), 4, 5),
        };
        LinearizabilityResult result = LinearizabilityChecker.Check(Spec, history);
        Assert.False(result.IsLinearizable);
        Assert.Contains("TryDequeue() -> 2", result.Explanation);
    }

    [Fact]
    public void Check_LostItem_IsRejected()
    {
        var history = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 1),
            Op(1, Dequeue(), QueueOutput.Failed, 2, 3),
        };
        Assert.False(LinearizabilityChecker.Check(Spec, history).IsLinearizable);
    }

    [Fact]
    public void Check_DuplicatedItem_IsRejected()
    {
        var history = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 1),
            Op(1, Dequeue(), QueueOutput.Item(1), 2, 5),
            Op(2, Dequeue(), QueueOutput.Item(1), 3, 6),
        };
        Assert.False(LinearizabilityChecker.Check(Spec, history).IsLinearizable);
    }

    [Fact]
    public void Check_SpuriousFull_IsRejected()
    {
        var history = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 1),
            Op(0, Enqueue(2), QueueOutput.Failed, 2, 3),
        };
        Assert.False(LinearizabilityChecker.Check(Spec, history).IsLinearizable);
    }

    [Fact]
    public void Check_EmptyAnswerOverlappingEnqueue_IsLinearizable()
    {
        var history = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 10),
            Op(1, Dequeue(), QueueOutput.Failed, 2, 3),
            Op(1, Dequeue(), QueueOutput.Item(1), 11, 12),
        };
        Assert.True(LinearizabilityChecker.Check(Spec, history).IsLinearizable);
    }

    [Fact]
    public void Check_Batches_FollowExactnessSetting()
    {
        var history = new[]
        {
            Op(0, EnqueueMany(1, 2, 3), QueueOutput.Took(1), 0, 1),
            Op(1, DequeueMany(4), QueueOutput.Items([1]), 2, 3),
        };
        Assert.True(LinearizabilityChecker.Check(Spec, history).IsLinearizable);
        Assert.False(LinearizabilityChecker.Check(new QueueSpec(2, exactBatches: true), history).IsLinearizable);
    }

    [Fact]
    public void Check_BatchOverlappingDequeue_FindsTheOnlyOrder()
    {
        // Regression: seen on real threads, wrongly rejected while the search skipped a later call entry.
        var spec = new QueueSpec(1, exactBatches: true);
        var history = new[]
        {
            Op(0, Enqueue(6), QueueOutput.Succeeded, 0, 1),
            Op(0, EnqueueMany(7, 8, 9), QueueOutput.Took(1), 10, 60),
            Op(1, DequeueMany(3), QueueOutput.Items([6]), 20, 50),
        };
        LinearizabilityResult result = LinearizabilityChecker.Check(spec, history);
        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.True(LinearizabilityChecker.CheckInSegments(spec, history).IsLinearizable);
    }

    [Fact]
    public void CheckInSegments_AgreesWithWholeCheck()
    {
        var good = new[]
        {
            Op(0, Enqueue(1), QueueOutput.Succeeded, 0, 10),
            Op(1, Enqueue(2), QueueOutput.Succeeded, 1, 9),
            Op(2, Dequeue(), QueueOutput.Item(2), 11, 12),
            Op(2, Dequeue(), QueueOutput.Item(1), 13, 14),
            Op(0, Enqueue(3), QueueOutput.Succeeded, 15, 16),
        };
        Assert.Equal(3, LinearizabilityChecker.SplitAtQuiescentPoints(good).Count - 1);
        Assert.True(LinearizabilityChecker.CheckInSegments(Spec, good).IsLinearizable);

        var bad = good.Append(Op(1, Dequeue(), QueueOutput.Item(1), 17, 18)).ToArray();
        Assert.False(LinearizabilityChecker.Check(Spec, bad).IsLinearizable);
        Assert.False(LinearizabilityChecker.CheckInSegments(Spec, bad).IsLinearizable);
    }
}
