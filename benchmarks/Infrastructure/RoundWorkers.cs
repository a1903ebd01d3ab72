namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// Long-lived background threads that run one piece of work per benchmark invocation ("round"), so an
/// invocation pays a semaphore release, not a thread start. Created in [GlobalSetup], disposed in
/// [GlobalCleanup].
/// </summary>
/// <remarks>
/// Robustness: a worker that throws sets <see cref="IsAborted"/> (every spin loop of the harness checks it on
/// its failure path, so the other side stops instead of spinning forever) and the exception is rethrown on
/// the benchmark thread by <see cref="WaitRound"/>. <see cref="WaitRound"/> gives up after
/// <see cref="RoundTimeout"/>, aborting the round, so a protocol bug fails the benchmark instead of hanging it.
/// </remarks>
public sealed class RoundWorkers : IDisposable
{
    /// <summary>Longest a round may take before it is declared hung (a round normally takes milliseconds).</summary>
    private static readonly TimeSpan RoundTimeout = TimeSpan.FromSeconds(60);

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _start;
    private readonly CountdownEvent _done;
    private Action<int>? _work;
    private volatile bool _aborted;
    private volatile bool _disposed;
    private Exception? _failure;

    /// <summary>Starts <paramref name="count"/> background threads named <paramref name="name"/>-i, idle until a round starts.</summary>
    public RoundWorkers(int count, string name)
    {
        _threads = new Thread[count];
        _start = new SemaphoreSlim[count];
        _done = new CountdownEvent(count);
        for (int i = 0; i < count; i++)
        {
            int index = i;
            _start[i] = new SemaphoreSlim(0);
            _threads[i] = new Thread(() => Loop(index)) { IsBackground = true, Name = $"{name}-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Set when a round failed: spin loops on either side stop waiting.</summary>
    public bool IsAborted => _aborted;

    /// <summary>Runs <paramref name="work"/>(workerIndex) once on every worker. Pass a delegate cached at setup (no allocation).</summary>
    public void StartRound(Action<int> work)
    {
        _work = work;
        _done.Reset();
        for (int i = 0; i < _start.Length; i++)
        {
            _start[i].Release();
        }
    }

    /// <summary>Waits until every worker has finished the round; rethrows a worker's failure.</summary>
    public void WaitRound()
    {
        if (!_done.Wait(RoundTimeout))
        {
            _aborted = true;
            throw new TimeoutException($"Benchmark round did not finish within {RoundTimeout}.");
        }

        if (_failure is { } failure)
        {
            throw new InvalidOperationException("A benchmark worker failed.", failure);
        }
    }

    /// <summary>Stops the round in progress (called when the benchmark thread's side fails).</summary>
    public void Abort() => _aborted = true;

    /// <summary>Stops every worker and waits for it.</summary>
    public void Dispose()
    {
        _aborted = true;
        _disposed = true;
        foreach (SemaphoreSlim start in _start)
        {
            start.Release();
        }

        foreach (Thread thread in _threads)
        {
            thread.Join(TimeSpan.FromSeconds(5));
        }
    }

    private void Loop(int index)
    {
        while (true)
        {
            _start[index].Wait();
            if (_disposed)
            {
                return;
            }

            try
            {
                _work!(index);
            }
            catch (Exception e)
            {
                _failure = e;
                _aborted = true;
            }
            finally
            {
                _done.Signal();
            }
        }
    }
}
