using LockFree.Tests.Concurrency.Linearizability;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// The histories recorded under the scheduler (Call/Return = the scheduler's global step counter) fed to the
/// <see cref="LinearizabilityChecker"/> with <see cref="QueueSpec"/>. Every scenario run by the other
/// queue tests checks linearizability too (<see cref="QueueScenario.CheckLinearizability"/>); these pin it down.
/// </summary>
public sealed class LinearizabilityWiringTests
{
    [Theory]
    [InlineData(QueueKind.Spsc)]
    [InlineData(QueueKind.Mpsc)]
    [InlineData(QueueKind.Spmc)]
    [InlineData(QueueKind.Mpmc)]
    public void ControlledHistories_AreLinearizable(QueueKind kind)
    {
        foreach (QueueScenario s in QueueScenarios.For(kind))
        {
            var scenario = new QueueScenario(s.Kind, s.Capacity, s.Threads, s.Prefill) { Linearizability = true };
            foreach (var (strategy, budget) in QueueScenarios.Plan(seed: 77, perStrategy: 200))
            {
                scenario.Explore(strategy, budget);
            }
        }
    }

    [Fact]
    public void Checker_RejectsAnOverfullHistory()
    {
        // Capacity 1: two enqueues succeed with no dequeue between them: not linearizable.
        var history = new List<Operation<QueueInput, QueueOutput>>
        {
            new(1, QueueInput.Enqueue(1), QueueOutput.Succeeded, 0, 1),
            new(1, QueueInput.Enqueue(2), QueueOutput.Succeeded, 2, 3),
        };
        Assert.False(LinearizabilityChecker.Check(new QueueSpec(1, exactBatches: false), history).IsLinearizable);
    }
}
