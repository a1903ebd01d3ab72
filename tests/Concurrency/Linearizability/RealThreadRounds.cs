using Xunit;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>
/// The real-thread history runner: <c>threads</c> threads each run one round body per round, with a barrier
/// between rounds (the quiescent points <see cref="LinearizabilityChecker.CheckInSegments"/> splits at). A
/// worker that throws leaves the barrier and its exception fails the run; every wait is bounded.
/// </summary>
internal static class RealThreadRounds
{
    /// <summary>
    /// Runs the rounds. <paramref name="perThread"/> is called once on each worker thread with its index and
    /// returns that thread's round body (so per-thread state lives in the closure); each round calls the body
    /// with the thread's own <see cref="Random"/>, seeded from <paramref name="seed"/> and the index.
    /// <paramref name="betweenRounds"/>, if given, runs alone after every round, while all workers wait at the barrier.
    /// </summary>
    public static void Run(int threads, int rounds, int seed, Func<int, Action<Random>> perThread, Action? betweenRounds = null)
    {
        using var barrier = new Barrier(threads, betweenRounds is null ? null : _ => betweenRounds());
        var failures = new List<Exception>();
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int thread = t;
            workers[t] = new Thread(() =>
            {
                try
                {
                    var random = new Random((seed * 97) + thread);
                    Action<Random> round = perThread(thread);
                    for (int r = 0; r < rounds; r++)
                    {
                        round(random);
                        if (!barrier.SignalAndWait(TimeSpan.FromSeconds(30)))
                        {
                            throw new TimeoutException("barrier");
                        }
                    }
                }
                catch (Exception ex)
                {
                    lock (failures)
                    {
                        failures.Add(ex);
                    }

                    barrier.RemoveParticipant();
                }
            })
            { IsBackground = true };
            workers[t].Start();
        }

        foreach (Thread worker in workers)
        {
            Assert.True(worker.Join(TimeSpan.FromSeconds(60)), "a worker did not finish");
        }

        Assert.Empty(failures);
    }
}
