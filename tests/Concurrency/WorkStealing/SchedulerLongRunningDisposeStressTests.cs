// These tests drive a TaskScheduler from plain threads and block on its tasks on purpose, always with a bounded timeout.
#pragma warning disable xUnit1031
using LockFree.Tests.Concurrency.Stress;
using Xunit;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>Dispose racing draining work that keeps starting LongRunning tasks. Sizes scale with <see cref="StressScale"/>.</summary>
public sealed class SchedulerLongRunningDisposeStressTests
{
    private static readonly TimeSpan Bounded = StressScale.Timeout(TimeSpan.FromSeconds(60));

    [Fact]
    public void Dispose_WhileDrainingWorkStartsLongRunningTasks_FinishesAndRunsThemAll()
    {
        // Before, StartLongRunning registered the new thread (for Dispose to join) before starting it, and Dispose joined
        // the first registered thread: a Thread.Join on a not-yet-started thread threw ThreadStateException out of
        // Dispose, half-way (a second Dispose then waited forever). Dispose now waits for a registered thread to start.
        int rounds = (int)StressScale.Items(20);
        const int LongRunningPerRound = 100;
        for (int round = 0; round < rounds; round++)
        {
            var scheduler = new WorkStealingTaskScheduler(2);
            int ran = 0;
            using var started = new ManualResetEventSlim(false);
            Task root = Task.Factory.StartNew(
                () =>
                {
                    started.Set();
                    for (int i = 0; i < LongRunningPerRound; i++)
                    {
                        Task.Factory.StartNew(() => Interlocked.Increment(ref ran), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Current);
                    }
                },
                CancellationToken.None, TaskCreationOptions.None, scheduler);
            Assert.True(started.Wait(Bounded));
            Exception? thrown = null;
            var disposer = new Thread(() =>
            {
                try
                {
                    scheduler.Dispose();
                }
                catch (Exception e)
                {
                    thrown = e;
                }
            }) { IsBackground = true };
            disposer.Start();
            Assert.True(disposer.Join(Bounded), $"round {round}: Dispose hung");
            Assert.Null(thrown);
            Assert.True(root.IsCompletedSuccessfully);
            Assert.Equal(LongRunningPerRound, Volatile.Read(ref ran));
        }
    }

    [Fact]
    public void Dispose_WhileDrainingWorkStartsLongRunningTasksThatWaitOnQueuedWork_FinishesAndRunsEachOnce()
    {
        // Draining work starts LongRunning tasks once the workers were told to leave; each queues a task and waits for it,
        // and that task queues another and waits for it (untimed: a worker inlines it). Before, the workers could leave
        // first, and Dispose hung (joining a LongRunning thread that waited for work nobody ran, or running that work on
        // its own thread, blocked). Now the workers stay while a LongRunning task runs: every task runs exactly once.
        int rounds = (int)StressScale.Items(20);
        const int LongRunningPerRound = 20;
        for (int round = 0; round < rounds; round++)
        {
            var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, SpinRounds = round % 2 });
            int longRunningDone = 0;
            int children = 0;
            int grandchildren = 0;
            int timedOut = 0;
            Task.Factory.StartNew(
                () =>
                {
                    SpinWait.SpinUntil(() => scheduler.IsShuttingDown, Bounded); // past Dispose's first LongRunning join
                    for (int i = 0; i < LongRunningPerRound; i++)
                    {
                        int delay = i % 3;
                        Task.Factory.StartNew(
                            () =>
                            {
                                Thread.Sleep(delay); // queue a little later: the old rule let the idle workers leave meanwhile
                                Task child = Task.Factory.StartNew(
                                    () =>
                                    {
                                        Task.Factory.StartNew(() => Interlocked.Increment(ref grandchildren), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current).Wait();
                                        Interlocked.Increment(ref children);
                                    },
                                    CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                                if (!child.Wait(Bounded))
                                {
                                    Interlocked.Increment(ref timedOut);
                                }

                                Interlocked.Increment(ref longRunningDone);
                            },
                            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Current);
                    }
                },
                CancellationToken.None, TaskCreationOptions.None, scheduler);
            var disposer = new Thread(scheduler.Dispose) { IsBackground = true };
            disposer.Start();
            Assert.True(disposer.Join(Bounded), $"round {round}: Dispose hung; {scheduler.Statistics}, live {scheduler.LiveWorkers}");
            Assert.Equal(0, Volatile.Read(ref timedOut));
            Assert.Equal(LongRunningPerRound, Volatile.Read(ref longRunningDone));
            Assert.Equal(LongRunningPerRound, Volatile.Read(ref children));
            Assert.Equal(LongRunningPerRound, Volatile.Read(ref grandchildren));
            var stats = scheduler.Statistics;
            Assert.Equal(stats.Queued, stats.Executed);
            Assert.Equal(0, stats.RedirectedAfterDispose);
        }
    }
}
