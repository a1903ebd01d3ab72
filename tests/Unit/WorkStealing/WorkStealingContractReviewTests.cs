// These tests exercise a TaskScheduler, so they block on its tasks on purpose (always with a bounded timeout).
#pragma warning disable xUnit1031
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// TaskScheduler-contract cases found by review: each failed on the code before its fix (see the commit that added it).
/// </summary>
public sealed class WorkStealingContractReviewTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;

    [Fact]
    public void Join_OnOneWorker_TaskInTheInjectionQueue_RunsIt()
    {
        // Before, Join's helping looked at the worker's own slot and deque and stole from other workers, never at the
        // injection queue: on one worker a joined task queued from an outside thread was never run and the join waited
        // forever. (Bounded here: on failure a second worker is added to release the join.)
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 1, MaximumWorkerCount = 2 });
        Task<int> parent = Task.Factory.StartNew(
            () =>
            {
                // Queued from a thread-pool thread: the injection queue.
                Task<int> outside = Task.Factory.StartNew(
                    () => Task.Factory.StartNew(() => 42, CancellationToken.None, TaskCreationOptions.None, scheduler),
                    CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default).Result;
                return scheduler.Join(outside);
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        bool joined = parent.Wait(Generous);
        if (!joined)
        {
            scheduler.SetWorkerCount(2);
            Assert.True(parent.Wait(Generous));
        }

        Assert.True(joined, "the join never ran the injected task");
        Assert.Equal(42, parent.Result);
    }
}
