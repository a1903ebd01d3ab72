// These tests drive a TaskScheduler from plain threads and block on its tasks on purpose, always with a bounded timeout.
#pragma warning disable xUnit1031
using LockFree.Tests.Concurrency.Stress;
using Xunit;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// <see cref="WorkStealingTaskScheduler.Statistics"/> read while workers retire and hand their queued tasks off: the
/// counters behind the <c>lockfree.scheduler.*</c> observable counters never go down. Sizes scale with <see cref="StressScale"/>.
/// </summary>
public sealed class SchedulerStatisticsStressTests
{
    private static readonly TimeSpan Bounded = StressScale.Timeout(TimeSpan.FromSeconds(60));

    [Fact]
    public void Statistics_ReadWhileRetiringWorkersHandOff_QueuedAndExecutedNeverDecrease()
    {
        // Before, Statistics read the hand-off count under the scale lock but the injection ring's enqueue position after
        // releasing it: a retirement in between (it enqueues its tasks and adds them to the hand-off count, both under
        // the lock) was counted as new tasks, and the next read dropped back: Queued went down.
        int rounds = (int)StressScale.Items(400);
        const int Roots = 4;
        const int Children = 64;
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
        {
            WorkerCount = 1, MinimumWorkerCount = 1, MaximumWorkerCount = 4, SpinRounds = 1,
        });
        using var stop = new ManualResetEventSlim(false);
        string? violation = null;
        long reads = 0;
        var reader = new Thread(() =>
        {
            long lastQueued = 0, lastExecuted = 0;
            while (!stop.IsSet && violation is null)
            {
                WorkStealingTaskSchedulerStatistics s = scheduler.Statistics;
                reads++;
                if (s.Queued < lastQueued || s.Executed < lastExecuted)
                {
                    violation = $"read {reads}: queued {lastQueued} -> {s.Queued}, executed {lastExecuted} -> {s.Executed}";
                }

                lastQueued = Math.Max(lastQueued, s.Queued);
                lastExecuted = Math.Max(lastExecuted, s.Executed);
            }
        }) { IsBackground = true };
        reader.Start();
        try
        {
            for (int round = 0; round < rounds && violation is null; round++)
            {
                scheduler.SetWorkerCount(Roots);
                using var done = new CountdownEvent(Roots * Children);
                for (int r = 0; r < Roots; r++)
                {
                    Task.Factory.StartNew(
                        () =>
                        {
                            for (int c = 0; c < Children; c++)
                            {
                                Task.Factory.StartNew(() => done.Signal(), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                            }
                        },
                        CancellationToken.None, TaskCreationOptions.None, scheduler);
                }

                scheduler.SetWorkerCount(1); // the roots' workers retire with children queued: hand-offs
                Assert.True(done.Wait(Bounded), $"round {round}: {done.CurrentCount} children never ran; {scheduler.Statistics}");
            }
        }
        finally
        {
            stop.Set();
            Assert.True(reader.Join(Bounded));
        }

        Assert.Null(violation);
        Assert.True(SpinWait.SpinUntil(() => scheduler.Statistics.Executed == scheduler.Statistics.Queued, Bounded), scheduler.Statistics.ToString());
    }
}
