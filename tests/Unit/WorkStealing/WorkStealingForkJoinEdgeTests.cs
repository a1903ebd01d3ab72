// These tests start fork-join work on a TaskScheduler and wait for it on purpose (always bounded).
#pragma warning disable xUnit1031
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// <see cref="WorkStealingTaskScheduler.ForkJoin{TState, TFirst, TSecond}"/> at its edges: the execution context a
/// half leaves behind, and forks made off the workers (outside threads, other schedulers' workers, LongRunning
/// threads while Dispose drains).
/// </summary>
public sealed class WorkStealingForkJoinEdgeTests
{
    private static readonly TimeSpan Generous = WorkStealingTaskSchedulerTests.Generous;
    private static readonly AsyncLocal<int> Flow = new();

    [Fact]
    public void ForkJoin_TakenBackSecondSetsAnAsyncLocal_TheCallerDoesNotSeeIt()
    {
        // One worker: the fork is always taken back and run on the caller's thread. As in a Task (and as when the
        // fork is stolen), what second does to AsyncLocals must not flow back into the caller.
        using var scheduler = new WorkStealingTaskScheduler(1);
        var root = Task.Factory.StartNew(
            () =>
            {
                Flow.Value = 1;
                scheduler.ForkJoin(0, static _ => 0, static _ => Flow.Value = 2);
                return Flow.Value;
            },
            CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(root.Wait(Generous));
        Assert.Equal(1, root.Result);
    }

    [Fact]
    public void ForkJoin_StolenSecondSetsAnAsyncLocal_TheThiefsLaterWorkDoesNotSeeIt()
    {
        // Two workers; each root's first blocks until its second ran, so the other worker steals both forks from its
        // idle loop. The first fork sets an AsyncLocal; the second fork is made with flow suppressed, so it runs in
        // whatever context the thief's thread has: it must not see the first fork's value.
        using var scheduler = new WorkStealingTaskScheduler(2);
        Task<(int Thief1, int Thief2, int Seen)> root;
        using (ExecutionContext.SuppressFlow())
        {
            root = Task.Factory.StartNew(
                () =>
                {
                    (_, int thief1) = scheduler.ForkJoin(
                        new ManualResetEventSlim(false),
                        static ran => ran.Wait(Generous),
                        static ran =>
                        {
                            Flow.Value = 42; // left behind on the thief's thread unless the fork's context is restored
                            ran.Set();
                            return Environment.CurrentManagedThreadId;
                        });

                    using AsyncFlowControl noFlow = ExecutionContext.SuppressFlow();
                    (_, (int Thread, int Seen) second) = scheduler.ForkJoin(
                        new ManualResetEventSlim(false),
                        static ran => ran.Wait(Generous),
                        static ran =>
                        {
                            int seen = Flow.Value;
                            ran.Set();
                            return (Environment.CurrentManagedThreadId, seen);
                        });
                    return (thief1, second.Thread, second.Seen);
                },
                CancellationToken.None, TaskCreationOptions.None, scheduler);
        }

        Assert.True(root.Wait(Generous));
        Assert.Equal(root.Result.Thief1, root.Result.Thief2); // the only other worker stole both
        Assert.Equal(0, root.Result.Seen);
    }
}
