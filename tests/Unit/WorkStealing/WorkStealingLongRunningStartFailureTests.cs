// These tests exercise a TaskScheduler, so they block on its tasks on purpose (always with a bounded timeout).
#pragma warning disable xUnit1031
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// A LongRunning task whose dedicated thread fails to start (helper s8-pump, 2026-11-23; simulated through the internal
/// <c>LongRunningStartForTest</c> hook, since <c>Thread.UnsafeStart</c> fails only on OutOfMemoryException or
/// ThreadStartException). Task.Start faults the task with a TaskSchedulerException; before, Queued still counted it.
/// </summary>
public sealed class WorkStealingLongRunningStartFailureTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;

    [Fact]
    public void StartNew_LongRunningThreadFailsToStart_FaultsAndCountsNothing()
    {
        var scheduler = new WorkStealingTaskScheduler(1);
        try
        {
            scheduler.LongRunningStartForTest = (_, _) => throw new OutOfMemoryException("simulated: no thread");
            long queuedBefore = scheduler.Statistics.Queued;
            TaskSchedulerException error = Assert.Throws<TaskSchedulerException>(() =>
                { _ = Task.Factory.StartNew(() => { }, CancellationToken.None, TaskCreationOptions.LongRunning, scheduler); });
            Assert.IsType<OutOfMemoryException>(error.InnerException);
            Assert.Equal(queuedBefore, scheduler.Statistics.Queued); // before: one more, a task that never ran nor will

            scheduler.LongRunningStartForTest = null; // threads start again
            Task<int> next = Task.Factory.StartNew(() => 1, CancellationToken.None, TaskCreationOptions.LongRunning, scheduler);
            Assert.True(next.Wait(Generous));
        }
        finally
        {
            Task dispose = Task.Run(scheduler.Dispose); // a raised LongRunning count would keep the workers (and Dispose) waiting
            Assert.True(dispose.Wait(Generous), "Dispose did not finish");
        }

        WorkStealingTaskSchedulerStatistics stats = scheduler.Statistics;
        Assert.Equal(stats.Queued, stats.Executed);
    }
}
