// These tests drive a TaskScheduler from plain threads and block on its tasks on purpose, always with a bounded timeout.
#pragma warning disable xUnit1031
using LockFree.Tests.Concurrency.Stress;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>
/// Real-thread stress of <see cref="WorkStealingTaskScheduler"/>: every task runs exactly once and nothing hangs, across
/// idle gaps (workers park and must be woken), run-time rescaling and a racing Dispose. Sizes scale with
/// <see cref="StressScale"/>; every wait is bounded.
/// </summary>
public sealed class SchedulerStressTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bounded = StressScale.Timeout(TimeSpan.FromSeconds(60));

    [Fact]
    public void Bursts_SeparatedByIdleGaps_EveryTaskRunsExactlyOnce_NoLostWakeup()
    {
        int bursts = (int)StressScale.Items(300);
        const int PerBurst = 24;
        var runs = new int[bursts * PerBurst * 2];
        var random = new Random(1234);
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 3, SpinRounds = 2 });
        int parkedSeen = 0;
        for (int b = 0; b < bursts; b++)
        {
            using var done = new CountdownEvent(PerBurst * 2);
            int baseId = b * PerBurst * 2;
            bool fromInside = random.Next(2) == 0;
            if (fromInside)
            {
                // A root task queues the burst from a worker: LIFO slot, deque pushes, steals.
                Task.Factory.StartNew(
                    () =>
                    {
                        for (int i = 0; i < PerBurst * 2; i++)
                        {
                            int id = baseId + i;
                            Task.Factory.StartNew(() => Run(runs, id, done), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                        }
                    },
                    CancellationToken.None, TaskCreationOptions.None, scheduler);
            }
            else
            {
                for (int i = 0; i < PerBurst * 2; i++)
                {
                    int id = baseId + i;
                    Task.Factory.StartNew(() => Run(runs, id, done), CancellationToken.None, TaskCreationOptions.None, scheduler);
                }
            }

            Assert.True(done.Wait(Bounded), $"burst {b} ({(fromInside ? "inside" : "outside")}): {done.CurrentCount} tasks never ran; {scheduler.Statistics}");

            // Idle gap: long enough for the workers to finish spinning and park, so the next burst must wake them.
            Thread.Sleep(random.Next(0, 3));
            parkedSeen += scheduler.Statistics.ParkedWorkers > 0 ? 1 : 0;
        }

        Assert.All(runs, r => Assert.Equal(1, r));
        output.WriteLine($"{bursts} bursts; workers seen parked after {parkedSeen} gaps; {scheduler.Statistics}");
    }

    /// <summary>
    /// Helping joins (<see cref="WorkStealingTaskScheduler.Join(Task)"/>): full binary fork-join trees where every
    /// node forks its left subtree as a task, runs its right subtree itself and joins the left one. Workers that
    /// join run other nodes meanwhile (their own queued ones and stolen ones); every node must run exactly once.
    /// </summary>
    [Fact]
    public void Join_ForkJoinTrees_EveryNodeRunsExactlyOnce()
    {
        int rounds = (int)StressScale.Items(30);
        const int Depth = 11; // 4095 nodes per tree
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 3, SpinRounds = 2 });
        // Beyond the planned rounds, more (up to ten times as many) while no join has helped yet: on a loaded machine
        // the other workers may get no core while a round runs, and the check below needs at least one helped task.
        for (int r = 0; r < rounds || (scheduler.Statistics.Helped == 0 && r < 10 * rounds); r++)
        {
            var runs = new int[(1 << (Depth + 1)) - 1];
            var root = Task.Factory.StartNew(() => Node(scheduler, runs, 0, Depth, r), CancellationToken.None, TaskCreationOptions.None, scheduler);
            Assert.True(root.Wait(Bounded), $"round {r}: the tree never finished; {scheduler.Statistics}");
            Assert.Equal(runs.Length, root.Result);
            Assert.All(runs, n => Assert.Equal(1, n));
        }

        Assert.True(scheduler.Statistics.Helped > 0, $"no worker ever helped while joining: {scheduler.Statistics}");
        output.WriteLine($"{rounds} trees; {scheduler.Statistics}");
    }

    private static int Node(WorkStealingTaskScheduler scheduler, int[] runs, int id, int depth, int seed)
    {
        Interlocked.Increment(ref runs[id]);
        if (depth == 0)
        {
            Thread.SpinWait(((id * 31) + seed) % 64); // uneven leaves, so joins find their forks in every state
            return 1;
        }

        var left = Task.Factory.StartNew(() => Node(scheduler, runs, (2 * id) + 1, depth - 1, seed), CancellationToken.None, TaskCreationOptions.None, scheduler);
        int right = Node(scheduler, runs, (2 * id) + 2, depth - 1, seed);
        return scheduler.Join(left) + right + 1;
    }

    [Fact]
    public void ScaleUpAndDown_UnderLoad_EveryTaskAccountedFor()
    {
        int perProducer = (int)StressScale.Items(20_000);
        const int Producers = 2;
        var runs = new int[Producers * perProducer * 2];
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
        {
            WorkerCount = 2, MinimumWorkerCount = 1, MaximumWorkerCount = 4, SpinRounds = 1, InjectionQueueCapacity = 256,
        });
        using var done = new CountdownEvent(runs.Length);
        using var stop = new ManualResetEventSlim();
        int resizes = 0;
        var scaler = new Thread(() =>
        {
            var random = new Random(99);
            while (!stop.IsSet)
            {
                scheduler.SetWorkerCount(random.Next(1, 5));
                resizes++;
                Thread.Sleep(random.Next(0, 2));
            }
        });
        scaler.Start();
        var producers = Enumerable.Range(0, Producers).Select(p => new Thread(() =>
        {
            for (int i = 0; i < perProducer; i++)
            {
                int id = (p * perProducer + i) * 2;
                Task.Factory.StartNew(
                    () =>
                    {
                        // Each task also queues a child from its worker, so retiring workers hold deque items to hand off.
                        Task.Factory.StartNew(() => Run(runs, id + 1, done), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                        Run(runs, id, done);
                    },
                    CancellationToken.None, TaskCreationOptions.None, scheduler);
            }
        })).ToArray();
        foreach (Thread t in producers)
        {
            t.Start();
        }

        foreach (Thread t in producers)
        {
            Assert.True(t.Join(Bounded));
        }

        bool all = done.Wait(Bounded);
        stop.Set();
        Assert.True(scaler.Join(Bounded));
        Assert.True(all, $"{done.CurrentCount} of {runs.Length} tasks never ran; {scheduler.Statistics}, live {scheduler.LiveWorkers}");
        Assert.All(runs, r => Assert.Equal(1, r));
        var stats = scheduler.Statistics;
        Assert.True(stats.Executed >= runs.Length, stats.ToString());
        output.WriteLine($"{runs.Length} tasks, {resizes} resizes; {stats}");
    }

    [Fact]
    public void Dispose_RacingProducers_AcceptedTasksRunBeforeItReturns_LaterOnesOnThePool()
    {
        // Two outside producers queue while Dispose runs. Tasks the scheduler accepted (before its gate closed) all run
        // on its workers before Dispose returns; later ones are not refused (that contract changed: they used to throw
        // TaskSchedulerException) but run on the thread pool and are counted; every task runs exactly once.
        int rounds = (int)StressScale.Items(20);
        const int PerProducer = 5_000;
        for (int round = 0; round < rounds; round++)
        {
            var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 2, SpinRounds = 1, InjectionQueueCapacity = 64 });
            var tasks = new System.Collections.Concurrent.ConcurrentBag<Task>();
            var runs = new int[2 * PerProducer];
            int onWorkers = 0;
            int onPool = 0;
            using var go = new ManualResetEventSlim();
            var producers = Enumerable.Range(0, 2).Select(p => new Thread(() =>
            {
                go.Wait();
                for (int i = 0; i < PerProducer; i++)
                {
                    int id = (p * PerProducer) + i;
                    tasks.Add(Task.Factory.StartNew(
                        () =>
                        {
                            Interlocked.Increment(ref runs[id]);
                            Interlocked.Increment(ref (Thread.CurrentThread.IsThreadPoolThread ? ref onPool : ref onWorkers));
                        },
                        CancellationToken.None, TaskCreationOptions.None, scheduler));
                }
            })).ToArray();
            foreach (Thread t in producers)
            {
                t.Start();
            }

            go.Set();
            Thread.Sleep(round % 3);
            scheduler.Dispose();
            int onWorkersAtDispose = Volatile.Read(ref onWorkers);
            foreach (Thread t in producers)
            {
                Assert.True(t.Join(Bounded));
            }

            Assert.True(Task.WaitAll(tasks.ToArray(), Bounded), $"round {round}: a task never ran; {scheduler.Statistics}");
            var stats = scheduler.Statistics;
            Assert.All(runs, r => Assert.Equal(1, r));
            Assert.Equal(runs.Length, tasks.Count);
            Assert.Equal(stats.Queued, onWorkersAtDispose); // every accepted task ran on a worker before Dispose returned
            Assert.Equal(stats.Queued, stats.Executed);
            Assert.Equal(stats.RedirectedAfterDispose, Volatile.Read(ref onPool));
            Assert.Equal(runs.Length, stats.Queued + stats.RedirectedAfterDispose);
        }
    }

    /// <summary>
    /// ForkJoin trees (jobs, not tasks) from several roots at once, some started on workers and some from outside
    /// threads, with uneven leaves, over three workers and with idle gaps: every node runs exactly once, every result is
    /// exact, and both stolen forks (thieves signalling waiting owners) and taken-back forks occur.
    /// </summary>
    [Fact]
    public void ForkJoin_ConcurrentTrees_EveryNodeRunsExactlyOnce()
    {
        int rounds = (int)StressScale.Items(40);
        const int Depth = 10; // 2047 nodes per tree
        const int Trees = 3;
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 3, SpinRounds = 2 });
        // Beyond the planned rounds, more (up to ten times as many) while no fork was stolen yet (a loaded machine may
        // give the other workers no core during a round; the check below needs at least one).
        for (int r = 0; r < rounds || (scheduler.Statistics.ForksStolen == 0 && r < 10 * rounds); r++)
        {
            var runs = new int[Trees][];
            var roots = new Task<int>[Trees];
            for (int t = 0; t < Trees; t++)
            {
                int[] tree = runs[t] = new int[(1 << (Depth + 1)) - 1];
                int seed = r + t;
                roots[t] = t == 0
                    ? Task.Run(() => ForkNode(scheduler, tree, 0, Depth, seed)) // from outside: the first levels fork tasks
                    : Task.Factory.StartNew(() => ForkNode(scheduler, tree, 0, Depth, seed), CancellationToken.None, TaskCreationOptions.None, scheduler);
            }

            Assert.True(Task.WaitAll(roots, Bounded), $"round {r}: a tree never finished; {scheduler.Statistics}");
            for (int t = 0; t < Trees; t++)
            {
                Assert.Equal(runs[t].Length, roots[t].Result);
                Assert.All(runs[t], n => Assert.Equal(1, n));
            }

            if (r % 8 == 7)
            {
                Thread.Sleep(2); // let the workers park: the next round's forks must wake them
            }
        }

        WorkStealingTaskSchedulerStatistics stats = scheduler.Statistics;
        Assert.True(stats.ForksStolen > 0, $"no fork was ever stolen: {stats}");
        Assert.True(stats.Forked > stats.ForksStolen, $"no fork was ever taken back by its owner: {stats}");
        output.WriteLine($"{rounds}+ rounds of {Trees} trees; {stats}");
    }

    /// <summary>
    /// ForkJoin trees while a thread resizes the pool between 1 and 4 workers every ~1 ms, so workers are asked to retire
    /// while they own forks, steal forks or wait for stolen ones, and new workers take the retired ones' indices (some trees
    /// start outside, so their upper levels are tasks that the callers may take back); each
    /// round ends with a Dispose racing a tree that is still forking. Every node runs exactly once, nothing hangs.
    /// </summary>
    [Fact]
    public void ForkJoin_TreesWhileResizingThenDisposing_EveryNodeRunsExactlyOnce()
    {
        int rounds = (int)StressScale.Items(20);
        const int Depth = 10; // 2047 nodes per tree
        long stolen = 0;
        for (int round = 0; round < rounds; round++)
        {
            var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions
            {
                WorkerCount = 2, MinimumWorkerCount = 1, MaximumWorkerCount = 4, SpinRounds = 1,
            });
            using var stop = new ManualResetEventSlim();
            var scaler = new Thread(() =>
            {
                var random = new Random(round);
                while (!stop.IsSet)
                {
                    try
                    {
                        scheduler.SetWorkerCount(random.Next(1, 5));
                    }
                    catch (ObjectDisposedException)
                    {
                        return; // the round's Dispose began
                    }

                    Thread.Sleep(random.Next(0, 2));
                }
            });
            scaler.Start();
            for (int tree = 0; tree < 8; tree++)
            {
                var runs = new int[(1 << (Depth + 1)) - 1];
                int seed = round + tree;
                Task<int> root = tree % 3 == 0
                    ? Task.Run(() => ForkNode(scheduler, runs, 0, Depth, seed)) // from outside: forks are tasks the caller may take back
                    : Task.Factory.StartNew(() => ForkNode(scheduler, runs, 0, Depth, seed), CancellationToken.None, TaskCreationOptions.None, scheduler);
                Assert.True(root.Wait(Bounded), $"round {round}, tree {tree} never finished; {scheduler.Statistics}, live {scheduler.LiveWorkers}");
                Assert.Equal(runs.Length, root.Result);
                Assert.All(runs, n => Assert.Equal(1, n));
            }

            // A last tree still forking when Dispose begins (and the scaler is refused): the drain finishes it.
            var last = new int[(1 << (Depth + 1)) - 1];
            Task<int> draining = Task.Factory.StartNew(() => ForkNode(scheduler, last, 0, Depth, round), CancellationToken.None, TaskCreationOptions.None, scheduler);
            var disposer = new Thread(scheduler.Dispose);
            disposer.Start();
            Assert.True(disposer.Join(Bounded), $"round {round}: Dispose never finished; {scheduler.Statistics}");
            stop.Set();
            Assert.True(scaler.Join(Bounded));
            Assert.True(draining.IsCompleted);
            Assert.Equal(last.Length, draining.Result);
            Assert.All(last, n => Assert.Equal(1, n));
            stolen += scheduler.Statistics.ForksStolen;
        }

        output.WriteLine($"{rounds} rounds of 9 trees under resizing; forks stolen {stolen}");
    }

    private static int ForkNode(WorkStealingTaskScheduler scheduler, int[] runs, int id, int depth, int seed)
    {
        Interlocked.Increment(ref runs[id]);
        if (depth == 0)
        {
            Thread.SpinWait(((id * 31) + seed) % 64); // uneven leaves, so owners find their forks in every state
            return 1;
        }

        (int a, int b) = scheduler.ForkJoin(
            (S: scheduler, Runs: runs, Id: id, Depth: depth, Seed: seed),
            static s => ForkNode(s.S, s.Runs, (2 * s.Id) + 1, s.Depth - 1, s.Seed),
            static s => ForkNode(s.S, s.Runs, (2 * s.Id) + 2, s.Depth - 1, s.Seed));
        return a + b + 1;
    }

    /// <summary>
    /// <see cref="Thread.Interrupt"/> aimed at the workers at random while bursts run, queued from outside and from inside
    /// (where queuing wakes parked workers under the sleepers' lock) with idle gaps between them (where workers spin and
    /// park). The tasks never wait, so every interrupt lands in the scheduler's own steps, or stays pending and reaches
    /// them later. Every task must run exactly once, and no worker may die. Before the scheduler deferred and dropped
    /// interrupts, the first one that hit a parked worker ended the process.
    /// </summary>
    [Fact]
    public void Bursts_WhileWorkersAreInterruptedAtRandom_EveryTaskRunsExactlyOnce()
    {
        int bursts = (int)StressScale.Items(200);
        const int PerBurst = 32;
        var runs = new int[bursts * PerBurst];
        var random = new Random(4321);
        using var scheduler = new WorkStealingTaskScheduler(new WorkStealingTaskSchedulerOptions { WorkerCount = 3, SpinRounds = 2 });
        Thread[] workers = ((List<Thread>)typeof(WorkStealingTaskScheduler)
            .GetField("_allWorkerThreads", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .GetValue(scheduler)!).ToArray();
        Assert.Equal(3, workers.Length);
        bool stop = false;
        long interrupts = 0;
        var interrupter = new Thread(() =>
        {
            var pick = new Random(99);
            while (!Volatile.Read(ref stop))
            {
                workers[pick.Next(workers.Length)].Interrupt();
                interrupts++;
                Thread.SpinWait(pick.Next(50, 5000));
                if (pick.Next(8) == 0)
                {
                    Thread.Yield();
                }
            }
        });
        interrupter.Start();
        try
        {
            for (int b = 0; b < bursts; b++)
            {
                // Not a CountdownEvent: its last Signal runs inside a task on a worker, where the interrupter may have left an
                // interrupt pending, and the event's Set throws it when the waiter contends its monitor (after the count
                // reached zero, before the waiter is pulsed): most likely why a CI check of session 16 saw a burst 60 s late
                // with every task run (not reproduced; see work-stealing.md). The task's own wait may receive the interrupt,
                // as designed; the count cannot. A lost wake-up still fails the polling wait.
                var remaining = new int[] { PerBurst };
                int baseId = b * PerBurst;
                if (random.Next(2) == 0)
                {
                    Task.Factory.StartNew(
                        () =>
                        {
                            for (int i = 0; i < PerBurst; i++)
                            {
                                int id = baseId + i;
                                Task.Factory.StartNew(() => RunCounted(runs, id, remaining), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Current);
                            }
                        },
                        CancellationToken.None, TaskCreationOptions.None, scheduler);
                }
                else
                {
                    for (int i = 0; i < PerBurst; i++)
                    {
                        int id = baseId + i;
                        Task.Factory.StartNew(() => RunCounted(runs, id, remaining), CancellationToken.None, TaskCreationOptions.None, scheduler);
                    }
                }

                Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref remaining[0]) == 0, Bounded), $"burst {b}: {Volatile.Read(ref remaining[0])} tasks never ran; {scheduler.Statistics}");
                Thread.Sleep(random.Next(0, 2)); // an idle gap: workers spin and park while interrupts arrive
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            interrupter.Join();
        }

        Assert.All(runs, r => Assert.Equal(1, r));
        Assert.All(workers, w => Assert.True(w.IsAlive));
        output.WriteLine($"{bursts} bursts, {interrupts} interrupts; {scheduler.Statistics}");
    }

    private static void Run(int[] runs, int id, CountdownEvent done)
    {
        Interlocked.Increment(ref runs[id]);
        done.Signal();
    }

    /// <summary>As <see cref="Run"/>, counting down with an interlocked decrement: no wait, so an interrupt left pending on the worker cannot break it.</summary>
    private static void RunCounted(int[] runs, int id, int[] remaining)
    {
        Interlocked.Increment(ref runs[id]);
        Interlocked.Decrement(ref remaining[0]);
    }
}
